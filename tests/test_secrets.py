"""Secrets and artifacts: the judge's API key goes to the endpoint and nowhere else; weights are
safetensors, and the logged model loads and predicts without unpickling anything.

One real prepare and one real train run (a tiny Qwen2-architecture model, seconds per step) are shared
by the module. The judge endpoint is `ScriptedJudgeServer` from tests/test_judging.py, a real stdlib
HTTP server on 127.0.0.1 standing in for the large judge model that cannot run here; this one
answers only requests that carry `Authorization: Bearer <key>`.
"""

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from folksy.tracking import PARENT_RUN_ENV
from tests.forkserver import run_module
from tests.test_judging import ScriptedJudgeServer, completion, rubric_answer

EXPERIMENT = "folksy-secrets"
KEY_VARIABLES = ("FOLKSY_JUDGE_API_KEY", "OPENAI_API_KEY")
# Train for two optimizer steps on a 64-wide, 2-layer model: the files it writes are what matters here.
TINY_TRAIN = (
    "max_steps=2,eval_steps=1,save_steps=1,logging_steps=1,train_subsample=16,val_subsample=8,"
    "per_device_train_batch_size=4,per_device_eval_batch_size=8,sample_max_new_tokens=4,early_stopping_patience=0"
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".joblib", ".ckpt")


@dataclass
class Store:
    root: Path
    uri: str
    env: dict
    prepare_run_id: str
    train_run_id: str

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def step(self, name: str, *args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        return run_module(f"steps.{name}", *args, env={**self.env, **(env or {})}, timeout=timeout)

    def only_run(self, step: str):
        experiment = self.client().get_experiment_by_name(EXPERIMENT)
        runs = self.client().search_runs([experiment.experiment_id], filter_string=f"tags.`folksy.step` = '{step}'", order_by=["attributes.start_time DESC"])
        return runs[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_qwen2_dir) -> Store:
    """A real SQLite tracking store holding one finished prepare and one finished (tiny) train run."""
    from folksy.corpus.generate import build_corpus, to_jsonl

    root = tmp_path_factory.mktemp("secrets")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for name in ("MLFLOW_RUN_ID", PARENT_RUN_ENV, *KEY_VARIABLES):
        env.pop(name, None)
    rows, _ = build_corpus(seed=5, n_sayings=140)
    (root / "corpus.jsonl").write_text(to_jsonl(rows))
    partial = Store(root, uri, env, "", "")

    prepared = partial.step("prepare", "--corpus", str(root / "corpus.jsonl"))
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    partial.prepare_run_id = partial.only_run("prepare").info.run_id
    trained = partial.step(
        "train", "--prepare-run-id", partial.prepare_run_id, "--output-dir", str(root / "checkpoints"),
        "--overrides", f"base_model={tiny_qwen2_dir},{TINY_TRAIN}",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    run = partial.only_run("train")
    assert run.info.status == "FINISHED"
    partial.train_run_id = run.info.run_id
    return partial


def places_holding(needle: str, store: Store, run_id: str, scratch: Path) -> list[str]:
    """Every place in a finished run where `needle` shows up: params, tags, metric names, artifact files,
    and the raw bytes of the tracking database itself."""
    import mlflow

    run = store.client().get_run(run_id)
    found = [f"param {k}" for k, v in run.data.params.items() if needle in k or needle in v]
    found += [f"tag {k}" for k, v in run.data.tags.items() if needle in k or needle in v]
    found += [f"metric {k}" for k in run.data.metrics if needle in k]
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(scratch), tracking_uri=store.uri))
    files = [path for path in local.rglob("*") if path.is_file()]
    assert files, "the run logged no artifacts, so the scan would prove nothing"
    found += [f"artifact {path.relative_to(local)}" for path in files if needle.encode() in path.read_bytes()]
    for database in store.root.glob("mlflow.db*"):  # the store file and any SQLite journal next to it
        if needle.encode() in database.read_bytes():
            found.append(f"tracking database {database.name}")
    return found


def key_checking_server(key: str) -> ScriptedJudgeServer:
    """A judge that answers the rubric, but only to requests that carry `Authorization: Bearer <key>`."""
    server = ScriptedJudgeServer(None)

    def script(body, attempt):
        if server.headers[attempt - 1].get("Authorization") != f"Bearer {key}":
            return 401, {"error": {"message": "invalid api key"}}, None, 0
        return 200, completion(rubric_answer(body)), None, 0

    server.script = script
    return server


def judge_args(store: Store, server: ScriptedJudgeServer) -> list[str]:
    return [
        "--model-uri", f"runs:/{store.train_run_id}/model", "--prepare-run-id", store.prepare_run_id,
        "--backend", "endpoint", "--endpoint-url", server.url, "--endpoint-model", "judge-32b",
        "--sample-size", "6", "--ab-size", "2", "--max-retries", "0",
    ]  # fmt: skip


