"""Bad input and faults, step by step, as a user meets them: docs/reliability.md lists every case.

Each failing step is run as MLproject runs it (`python -m steps.<step>`) against a real SQLite tracking
store that holds one finished prepare run. A case passes when the user gets one `Error: ...` line
naming what is wrong and where, a non-zero exit, the step's run marked FAILED (or no run at all when
the input is refused up front), no artifact, no registry change and no leftover files.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from folksy.tracking import PARENT_RUN_ENV
from tests.conftest import PROJECT_ROOT
from tests.forkserver import run_module
from tests.test_judging import ScriptedJudgeServer

HUB_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"  # a real Hub id: the offline machine cannot fetch it


@dataclass
class Store:
    root: Path
    uri: str
    env: dict
    prepare_run_id: str

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def step(self, name: str, *args: str, experiment: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        module = "folksy.cli" if name == "cli" else f"steps.{name}"
        return run_module(module, *args, env={**self.env, "MLFLOW_EXPERIMENT_NAME": experiment, **(env or {})}, timeout=timeout)

    def runs(self, experiment: str, step: str | None = None) -> list:
        found = self.client().get_experiment_by_name(experiment)
        if found is None:
            return []
        where = f"tags.`folksy.step` = '{step}'" if step else ""
        return self.client().search_runs([found.experiment_id], filter_string=where)

    def registry(self) -> dict:
        """Every registered model with its versions and aliases: what a failed step must leave alone."""
        client = self.client()
        return {
            model.name: (sorted(v.version for v in client.search_model_versions(f"name = '{model.name}'")), dict(model.aliases))
            for model in client.search_registered_models()
        }


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    from folksy.corpus.generate import build_corpus, to_jsonl

    root = tmp_path_factory.mktemp("reliability")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "FOLKSY_REGISTRY_DIR": str(root / "registry")}
    for name in ("MLFLOW_RUN_ID", PARENT_RUN_ENV, "FOLKSY_JUDGE_API_KEY", "OPENAI_API_KEY"):
        env.pop(name, None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `main` starts the `mlflow` CLI
    rows, _ = build_corpus(seed=5, n_sayings=140)
    (root / "corpus.jsonl").write_text(to_jsonl(rows))
    (root / "empty.jsonl").write_bytes(b"")
    partial = Store(root, uri, env, "")
    prepared = partial.step("prepare", "--corpus", str(root / "corpus.jsonl"), experiment="folksy")
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    [run] = partial.runs("folksy", "prepare")
    partial.prepare_run_id = run.info.run_id
    return partial


def fill(text: str, values: dict, escape: bool = False) -> str:
    """`text` with each {name} in `values` replaced (regex-escaped if asked); other braces are left alone."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", re.escape(value) if escape else value)
    return text


def last_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------------------------
# bad input inside a step: one line, non-zero exit, the run FAILED, nothing logged or left behind


@dataclass
class Case:
    step: str
    args: tuple  # may name {prepare}, {root} and {out}
    error: str  # a regex the last stderr line must match in full, after the same names are filled in
    exit_code: int = 2
    env: tuple = ()


CASES = {
    "prepare-empty-corpus": Case(
        "prepare", ("--corpus", "{root}/empty.jsonl"), r"Error: {root}/empty\.jsonl: no valid corpus lines \(the file is empty\)"
    ),
    "train-hub-model-offline": Case(
        "train",
        ("--prepare-run-id", "{prepare}", "--output-dir", "{out}", "--overrides", f"base_model={HUB_MODEL},max_steps=1"),
        rf"Error: base_model '{re.escape(HUB_MODEL)}': the Hugging Face Hub cannot be reached \(\w+\); use base_model=smollm2-135m-instruct, .*",
        env=(("HF_HOME", "{root}/empty-hf-home"),),
    ),
    "evaluate-missing-alias": Case(
        "evaluate", ("--model-uri", "models:/folksy-proverbs@nope", "--prepare-run-id", "{prepare}", "--quick", "true"),
        r"Error: --model-uri 'models:/folksy-proverbs@nope': no such registered or logged model .*",
    ),
    "evaluate-missing-run": Case(
        "evaluate", ("--model-uri", "runs:/0123456789abcdef0123456789abcdef/model", "--quick", "true"),
        r"Error: --model-uri 'runs:/0123456789abcdef0123456789abcdef/model': run 0123456789abcdef0123456789abcdef does not exist .*",
    ),
    "judge-missing-alias": Case(
        "judge", ("--model-uri", "models:/folksy-proverbs@nope", "--prepare-run-id", "{prepare}", "--quick", "true"),
        r"Error: --model-uri 'models:/folksy-proverbs@nope': .*",
    ),
    "register-not-a-train-run": Case(
        "register", ("--train-run-id", "{prepare}"),
        r"Error: --train-run-id '{prepare}': a FINISHED prepare run; register needs a FINISHED train or dpo run",
    ),
    "main-empty-corpus": Case(
        "main", ("--corpus", "{root}/empty.jsonl", "--quick", "true"),
        r"Error: step 'prepare' failed \(run [0-9a-f]{32}\); see its output above and the run in `mlflow ui`",
        exit_code=1,
    ),
}  # fmt: skip


