"""How a step finds the runs before it: the model's train run, its prepare run's splits, the runs that
scored a model. MLflow, but no model code."""

from folksy.errors import FolksyError


def source_run_id(model_uri: str) -> str | None:
    """The run that logged a model: the id in runs:/<id>/..., or the source run of a registered version
    (models:/<name>@<alias>, models:/<name>/<version>) or of a logged model (models:/<model id>)."""
    if model_uri.startswith("runs:/"):
        return model_uri[len("runs:/") :].split("/")[0] or None
    if not model_uri.startswith("models:/"):
        return None
    from mlflow import MlflowClient

    reference = model_uri[len("models:/") :].rstrip("/")
    client = MlflowClient()
    try:
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        if "/" in reference:
            name, number = reference.rsplit("/", 1)
            return client.get_model_version(name, number).run_id
        return client.get_logged_model(reference).source_run_id
    except Exception as error:
        raise FolksyError(f"--model-uri '{model_uri}': no such registered or logged model ({type(error).__name__})") from None


def alias_version(name: str, alias: str):
    """The registered version `name@alias` points at now, or None when there is no such model or no
    version holds the alias (a registry's first model has no `production` yet)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_inputs(model_uri: str, prepare_run_id: str, base_model: str) -> dict:
    """Fill in evaluate's and judge's defaults from earlier runs, so both score the same model on the same
    split; raise FolksyError if one cannot be found."""
    from mlflow import MlflowClient

    from folksy.base_models import EMBEDDED_DEFAULT
    from folksy.tracking import latest_run_id, step_param

    if not model_uri:
        train = latest_run_id("train")
        if train is None:
            raise FolksyError("--model-uri is empty and there is no finished train run; run `mlflow run . -e train` or pass --model-uri")
        model_uri = f"runs:/{train}/model"
    source = source_run_id(model_uri)
    params = {}
    if source:
        try:
            params = MlflowClient().get_run(source).data.params
        except Exception:
            raise FolksyError(f"--model-uri '{model_uri}': run {source} does not exist in this tracking store") from None
    prepare_run_id = prepare_run_id or step_param(params, "prepare_run_id") or latest_run_id("prepare")
    if not prepare_run_id:
        raise FolksyError("--prepare-run-id is empty and there is no finished prepare run; run `mlflow run . -e prepare` first")
    return {
        "model_uri": model_uri,
        "train_run_id": source or "",
        "prepare_run_id": prepare_run_id,
        "base_model": base_model or step_param(params, "base_model") or EMBEDDED_DEFAULT,
    }


def download_splits(prepare_run_id: str, names, directory) -> dict[str, list[dict]]:
    """splits/<name>.jsonl of a prepare run for each of `names`, read and checked (folksy.data.read_split)."""
    from pathlib import Path

    import mlflow

    from folksy.data import read_split

    rows = {}
    for name in names:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=prepare_run_id, artifact_path=f"splits/{name}.jsonl", dst_path=str(directory))
        except Exception as error:
            raise FolksyError(f"--prepare-run-id {prepare_run_id}: cannot read splits/{name}.jsonl ({type(error).__name__})") from None
        rows[name] = read_split(Path(path))
    return rows


def log_test_dataset(prepare_run_id: str, test_rows: list[dict], run_id: str) -> None:
    """Link the test split to this run as a dataset input.

    The prepare run logged it already (context "testing"); linking that very dataset keeps one name
    and digest across prepare, train and evaluate in the UI. A prepare run without one gets a new one.
    """
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput, InputTag

    from folksy.chat import user_prompt

    client = MlflowClient()
    for logged in client.get_run(prepare_run_id).inputs.dataset_inputs:
        if any(tag.key == "mlflow.data.context" and tag.value == "testing" for tag in logged.tags):
            client.log_inputs(run_id, [DatasetInput(logged.dataset, [InputTag("mlflow.data.context", "testing")])])
            return
    frame = pd.DataFrame(
        {
            "input": [user_prompt(row) for row in test_rows],
            "output": [row["output"] for row in test_rows],
            "meta_template": [row["meta_template"] for row in test_rows],
            "input_type": [row["input_type"] for row in test_rows],
        }
    )
    mlflow.log_input(mlflow.data.from_pandas(frame, name="folksy-test", targets="output"), context="testing")


def find_scoring_run(client, experiment_ids, step: str, model_uri: str):
    """The newest finished run of `step` (evaluate, judge) that scored this model.

    Its model_uri param names the model, or, where `mlflow run` was given no model_uri and logged
    "''", its resolved_model_uri param does (see folksy.tracking.log_params_once).
    """
    found = []
    for param in ("model_uri", "resolved_model_uri"):
        found += client.search_runs(
            experiment_ids,
            filter_string=f"tags.`folksy.step` = '{step}' and attributes.status = 'FINISHED' and params.{param} = '{model_uri}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    return max(found, key=lambda run: run.info.start_time, default=None)


def finished_step_run(client, run_id: str, step: str):
    """The run given as --<step>-run-id, refused in one line unless it exists and is a FINISHED `step` run."""
    option = f"--{step}-run-id '{run_id}'"
    try:
        run = client.get_run(run_id)
    except Exception:
        raise FolksyError(f"{option}: no such run") from None
    kind, status = run.data.tags.get("folksy.step", "non-folksy"), run.info.status
    if kind != step or status != "FINISHED":
        raise FolksyError(f"{option}: a {status} {kind} run; register needs a FINISHED {step} run")
    return run


def check_scoring_run(client, run_id: str, step: str, train_run_id: str):
    """A run named by --judge-run-id / --evaluate-run-id, refused in one line unless it is a FINISHED run of
    `step` that scored the model of `train_run_id` (by runs:/ URI, registered version or logged model)."""
    from folksy.tracking import step_param

    run = finished_step_run(client, run_id, step)
    model_uri = step_param(run.data.params, "model_uri")
    if source_run_id(model_uri) != train_run_id:
        raise FolksyError(f"--{step}-run-id '{run_id}': it scored {model_uri or 'no model'}, not runs:/{train_run_id}/model, the model being registered")
    return run