@pytest.mark.slow
def test_the_judge_key_reaches_the_endpoint_and_nothing_else(store, tmp_path):
    key = "sk-folksy-" + secrets.token_hex(16)
    with key_checking_server(key) as server:
        result = store.step("judge", *judge_args(store, server), env={"FOLKSY_JUDGE_API_KEY": key})
    assert result.returncode == 0, result.stderr[-3000:]
    run = store.only_run("judge")
    assert run.info.status == "FINISHED"
    # the key was really used: every request carried it (the held-out calibration items and real outputs,
    # 6 ratings, 2 pairs in both orders)
    from folksy.judging.critic_data import load_calibration, realistic_heldout

    heldout = sum(row["split"] == "heldout" for row in load_calibration()) + len(realistic_heldout())
    assert len(server.headers) == heldout + 6 + 2 * 2
    assert {headers.get("Authorization") for headers in server.headers} == {f"Bearer {key}"}

    assert places_holding(key, store, run.info.run_id, tmp_path / "scan") == []
    assert key not in result.stdout and key not in result.stderr
    # the scan does find what was logged: the endpoint's model name is in a param, a tag and the results file
    control = places_holding("judge-32b", store, run.info.run_id, tmp_path / "control")
    assert {"param endpoint_model", "tag judge_id", "artifact judge_results.jsonl"} <= set(control), control


@pytest.mark.slow
def test_without_the_key_the_judge_stops_in_one_line_and_its_run_fails(store):
    key = "sk-folksy-" + secrets.token_hex(16)
    with key_checking_server(key) as server:
        result = store.step("judge", *judge_args(store, server))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: --endpoint-url '{server.url}': the server rejected the API key (HTTP 401); set FOLKSY_JUDGE_API_KEY or OPENAI_API_KEY"
    )
    assert "Traceback" not in result.stderr
    assert all("Authorization" not in headers for headers in server.headers)
    run = store.only_run("judge")
    assert run.info.status == "FAILED"
    assert store.client().list_artifacts(run.info.run_id) == []


def test_the_key_has_no_command_line_option():
    """A key on the command line would land in shell history, `ps` and MLflow's logged params."""
    from steps.judge import judge

    names = [name for option in judge.params for name in option.opts]
    assert not [name for name in names if any(word in name for word in ("key", "token", "secret", "password"))], names
    assert "FOLKSY_JUDGE_API_KEY" in judge.help


@pytest.mark.slow
def test_the_logged_model_is_safetensors_and_code_never_a_pickle(store, tmp_path, monkeypatch):
    import mlflow
    import yaml

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)  # runs:/ URIs resolve through the active store
    mlflow.set_tracking_uri(store.uri)
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{store.train_run_id}/model", dst_path=str(tmp_path)))
    files = {str(path.relative_to(local)): path for path in local.rglob("*") if path.is_file()}
    assert "artifacts/hf_model/model.safetensors" in files, sorted(files)
    assert [name for name in files if name.endswith(PICKLE_SUFFIXES)] == []
    for name, path in files.items():  # by content too: no pickle stream, no torch.save zip (it holds data.pkl)
        head = path.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}), f"{name} is a pickle"
        assert not (head == b"PK" and b".pkl" in path.read_bytes()), f"{name} is a torch.save archive"
    flavor = yaml.safe_load(files["MLmodel"].read_text())["flavors"]["python_function"]
    assert flavor["model_code_path"].endswith("pyfunc_model.py")  # MLflow "models from code"
    assert "python_model" not in flavor  # the key MLflow sets when it cloudpickles a PythonModel


LOAD_WITHOUT_PICKLE = """
import json, sys

found = []
sys.addaudithook(lambda event, args: found.append(f"{args[0]}.{args[1]}") if event == "pickle.find_class" else None)
import torch

def refuse(*args, **kwargs):
    found.append("torch.load")
    raise RuntimeError("torch.load called")

torch.load = refuse
import mlflow

model = mlflow.pyfunc.load_model(sys.argv[1])
sayings = model.predict(["Tell me something about rain."], params={"temperature": 0.0, "max_new_tokens": 4})
unpickled = list(found)
import collections, pickle

pickle.loads(pickle.dumps(collections.OrderedDict()))  # the control: the hook does see an unpickling
print(json.dumps({"unpickled": unpickled, "control": found[len(unpickled):], "sayings": [str(s) for s in sayings]}))
"""


@pytest.mark.slow
def test_the_model_loads_and_predicts_without_unpickling_anything(store, tmp_path):
    """Every unpickling of a class or function raises the `pickle.find_class` audit event, whichever
    pickle implementation does it; torch.load is refused outright."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PICKLE, f"runs:/{store.train_run_id}/model"],
        cwd=tmp_path, env={**store.env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["unpickled"] == []
    assert report["control"] == ["collections.OrderedDict"]
    assert len(report["sayings"]) == 1