SLOW_CASES = {"main-empty-corpus"}  # `main` starts `mlflow run`, which starts the step: ~20 s of interpreters


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_CASES else name for name in CASES])
def test_a_step_given_bad_input_fails_in_one_line_and_leaves_nothing(store, name):
    case = CASES[name]
    experiment = f"bad-input-{name}"
    out = store.root / f"out-{name}"
    values = {"prepare": store.prepare_run_id, "root": str(store.root), "out": str(out)}
    registry_before = store.registry()
    result = store.step(
        case.step, *[fill(arg, values) for arg in case.args], experiment=experiment, env={key: fill(value, values) for key, value in case.env}
    )

    assert result.returncode == case.exit_code, result.stderr[-3000:]
    assert re.fullmatch(fill(case.error, values, escape=True), last_line(result)), last_line(result)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [r.info.status for r in store.runs(experiment) if r.info.status == "RUNNING"] == [], "a run was left RUNNING"
    [run] = store.runs(experiment, case.step)
    assert run.info.status == "FAILED"
    assert store.client().list_artifacts(run.info.run_id) == []
    if case.step == "main":  # the failed child is FAILED too, and nested under main
        [child] = store.runs(experiment, "prepare")
        assert child.info.status == "FAILED" and child.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert store.registry() == registry_before
    leftovers = [str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()] if out.exists() else []
    assert leftovers == [], f"the failed step left files in --output-dir that the next run trips over: {leftovers}"


# ---------------------------------------------------------------------------------------------
# bad parameter values: refused before any run, model or data is touched


@pytest.mark.parametrize(
    "step, args, message",
    [
        ("train", ("--overrides", "learning_rate=-1e-4"), "Error: --overrides learning_rate: learning_rate must be > 0, got '-1e-4'"),
        ("train", ("--overrides", "num_train_epochs=0"), "Error: --overrides num_train_epochs: num_train_epochs must be > 0, got '0'"),
        ("train", ("--overrides", "method=lora,lora_r=0"), "Error: --overrides lora_r: lora_r must be >= 1, got '0'"),
        (
            "train", ("--overrides", "method=qlora"),
            "Error: method: qlora needs a CUDA GPU (bitsandbytes 4-bit NF4); on a CPU use method=lora or method=full",
        ),
        (
            "prepare", ("--train-ratio", "0.8", "--val-ratio", "0.1", "--test-ratio", "0.05"),
            "Error: Invalid value: --train-ratio, --val-ratio and --test-ratio must sum to 1, got 0.95",
        ),
    ],
    ids=["negative-learning-rate", "zero-epochs", "lora-rank-0", "qlora-on-cpu", "ratios-not-summing-to-1"],
)  # fmt: skip
def test_a_bad_parameter_value_is_refused_before_any_run(store, request, step, args, message):
    import torch

    if "method=qlora" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    experiment = f"bad-parameter-{request.node.callspec.id}"
    result = store.step(step, *args, experiment=experiment)
    assert result.returncode == 2, result.stderr[-3000:]
    assert last_line(result) == message
    assert "Traceback" not in result.stderr
    assert store.runs(experiment) == []


# ---------------------------------------------------------------------------------------------
# the judge endpoint answering something that is not JSON (the other endpoint faults: tests/test_judging.py)


def test_a_judge_endpoint_answering_non_json_gives_counted_failures_then_a_failed_batch():
    from folksy.judging.backends import EndpointConfig, EndpointJudge
    from folksy.judging.rubric import JudgeFailure

    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"  # what a proxy in front of a dead judge sends
    with ScriptedJudgeServer(lambda body, attempt: (200, html, None, 0)) as server:
        config = EndpointConfig(server.url, "judge-32b", timeout_s=5.0, max_retries=1, backoff_s=0.01, concurrency=1)
        judge = EndpointJudge(config, max_failure_share=0.5, log=lambda message: None)
        with pytest.raises(JudgeFailure, match=r"^judge: 3 of 4 ratings failed\b.* more than the 50% allowed"):
            judge.rate(["a", "b", "c", "d"])
        # each failed item was tried twice (max_retries=1), never more; the last item's first try may already be
        # in flight when the third failure ends the batch (the pool's worker takes it up at once), and is not retried
        tries = Counter(body["messages"][-1]["content"].split("<saying>\n")[1].split("\n")[0] for body in server.requests)
        assert (tries["a"], tries["b"], tries["c"]) == (2, 2, 2) and tries["d"] <= 1, tries
        [judgement] = EndpointJudge(config, max_failure_share=1.0, log=lambda message: None).rate(["e"])
    assert (judgement.score, judgement.error) == (None, "bad response (JSONDecodeError) after 2 attempts")


