import pytest

from steps import tracking


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
