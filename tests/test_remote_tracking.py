"""The whole default pipeline against a real `mlflow server` on 127.0.0.1, every byte over HTTP.

The server (tests/servers.py) keeps a SQLite store and a local artifact root that it serves with
`--serve-artifacts`; the pipeline and the loading process know only its URL. The pipeline itself runs
once per session in the `pipeline_server` fixture (tests/conftest.py), which tests/test_main.py (the
pipeline's own checks) and the browser test share.
"""

import json
import subprocess
import sys

import pytest

from tests.servers import client_env, mlflow_server

STEPS = ("prepare", "train", "evaluate", "judge", "register")

LOAD_AND_PREDICT = """
import json, sys
import mlflow

model = mlflow.pyfunc.load_model(sys.argv[1])
sayings = model.predict(["Tell me something about rain."], params={"temperature": 0.0, "max_new_tokens": 24})
print(json.dumps({"sayings": [str(s) for s in list(sayings)]}))
"""


def test_server_fixture_serves_artifacts_over_http(tmp_path):
    """The fixture itself: a fresh server hands out mlflow-artifacts:/ and stores what clients upload under its root."""
    from mlflow import MlflowClient

    with mlflow_server(tmp_path / "server") as server:
        assert server.healthy()
        client = MlflowClient(server.url)
        experiment_id = client.create_experiment("fixture-check")
        assert client.get_experiment(experiment_id).artifact_location == f"mlflow-artifacts:/{experiment_id}"
        run = client.create_run(experiment_id)
        note = tmp_path / "note.txt"
        note.write_text("a fence post ain't a tree")
        client.log_artifact(run.info.run_id, str(note))
        stored = server.artifacts_destination / experiment_id / run.info.run_id / "artifacts" / "note.txt"
        assert stored.read_text() == "a fence post ain't a tree"
        process = server.process
    assert process.poll() is not None, "the server outlived its context"
    assert not server.healthy()


@pytest.mark.slow
def test_pipeline_against_a_remote_server(pipeline_server):
    from mlflow import MlflowClient

    server = pipeline_server.server
    client = MlflowClient(server.url)
    assert set(STEPS) <= set(pipeline_server.run_ids), pipeline_server.run_ids
    main_id = pipeline_server.run_ids["main"]
    for step in ("main", *STEPS):
        run = client.get_run(pipeline_server.run_ids[step])
        assert run.info.status == "FINISHED", (step, run.info.status)
        assert run.data.tags["folksy.step"] == step
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/"), run.info.artifact_uri  # proxied, never a client path
        if step not in ("main", "prepare"):
            assert run.data.tags["mlflow.parentRunId"] == main_id, step
    # prepare finished under the pipeline that was killed during training, and this one reused it
    parent = client.get_run(client.get_run(pipeline_server.run_ids["prepare"]).data.tags["mlflow.parentRunId"])
    assert parent.data.tags["folksy.step"] == "main" and parent.info.status == "FAILED"

    # the registered model's files live in the server's artifact store, nowhere the client wrote
    aliases = client.get_registered_model(pipeline_server.model_name).aliases
    version = client.get_model_version(pipeline_server.model_name, aliases["staging"])
    weights = list(server.artifacts_destination.rglob("*.safetensors"))
    assert weights, f"no safetensors under {server.artifacts_destination}"
    assert not list(server.artifacts_destination.rglob("*.pkl")), "weights must never be pickled"
    assert version.run_id == pipeline_server.run_ids["train"]


@pytest.mark.slow
def test_registered_model_loads_by_alias_in_a_fresh_process(pipeline_server, tmp_path):
    server = pipeline_server.server
    log_lines_before = len(server.log_path.read_text(errors="replace").splitlines())
    uri = f"models:/{pipeline_server.model_name}@staging"
    result = subprocess.run(
        [sys.executable, "-c", LOAD_AND_PREDICT, uri],
        cwd=tmp_path,  # nowhere near the project's or the server's files
        env=client_env(server),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sayings = json.loads(result.stdout.strip().splitlines()[-1])["sayings"]
    assert len(sayings) == 1 and sayings[0].strip(), sayings

    # ...and the weights reached it through the server's artifact proxy
    requests = server.log_path.read_text(errors="replace").splitlines()[log_lines_before:]
    downloads = [line for line in requests if "GET /api/2.0/mlflow-artifacts/artifacts/" in line and " 200" in line]
    assert any(".safetensors" in line for line in downloads), "\n".join(requests[-20:])
