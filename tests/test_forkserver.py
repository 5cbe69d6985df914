"""The fork server that starts the tests' step processes answers as a fresh interpreter would."""

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.forkserver import run_module


def last_line(done: subprocess.CompletedProcess) -> str:
    return done.stderr.strip().splitlines()[-1]


def test_a_forked_step_fails_exactly_as_a_fresh_interpreter_does(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "forkserver"}
    args = ("--corpus", str(tmp_path / "missing.jsonl"))
    forked = run_module("steps.prepare", *args, env=env)
    fresh = subprocess.run([sys.executable, "-m", "steps.prepare", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert getattr(forked, "forked", False) and not getattr(fresh, "forked", False)
    assert (forked.returncode, last_line(forked)) == (fresh.returncode, last_line(fresh)) == (2, f"Error: {args[1]}: no such corpus file")
    assert forked.args == fresh.args


def test_the_callers_environment_reaches_the_step_and_import_time_settings_get_a_fresh_interpreter(tmp_path):
    from mlflow import MlflowClient

    from folksy.corpus.generate import build_corpus, to_jsonl

    rows, _ = build_corpus(seed=5, n_sayings=40)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(to_jsonl(rows))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "forkserver"}
    done = run_module("steps.prepare", "--corpus", str(corpus), env=env)
    assert done.returncode == 0 and done.forked, done.stderr[-2000:]
    experiment = MlflowClient(uri).get_experiment_by_name("forkserver")
    [run] = MlflowClient(uri).search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_id in done.stdout

    # HF_HOME is read when huggingface_hub is imported, which the server has done: a real interpreter runs it
    elsewhere = run_module("steps.prepare", "--corpus", str(tmp_path / "missing.jsonl"), env={**env, "HF_HOME": str(tmp_path / "hf")})
    assert elsewhere.returncode == 2 and not getattr(elsewhere, "forked", False)


def test_a_step_past_its_timeout_is_killed_and_the_next_one_is_still_forked(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "forkserver"}
    with pytest.raises(subprocess.TimeoutExpired):  # the whole corpus takes ~10 s to split and log
        run_module("steps.prepare", "--corpus", "corpus/training_pairs.jsonl", env=env, timeout=1)
    after = run_module("folksy.cli", "--help", env=env)
    assert after.returncode == 0 and after.forked and "generate" in after.stdout
