"""How a step finds the runs before it: the model's train run, its prepare run's splits, the runs that
scored a model. MLflow, but no model code."""

from folksy.errors import FolksyError


def model_version_of(model_uri: str):
    """The registered version that models:/<name>@<alias> or models:/<name>/<version> names; None for any other URI."""
    if not model_uri.startswith("models:/"):
        return None
    from mlflow import MlflowClient

    reference = model_uri[len("models:/") :].rstrip("/")
    if "@" in reference:
        name, alias = reference.split("@", 1)
        return MlflowClient().get_model_version_by_alias(name, alias)
    if "/" in reference:
        name, number = reference.rsplit("/", 1)
        return MlflowClient().get_model_version(name, number)
    return None


def source_run_id(model_uri: str) -> str | None:
    """The run that logged a model: the id in runs:/<id>/..., or the source run of a registered version
    (models:/<name>@<alias>, models:/<name>/<version>) or of a logged model (models:/<model id>)."""
    if model_uri.startswith("runs:/"):
        return model_uri[len("runs:/") :].split("/")[0] or None
    if not model_uri.startswith("models:/"):
        return None
    from mlflow import MlflowClient

    try:
        version = model_version_of(model_uri)
        return version.run_id if version else MlflowClient().get_logged_model(model_uri[len("models:/") :].rstrip("/")).source_run_id
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


SPLIT_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}  # MLflow's dataset contexts


def split_frame(rows: list[dict]):
    """Split rows (folksy.data.read_split) as the table MLflow shows for a dataset; the one shape
    prepare, train and evaluate log, so the same rows have the same digest in every run."""
    import pandas as pd

    from folksy.chat import user_prompt

    return pd.DataFrame(
        {
            "input": [user_prompt(row) for row in rows],
            "output": [row["output"] for row in rows],
            "meta_template": [row["meta_template"] for row in rows],
            "input_type": [row["input_type"] for row in rows],
        }
    )


def log_split_datasets(prepare_run_id: str, rows_by_split: dict[str, list[dict]]) -> dict:
    """Link the split rows a step used to its (active) run as dataset inputs.

    Rows that are a whole split link the prepare run's own dataset, which keeps one name and digest across
    prepare, train and evaluate in the UI; a subsample (train's `train_subsample`) is logged as a dataset
    of exactly those rows, named for it (`folksy-train-2000-of-25000`). Returns the datasets by split.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput, InputTag

    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id
    prepare = client.get_run(prepare_run_id)
    logged = {item.dataset.name: item.dataset for item in prepare.inputs.dataset_inputs}
    datasets = {}
    for split, rows in rows_by_split.items():
        whole = prepare.data.metrics.get(f"rows_{split}", len(rows)) == len(rows)
        if whole and f"folksy-{split}" in logged:
            datasets[split] = logged[f"folksy-{split}"]
            client.log_inputs(run_id, [DatasetInput(datasets[split], [InputTag("mlflow.data.context", SPLIT_CONTEXTS[split])])])
            continue
        name = f"folksy-{split}" if whole else f"folksy-{split}-{len(rows)}-of-{int(prepare.data.metrics[f'rows_{split}'])}"
        source = prepare.data.params.get("corpus") or "corpus"
        datasets[split] = mlflow.data.from_pandas(split_frame(rows), source=source, name=name, targets="output")
        mlflow.log_input(datasets[split], context=SPLIT_CONTEXTS[split])
    return datasets


def logged_model_id(model_uri: str) -> str | None:
    """The MLflow 3 logged model behind a model URI (`runs:/…/model`, `models:/name@alias`), or None
    for a plain model directory or a model logged without one."""
    from mlflow.models import get_model_info

    try:
        return get_model_info(model_uri).model_id
    except Exception:  # a directory, a pre-MLflow-3 model: the metrics stay on the run alone
        return None


def log_metrics_for_model(metrics: dict, model_uri: str, describes_model, dataset=None) -> None:
    """Log a step's metrics to its run; those that `describes_model(key)` picks also show on the logged
    model's page (and, with `dataset`, against that dataset), as MLflow 3 links metrics to models."""
    import mlflow

    model_id = logged_model_id(model_uri)
    about_model = {key: value for key, value in metrics.items() if model_id and describes_model(key)}
    if about_model:
        mlflow.log_metrics(about_model, model_id=model_id, dataset=dataset)
    rest = {key: value for key, value in metrics.items() if key not in about_model}
    if rest:
        mlflow.log_metrics(rest)


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


def finished_step_run(client, run_id: str, step: str, needed_by: str = "register", also: tuple[str, ...] = ()):
    """The run given as --<step>-run-id, refused in one line unless it exists and is a FINISHED run of
    `step` (or of a step in `also`: a dpo run stands for a train run where a model is wanted)."""
    option = f"--{step}-run-id '{run_id}'"
    try:
        run = client.get_run(run_id)
    except Exception:
        raise FolksyError(f"{option}: no such run") from None
    kind, status = run.data.tags.get("folksy.step", "non-folksy"), run.info.status
    if kind not in (step, *also) or status != "FINISHED":
        raise FolksyError(f"{option}: a {status} {kind} run; {needed_by} needs a FINISHED {' or '.join((step, *also))} run")
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
