import pytest

from folksy import tracking


def test_default_store_is_sqlite_in_the_project_root(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{tracking.PROJECT_ROOT / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_step_run_is_named_tagged_and_failed_on_error(tracking_uri):
    import mlflow

    with pytest.raises(ValueError):
        with tracking.step_run("prepare") as run:
            run_id = run.info.run_id
            raise ValueError("boom")
    finished = mlflow.get_run(run_id)
    assert finished.info.status == "FAILED"
    assert finished.info.run_name == "prepare"
    assert finished.data.tags["folksy.step"] == "prepare"
    assert tracking.latest_run_id("prepare") is None  # a failed run is never picked up downstream

    with tracking.step_run("prepare") as run:
        pass
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"
    assert tracking.latest_run_id("prepare") == run.info.run_id


def test_step_run_nests_under_main(tracking_uri, monkeypatch):
    import mlflow

    with tracking.step_run("main") as parent:
        pass
    monkeypatch.setenv(tracking.PARENT_RUN_ENV, parent.info.run_id)
    with tracking.step_run("train") as child:
        pass
    assert mlflow.get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_the_long_steps_log_system_metrics_and_the_environment_can_say_otherwise(tracking_uri, monkeypatch):
    import time

    import mlflow

    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING")  # the suite turns them off (conftest.py)
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")

    def system_metrics_of(step):
        with tracking.step_run(step) as run:
            time.sleep(2)
        return {key for key in mlflow.get_run(run.info.run_id).data.metrics if key.startswith("system/")}

    for step in tracking.LONG_STEPS:
        assert "system/cpu_utilization_percentage" in system_metrics_of(step), step
    assert system_metrics_of("register") == set()  # seconds long: nothing to watch
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    assert system_metrics_of("judge") == set()


def test_earlier_runs_are_found_in_the_experiment_mlflow_run_chose(tracking_uri, monkeypatch):
    """`mlflow run` without --experiment-name puts every step in `Default` and tells the step only its
    run id: train must find prepare there, not in the `folksy` experiment that may not exist."""
    from mlflow import MlflowClient

    client = MlflowClient()
    with tracking.step_run("prepare") as named:  # in MLFLOW_EXPERIMENT_NAME's experiment
        pass
    default = "0"
    prepare = client.create_run(default, tags={"folksy.step": "prepare"})
    client.set_terminated(prepare.info.run_id, "FINISHED")
    launched = client.create_run(default, tags={"folksy.step": "train"})  # what `mlflow run . -e train` creates

    monkeypatch.setenv("MLFLOW_RUN_ID", launched.info.run_id)
    assert tracking.current_experiment().name == "Default"
    assert tracking.latest_run_id("prepare") == prepare.info.run_id
    assert tracking.latest_run_id("prepare", experiment="folksy-test") == named.info.run_id  # a named one still wins
    monkeypatch.delenv("MLFLOW_RUN_ID")
    assert tracking.latest_run_id("prepare") == named.info.run_id
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "new")  # outside `mlflow run` the step creates its experiment
    assert tracking.latest_run_id("prepare") is None and tracking.current_experiment().name == "new"


def test_step_param_undoes_the_quotes_mlflow_run_logs_for_an_empty_parameter():
    assert tracking.step_param({"prepare_run_id": "''"}, "prepare_run_id") == ""
    assert tracking.step_param({"prepare_run_id": "''", "resolved_prepare_run_id": "abc123"}, "prepare_run_id") == "abc123"
    assert tracking.step_param({"prepare_run_id": "abc123"}, "prepare_run_id") == "abc123"
    assert tracking.step_param({}, "prepare_run_id") == ""
