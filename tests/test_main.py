"""The whole pipeline as a user runs it (`mlflow run . --env-manager local`), then the model in use.

The pipeline is the session's `pipeline_server` (tests/conftest.py, tests/servers.py), run against a real
`mlflow server` as a user would meet it: killed during training (SIGKILL once the first checkpoint is on
disk), started again (it resumes the training, evaluates and judges briefly, and registers), and started
a third time (it reuses every step). The remote-tracking and browser tests read the same store.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_step
from tests.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # the session's pipeline runs the whole pipeline two and a half times

STEPS = ["prepare", "train", "evaluate", "judge", "register"]


@pytest.fixture(scope="module")
def pipeline(pipeline_server):
    return pipeline_server


def client_for(pipeline):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(pipeline.server.url)
    return MlflowClient(pipeline.server.url)


def step_runs(pipeline) -> dict:
    client = client_for(pipeline)
    runs = client.search_runs([pipeline.experiment_id], order_by=["attributes.start_time ASC"])
    by_step = {}
    for run in runs:
        by_step.setdefault(run.data.tags.get("folksy.step"), []).append(run)
    return by_step


def test_each_step_is_a_finished_run_nested_under_main(pipeline):
    by_step = step_runs(pipeline)
    assert [run.info.status for run in by_step["main"]] == ["FAILED", "FINISHED", "FINISHED"]  # killed, started again, re-run
    killed_main, first_main = by_step["main"][:2]
    for step in STEPS:
        [run] = [run for run in by_step[step] if run.info.status == "FINISHED"]  # one each: the re-run reused them
        assert run.info.run_name == step and first_main.data.tags[f"folksy.{step}_run_id"] == run.info.run_id
        # prepare finished before the kill, and the pipeline started again reused it
        assert run.data.tags["mlflow.parentRunId"] == (killed_main if step == "prepare" else first_main).info.run_id
    train = step_runs(pipeline)["train"][-1]
    assert train.data.params["prepare_run_id"] == by_step["prepare"][0].info.run_id
    assert by_step["evaluate"][0].data.params["model_uri"] == f"runs:/{train.info.run_id}/model"


def test_a_pipeline_killed_during_training_resumes_it_when_started_again(pipeline):
    """The hand-off issue 17 found broken: the train run `mlflow run` reports after a resume is the one
    with the model, so evaluate, judge and register (and main's reuse cache) all get a loadable model."""
    import mlflow

    from folksy.tracking import metric_history

    killed, resumed = step_runs(pipeline)["train"]
    assert killed.info.status == "FAILED" and resumed.info.status == "FINISHED"
    assert "mlflow.parentRunId" in killed.data.tags and not [a for a in client_for(pipeline).list_artifacts(killed.info.run_id) if a.path == "model"]
    out = pipeline.first.stdout + pipeline.first.stderr
    assert "train: resuming run " in out and "checkpoint-2" in out
    assert resumed.data.tags["folksy.resumed_run_id"] == killed.info.run_id and resumed.data.tags["folksy.resumed_from"] == "checkpoint-2"
    assert [step for step, _ in metric_history(resumed.info.run_id, "loss")] == [1, 2, 3, 4]  # the killed run's steps came along
    assert mlflow.pyfunc.load_model(f"runs:/{resumed.info.run_id}/model") is not None
    assert step_runs(pipeline)["register"][0].data.params["train_run_id"] == resumed.info.run_id


def test_the_trained_model_carries_its_evaluate_and_judge_figures(pipeline):
    """MLflow 3 links metrics to the logged model: its page shows the fine-tuned model's own figures
    (not the base model's or the engine's, nor the judge's calibration), each from the run that measured it."""
    client = client_for(pipeline)
    by_step = step_runs(pipeline)
    train, evaluate, judge = by_step["train"][-1], by_step["evaluate"][0], by_step["judge"][0]
    [logged] = [m for m in client.search_logged_models([train.info.experiment_id]) if m.source_run_id == train.info.run_id]
    metrics = {metric.key: metric for metric in logged.metrics}
    assert metrics["model/distinct_2"].run_id == evaluate.info.run_id and metrics["model/distinct_2"].dataset_name == "folksy-test"
    assert metrics["judge_mean"].value == judge.data.metrics["judge_mean"] and metrics["judge_mean"].run_id == judge.info.run_id
    assert "ab_engine_win_rate" in metrics
    assert not [key for key in metrics if key.startswith(("base/", "engine/", "judge_calibration", "judge_realistic"))]
    names = {(d.dataset.name, d.tags[0].value) for d in client.get_run(train.info.run_id).inputs.dataset_inputs}
    assert {name.split("-of-")[0] for name, _ in names} == {"folksy-train-32", "folksy-val-16"}  # QUICK_TRAIN_OVERRIDES: train_subsample=32, val_subsample=16


def test_rerun_reuses_every_finished_step(pipeline):
    out = pipeline.second.stdout + pipeline.second.stderr
    for position, step in enumerate(STEPS, start=1):
        assert f"[{position}/5] {step}: reusing finished run" in out
    assert pipeline.second_seconds < pipeline.first_seconds / 2


def test_registered_version_has_staging_and_production_iff_gate_passed(pipeline):
    client = client_for(pipeline)
    model = client.get_registered_model("folksy-proverbs")
    version = client.get_model_version("folksy-proverbs", "1")
    assert str(model.aliases.get("staging")) == "1"  # an int from a SQLite store, a string over REST
    passed = version.tags["gate_passed"] == "true"
    assert ("production" in model.aliases) == passed
    assert version.tags["gate_reason"]
    assert version.description.startswith("**Gate") and version.tags["gate_reason"] in version.description
    entry = json.loads((pipeline.registry_dir / "folksy-proverbs" / "v1.json").read_text())
    assert entry["model_id"] == "folksy-proverbs/1"
    assert entry["status"] == ("production" if passed else "staging")
    assert entry["run_ids"]["judge"] == version.tags["judge_run_id"]


def force_production(pipeline) -> None:
    client = client_for(pipeline)
    if "production" not in client.get_registered_model("folksy-proverbs").aliases:
        train = step_runs(pipeline)["train"][-1].info.run_id
        result = run_step("steps.register", "--train-run-id", train, "--force", "true", "--registry-dir", str(pipeline.registry_dir), env=pipeline.env)
        assert result.returncode == 0, result.stderr


RAIN = "Tell me something about rain."
GREEDY = {"temperature": 0.0, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def production_model(pipeline) -> dict:
    """The production model as `mlflow.pyfunc.load_model` gives it in a fresh process: its greedy saying
    for RAIN, which the CLI and the REST server must repeat word for word, and two sampled ones.

    The quick pipeline's model fails the gate, so this promotes it by force; tests/conftest.py runs the
    tests that use this fixture after every other test of the shared store."""
    force_production(pipeline)
    code = (
        "import mlflow, json\n"
        "model = mlflow.pyfunc.load_model('models:/folksy-proverbs@production')\n"
        f"greedy = model.predict([{RAIN!r}], params={GREEDY!r})\n"
        f"sampled = model.predict([{RAIN!r}, 'Tell me a proverb.'], params={{'max_new_tokens': 16, 'seed': 1}})\n"
        f"one = model.predict([{RAIN!r}], params={{'max_new_tokens': 16, 'seed': 1}})\n"  # best-of-k, the model's default
        "print(json.dumps({'greedy': list(greedy), 'sampled': list(sampled), 'one': list(one)}))\n"
    )
    env = {**pipeline.env, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=pipeline.server.root)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_model_loads_by_alias_in_a_fresh_process(pipeline, production_model):
    [saying] = production_model["greedy"]
    assert isinstance(saying, str) and saying.strip()
    sampled = production_model["sampled"]
    assert len(sampled) == 2 and all(isinstance(s, str) and s.strip() for s in sampled)
    # the alias leads to the version register made from this pipeline's train run
    version = client_for(pipeline).get_model_version_by_alias("folksy-proverbs", "production")
    assert version.run_id == step_runs(pipeline)["train"][-1].info.run_id


def test_folksy_generate_uses_the_production_model(pipeline, production_model):
    result = run_step("folksy.cli", "generate", RAIN, "--temperature", "0", "--max-new-tokens", "12", env=pipeline.env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.rstrip("\n").splitlines() == production_model["greedy"]  # the same saying, word for word
    sampled = run_step("folksy.cli", "generate", RAIN, "-n", "2", "--max-new-tokens", "12", "--seed", "3", env=pipeline.env)
    assert sampled.returncode == 0 and len([line for line in sampled.stdout.splitlines() if line.strip()]) == 2
    picked = run_step("folksy.cli", "generate", RAIN, "--max-new-tokens", "16", "--seed", "1", env=pipeline.env)
    assert picked.returncode == 0 and picked.stdout.rstrip("\n").splitlines() == production_model["one"]  # best_of as served


def test_mlflow_models_serve_answers_invocations(pipeline, production_model):
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", "models:/folksy-proverbs@production", "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        cwd=pipeline.server.root, env=pipeline.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                assert time.time() < deadline, "mlflow models serve did not come up within 180 s"
                time.sleep(1)
        body = json.dumps({"inputs": [RAIN], "params": GREEDY}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
        assert answer["predictions"] == production_model["greedy"]  # what load_model's predict says, word for word
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
