"""MLflow conventions shared by every step: tracking URI, experiment, run naming and failure handling."""

import os
import re
import signal
import subprocess
from contextlib import contextmanager

from folksy.defaults import PROJECT_ROOT

DEFAULT_EXPERIMENT = "folksy"
PARENT_RUN_ENV = "FOLKSY_PARENT_RUN_ID"  # set by `main` so that each step run nests under it
LONG_STEPS = ("main", "sweep", "train", "dpo", "evaluate", "judge")  # minutes each: their runs log system metrics (CPU, memory, disk)


def tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` wins; otherwise MLflow 3's SQLite store in the project root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def configure():
    """Point MLflow at the project's store and experiment. Returns the mlflow module."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri())
    if not os.environ.get("MLFLOW_RUN_ID"):  # `mlflow run` already created the run in its experiment
        try:
            mlflow.set_experiment(experiment_name())
        except MlflowException as error:
            one_line = tracking_error(error)
            if one_line is None:
                raise
            raise one_line from None
    return mlflow


def tracking_error(error) -> "FolksyError | None":
    """A one-line FolksyError for a tracking server that refused our login (HTTP 401/403) or cannot be
    reached at all; None for any other MlflowException."""
    from folksy.errors import FolksyError

    server = redact_url(tracking_uri())  # never echo a password embedded in the URI
    if "Max retries exceeded" in str(error) or "NewConnectionError" in str(error):
        return FolksyError(f"MLFLOW_TRACKING_URI {server}: cannot reach the tracking server; is it running, and is the URI right?")
    status = error.get_http_status_code() if hasattr(error, "get_http_status_code") else None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 403:
        return FolksyError(f"MLFLOW_TRACKING_URI {server}: user '{user}' may not use experiment '{experiment_name()}' (HTTP 403)")
    if status == 401 and user:
        return FolksyError(f"MLFLOW_TRACKING_URI {server}: the server rejected user '{user}' (HTTP 401); check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if status == 401:
        return FolksyError(f"MLFLOW_TRACKING_URI {server}: the server wants a login (HTTP 401); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    return None


def redact_url(url: str) -> str:
    """The URL without any user:password@ part, so it can be shown and logged."""
    return re.sub(r"^(\w+://)[^/@]*@", r"\1", url or "")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _raise_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextmanager
def step_run(step: str, run_id: str | None = None):
    """Open (or resume) the MLflow run for one step.

    The run is named after the step and tagged `folksy.step`; any exception, Ctrl-C or SIGTERM ends it
    FAILED rather than leaving it RUNNING. Under `main` it nests below the parent run. The long steps
    (LONG_STEPS) log system metrics.
    """
    mlflow = configure()
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    tags = {"folksy.step": step}
    parent = os.environ.get(PARENT_RUN_ENV)
    if parent:
        tags["mlflow.parentRunId"] = parent
    try:
        # MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING, when set, decides for every step
        system_metrics = None if os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING") else step in LONG_STEPS
        with mlflow.start_run(run_id=run_id or os.environ.get("MLFLOW_RUN_ID") or None, run_name=step, tags=tags, log_system_metrics=system_metrics) as run:
            mlflow.set_tag("mlflow.runName", step)
            commit = git_commit()
            if commit:
                mlflow.set_tag("mlflow.source.git.commit", commit)
            yield run
    finally:
        signal.signal(signal.SIGTERM, previous)


def current_experiment():
    """The experiment this step's run belongs to, or None if it does not exist yet.

    Under `mlflow run` that is the experiment MLflow created the run in (`--experiment-name`, or
    `Default` when none was given), which the step only learns from MLFLOW_RUN_ID; otherwise it is
    MLFLOW_EXPERIMENT_NAME or `folksy`. Earlier steps' runs are looked up there.
    """
    mlflow = configure()
    launched_as = os.environ.get("MLFLOW_RUN_ID")
    if launched_as:
        return mlflow.get_experiment(mlflow.get_run(launched_as).info.experiment_id)
    return mlflow.get_experiment_by_name(experiment_name())


def latest_run_id(step: str, experiment: str | None = None) -> str | None:
    """The newest FINISHED run of a step in `experiment` (default: the current one), or None."""
    mlflow = configure()
    found = mlflow.get_experiment_by_name(experiment) if experiment else current_experiment()
    if found is None:
        return None
    runs = mlflow.search_runs(
        experiment_ids=[found.experiment_id],
        filter_string=f"tags.`folksy.step` = '{step}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0].info.run_id if runs else None


def step_param(params: dict, name: str) -> str:
    """A step run's parameter as the step used it.

    `mlflow run` logs an empty parameter as the shell quotes "''"; a step that filled such a default
    in (train's prepare_run_id) logged the value it used as `resolved_<name>` (see log_params_once).
    """
    value = params.get(f"resolved_{name}") or params.get(name) or ""
    return "" if not value.strip("'\"") else value


def log_params_once(params: dict) -> None:
    """Log params on the active run without clashing with what `mlflow run` logged already.

    `mlflow run` logs the entry point's parameters as given (an empty one as "''"), and MLflow refuses
    to change a param. A value the step resolved differently (an empty prepare_run_id filled in from
    the train run) is logged as `resolved_<name>` instead; an equal one is not logged twice.
    """
    import mlflow

    logged = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    fresh = {}
    for key, value in params.items():
        if key not in logged:
            fresh[key] = value
        elif logged[key].strip("'\"").lower() != str(value).lower():
            fresh[f"resolved_{key}"] = value
    if fresh:
        mlflow.log_params(fresh)


def metric_history(run_id: str, key: str) -> list[tuple[int, float]]:
    """(step, value) of every logged value of a metric, complete across a resumed run's processes."""
    from mlflow import MlflowClient

    return [(m.step, m.value) for m in MlflowClient().get_metric_history(run_id, key)]


def package_code(scratch) -> str:
    """A clean copy of the `folksy` package (no __pycache__) under `scratch`, for a logged model's
    `code_paths`: every model the project logs carries the code that loads it, the same way."""
    import shutil
    from pathlib import Path

    target = Path(scratch) / "code" / "folksy"
    shutil.copytree(Path(__file__).resolve().parent, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return str(target)
