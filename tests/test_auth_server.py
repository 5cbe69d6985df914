"""The pipeline's client side against a real `mlflow server --app-name basic-auth` on 127.0.0.1.

Credentials travel only the way MLflow documents: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
With them, prepare logs its splits through the server and register creates a version and moves aliases;
without them (or with a wrong password) each step stops with one line naming the variables to set,
exits 2, and leaves no run, version or alias behind.
"""

import secrets
import subprocess

import pytest

from tests.forkserver import run_module
from tests.servers import client_env, mlflow_server
from tests.test_register import GOOD, make_upstream_runs, stub_model_file  # noqa: F401 (a fixture)

EXPERIMENT = "folksy-auth"


def step(name: str, *args: str, env: dict) -> subprocess.CompletedProcess:
    return run_module(f"steps.{name}", *args, env=env, timeout=300)


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def small_corpus(tmp_path) -> str:
    from folksy.corpus.generate import build_corpus, to_jsonl

    rows, _ = build_corpus(seed=5, n_sayings=140)
    path = tmp_path / "corpus.jsonl"
    path.write_text(to_jsonl(rows))
    return str(path)


@pytest.mark.slow
def test_steps_work_with_basic_auth_credentials_from_the_environment(tmp_path, monkeypatch, small_corpus, stub_model_file):
    from mlflow import MlflowClient
    from mlflow.server import get_app_client

    admin_password, alice_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    with mlflow_server(tmp_path / "server", app_name="basic-auth", admin_password=admin_password) as server:
        anonymous = client_env(server, EXPERIMENT)
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            anonymous.pop(name, None)
        alice = {**anonymous, "MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": alice_password}

        # the admin signs alice up through the auth API, as a team's admin would
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", admin_password)
        get_app_client("basic-auth", tracking_uri=server.url).create_user("alice", alice_password)

        # --- without credentials, or with a wrong password: one line, exit 2, nothing created
        refused = step("prepare", "--corpus", small_corpus, env=anonymous)
        assert refused.returncode == 2, refused.stderr[-2000:]
        assert last_line(refused) == (
            f"Error: MLFLOW_TRACKING_URI {server.url}: the server wants a login (HTTP 401); "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        assert "Traceback" not in refused.stderr
        wrong = step("prepare", "--corpus", small_corpus, env={**alice, "MLFLOW_TRACKING_PASSWORD": "not-" + alice_password})
        assert wrong.returncode == 2
        assert last_line(wrong) == (
            f"Error: MLFLOW_TRACKING_URI {server.url}: the server rejected user 'alice' (HTTP 401); "
            "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
        client = MlflowClient(server.url)  # authenticates with whatever the environment holds: the admin now, alice later
        assert client.get_experiment_by_name(EXPERIMENT) is None, "a refused client must not create anything"

        # --- with alice's credentials in the environment: the steps run and log through the server
        prepared = step("prepare", "--corpus", small_corpus, env=alice)
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        experiment = client.get_experiment_by_name(EXPERIMENT)
        [prepare_run] = client.search_runs([experiment.experiment_id], filter_string="tags.`folksy.step` = 'prepare'")
        assert prepare_run.info.status == "FINISHED"
        assert prepare_run.data.tags["mlflow.user"] == "alice"  # the server knows who logged it
        assert sorted(a.path for a in client.list_artifacts(prepare_run.info.run_id, "splits")) == [
            "splits/stats.json", "splits/test.jsonl", "splits/train.jsonl", "splits/val.jsonl"
        ]  # fmt: skip
        stored = server.artifacts_destination / experiment.experiment_id / prepare_run.info.run_id / "artifacts" / "splits" / "train.jsonl"
        assert stored.stat().st_size > 0, "the splits went up through the server's artifact proxy"
        logged = " ".join([*prepare_run.data.params.values(), *prepare_run.data.tags.values()])
        assert alice_password not in logged and admin_password not in logged

        # a train and a judge run (stub model) logged as alice, then the real register step
        for name, value in (("MLFLOW_TRACKING_URI", server.url), ("MLFLOW_EXPERIMENT_NAME", EXPERIMENT), ("MLFLOW_TRACKING_USERNAME", "alice"), ("MLFLOW_TRACKING_PASSWORD", alice_password)):
            monkeypatch.setenv(name, value)
        upstream = make_upstream_runs(stub_model_file, GOOD)
        registry_dir = str(tmp_path / "registry")

        refused = step("register", "--train-run-id", upstream["train"], "--registry-dir", registry_dir, env=anonymous)
        assert refused.returncode == 2 and "the server wants a login (HTTP 401)" in last_line(refused)
        assert client.search_registered_models() == []

        registered = step("register", "--train-run-id", upstream["train"], "--registry-dir", registry_dir, env=alice)
        assert registered.returncode == 0, registered.stderr[-3000:]
        model = client.get_registered_model("folksy-proverbs")
        assert {alias: int(version) for alias, version in model.aliases.items()} == {"staging": 1, "production": 1}
        assert client.get_model_version("folksy-proverbs", "1").tags["gate_passed"] == "true"
