"""`mlflow run . -e <step>` for each step in turn, as the README lists them: the hand-offs between steps."""

import os
import sys
from pathlib import Path

import pytest

from folksy.tracking import step_param
from tests.servers import QUICK_TRAIN_OVERRIDES, mlflow_cli

pytestmark = pytest.mark.slow


def test_the_steps_one_by_one_as_the_readme_lists_them(tmp_path, tiny_qwen2_dir):
    """`mlflow run . -e <step>` for each step in turn, no experiment named: MLflow puts every run in
    `Default` and tells a step only its run id, so each step must find the runs before it there. The hand-offs
    are what this checks, so it trains the tiny local Qwen2 (evaluate then answers with it as the base, too)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "FOLKSY_REGISTRY_DIR": str(tmp_path / "registry"), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "FOLKSY_PARENT_RUN_ID"):
        env.pop(name, None)
    quick_train = QUICK_TRAIN_OVERRIDES.replace("max_steps=4,eval_steps=2,save_steps=2", "max_steps=2,eval_steps=2,save_steps=2")
    quick_train += f",base_model={tiny_qwen2_dir},best_of=1"  # best-of-k is the pipeline's and the pyfunc tests' to check
    steps = {
        "prepare": [],
        "train": ["-P", f"overrides={quick_train}", "-P", f"output_dir={tmp_path / 'checkpoints'}"],
        "evaluate": ["-P", "quick=true"],
        "judge": ["-P", "quick=true"],
        "register": ["-P", "force=true"],  # the gate is tested elsewhere; here, that register finds its inputs
    }
    for step, params in steps.items():
        done = mlflow_cli("run", ".", "-e", step, "--env-manager", "local", *params, env=env)
        assert done.returncode == 0, f"mlflow run . -e {step}: " + done.stderr[-3000:]

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = {run.data.tags["folksy.step"]: run for run in client.search_runs(["0"]) if run.data.tags.get("folksy.step") in steps}
    assert set(runs) == set(steps) and all(run.info.status == "FINISHED" for run in runs.values())
    assert client.get_experiment_by_name("folksy") is None  # nothing went looking in an experiment nobody named
    train_id, prepare_id = runs["train"].info.run_id, runs["prepare"].info.run_id
    assert runs["train"].data.params["resolved_prepare_run_id"] == prepare_id
    for step in ("evaluate", "judge"):  # each scored the newest train run, which register then found
        assert runs[step].data.params["model_uri"] == "''"  # how `mlflow run` logs an empty parameter
        assert step_param(runs[step].data.params, "model_uri") == f"runs:/{train_id}/model"
    version = client.get_model_version("folksy-proverbs", "1")
    assert version.tags["train_run_id"] == train_id and version.tags["prepare_run_id"] == prepare_id
    assert version.tags["judge_run_id"] == runs["judge"].info.run_id