# ---------------------------------------------------------------------------------------------
# models a user names that do not exist


@pytest.mark.parametrize(
    "model_uri, message",
    [
        ("models:/folksy-proverbs@production", "Error: model_uri 'models:/folksy-proverbs@production': cannot be loaded (MlflowException: Registered Model with name=folksy-proverbs not found)"),
        ("models:/folksy-proverbs@nope", "Error: model_uri 'models:/folksy-proverbs@nope': cannot be loaded (MlflowException: Registered model alias nope not found.)"),
    ],
    ids=["no-registered-model", "no-such-alias"],
)  # fmt: skip
def test_folksy_generate_with_a_model_that_does_not_exist_is_one_line(store, model_uri, message):
    client = store.client()
    if model_uri.endswith("@nope") and not client.search_registered_models("name = 'folksy-proverbs'"):
        client.create_registered_model("folksy-proverbs")
    result = store.step("cli", "generate", "Tell me something about rain.", "--model", model_uri, experiment="folksy")
    assert result.returncode == 2
    assert last_line(result) == message
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# a tracking server that is down (refused logins: tests/test_auth_server.py)


def test_an_unreachable_tracking_server_is_one_line_without_its_password(store):
    import socket

    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = store.step(
        "prepare", "--corpus", str(store.root / "corpus.jsonl"), experiment="unreachable",
        env={"MLFLOW_TRACKING_URI": f"http://alice:hunter2@127.0.0.1:{port}", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
    )  # fmt: skip
    assert result.returncode == 2
    assert last_line(result) == f"Error: MLFLOW_TRACKING_URI http://127.0.0.1:{port}: cannot reach the tracking server; is it running, and is the URI right?"
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout


# ---------------------------------------------------------------------------------------------
# faults: SIGTERM (a scheduler's preemption, `kill`, Ctrl-C's cousin) in the middle of training


@pytest.mark.slow
def test_sigterm_in_the_middle_of_training_marks_the_run_failed(store, tiny_qwen2_dir):
    experiment = "sigterm"
    overrides = (
        f"base_model={tiny_qwen2_dir},max_steps=100000,eval_steps=1000,save_steps=1000,logging_steps=1,train_subsample=64,"
        "val_subsample=8,per_device_train_batch_size=2,sample_max_new_tokens=2,early_stopping_patience=0"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "steps.train", "--prepare-run-id", store.prepare_run_id, "--output-dir", str(store.root / "sigterm"), "--overrides", overrides],
        cwd=PROJECT_ROOT, env={**store.env, "MLFLOW_EXPERIMENT_NAME": experiment}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            runs = store.runs(experiment, "train")
            if runs and runs[0].data.metrics.get("loss") is not None:  # an optimizer step has been logged: we are training
                break
            time.sleep(1)
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert runs and runs[0].info.status == "RUNNING"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    [run] = store.runs(experiment, "train")
    assert run.info.status == "FAILED"
    assert "folksy.best_checkpoint" not in run.data.tags and run.data.metrics.get("trained_steps") is None


KILL_ON_START = """
import os, signal
with open("/proc/self/cmdline", "rb") as own:
    argv = own.read().split(b"\\0")
if {victim}:
    os.kill(os.getpid(), signal.SIGKILL)
"""
# The `mlflow run -e prepare` process that main starts, killed before it starts the step. (When the step's
# own process is killed, that `mlflow run` sees it die and ends the run FAILED itself.)
VICTIM = 'b"run" in argv and b"prepare" in argv and any(arg.endswith(b"mlflow") for arg in argv[:2])'


@pytest.mark.slow
def test_a_step_killed_under_main_is_marked_failed_not_left_running(store, tmp_path):
    """`kill -9` or the OOM killer leave a process no chance to end its own run: main must end it FAILED."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(KILL_ON_START.replace("{victim}", VICTIM))  # runs at every interpreter start
    experiment = "killed-under-main"
    result = store.step(
        "main", "--corpus", str(store.root / "corpus.jsonl"), "--quick", "true",
        experiment=experiment, env={"PYTHONPATH": f"{inject}{os.pathsep}{PROJECT_ROOT}"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert re.fullmatch(r"Error: step 'prepare' failed \(run [0-9a-f]{32}\); see its output above and the run in `mlflow ui`", last_line(result))
    statuses = sorted((run.data.tags.get("mlflow.project.entryPoint", "main"), run.info.status) for run in store.runs(experiment))
    assert statuses == [("main", "FAILED"), ("prepare", "FAILED")]
