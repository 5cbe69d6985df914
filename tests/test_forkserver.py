"""The fork server that starts the tests' step processes answers as a fresh interpreter would."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import forkserver
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


def shimmed(command: str, env: dict, output=subprocess.PIPE) -> subprocess.Popen:
    """`command` as `mlflow run` starts a step: through bash, with `python` whatever PATH finds first."""
    return subprocess.Popen(["bash", "-c", command], cwd=PROJECT_ROOT, env=env, stdout=output, stderr=output, text=True, start_new_session=True)


def forked_pids(module: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"forkserver: {re.escape(module)} as (\d+)", forkserver.server().log_path.read_text())]


def test_python_on_the_shims_path_forks_steps_and_answers_as_the_real_interpreter(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "MLFLOW_EXPERIMENT_NAME": "forkserver"}
    shim_env = forkserver.with_shim(env)
    real_env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}
    assert shim_env["PATH"] != real_env["PATH"] and "FOLKSY_TEST_FORKSERVER" in shim_env
    before = len(forked_pids("steps.prepare"))
    commands = (f"python -m steps.prepare --corpus {tmp_path / 'missing.jsonl'}", "python -m steps.not_a_step", "python -c 'import sys; print(sys.argv[1:])' a 'b c'")
    for command in commands:
        answers = []
        for process_env in (shim_env, real_env):
            process = shimmed(command, process_env)
            out, err = process.communicate(timeout=300)
            answers.append((process.returncode, out, err.strip().splitlines()[-1:]))
        assert answers[0] == answers[1], command
    assert len(forked_pids("steps.prepare")) == before + 1  # served by a fork, not by the real interpreter the shim falls back to


def test_a_killed_shim_takes_its_step_with_it(tmp_path):
    # the whole corpus takes ~10 s to split and log: long enough to kill the shim (as a parent's SIGKILL would) midway
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("forkserver")  # the store made first: a kill amid its schema migrations would break it
    env = forkserver.with_shim({**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "forkserver"})
    before = forked_pids("steps.prepare")
    process = shimmed("python -m steps.prepare --corpus corpus/training_pairs.jsonl", env, output=subprocess.DEVNULL)  # not waited on: the step holds pipes
    deadline = time.monotonic() + 60
    while len(forked_pids("steps.prepare")) == len(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    step = forked_pids("steps.prepare")[-1]
    assert step not in before
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)  # bash and the shim; the step is in a session of its own
    process.wait(timeout=30)
    deadline = time.monotonic() + 3
    while Path(f"/proc/{step}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{step}").exists()  # the server saw the shim hang up, killed the step and reaped it
    runs = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("forkserver").experiment_id])
    assert [run.info.status for run in runs] in ([], ["RUNNING"])  # killed midway: no prepare run finished
