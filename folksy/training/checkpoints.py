"""Where train keeps its checkpoints, and which MLflow run they belong to, so that a killed run resumes.

The output directory holds the HF Trainer's checkpoint-N folders and a small state file naming the
MLflow run and a digest of the recipe and its inputs (recipe_digest); a different recipe never resumes another's.
"""

STATE_FILE = "folksy_train.json"  # in the output directory: which MLflow run the checkpoints belong to


def recipe_digest(recipe: dict, prepare_run_id: str) -> str:
    """sha256 of what a train run's checkpoints depend on: the recipe, the prepare run and, when the recipe
    filters by it, the corpus reading's labels file."""
    import hashlib
    import json

    from folksy.training.sft import reader_labels_digest

    return hashlib.sha256(json.dumps([recipe, prepare_run_id, reader_labels_digest(recipe)], sort_keys=True).encode()).hexdigest()


def output_dir_for(config: str, output_dir: str, digest: str):
    """--output-dir, or by default one folder per recipe *and* inputs: the same command finds its own
    checkpoints to resume, while a different recipe or prepare run never trips over a killed one."""
    from pathlib import Path

    from folksy.defaults import PROJECT_ROOT

    return Path(output_dir) if output_dir else PROJECT_ROOT / "outputs" / "train" / f"{Path(config).stem}-{digest[:12]}"


def read_state(output_dir, digest: str) -> dict | None:
    """The unfinished run to resume in `output_dir`, or None to start afresh (clearing a finished one)."""
    import json
    import shutil

    from folksy.errors import FolksyError

    state_path = output_dir / STATE_FILE
    if not state_path.is_file():
        if output_dir.is_dir() and any(output_dir.iterdir()):
            raise FolksyError(f"--output-dir {output_dir}: not empty and not a train output directory; pass an empty or new one")
        return None
    state = json.loads(state_path.read_text())
    if state["finished"]:
        shutil.rmtree(output_dir)  # a finished run's checkpoints are in its model artifact now
        return None
    if state["digest"] != digest:
        raise FolksyError(
            f"--output-dir {output_dir}: holds unfinished run {state['run_id']} of another recipe or prepare run; "
            "resume it with the same --config, --overrides and --prepare-run-id, or pass another --output-dir"
        )
    return state


def write_state(output_dir, run_id: str, digest: str, finished: bool) -> None:
    import json

    output_dir.mkdir(parents=True, exist_ok=True)
    temporary = output_dir / (STATE_FILE + ".tmp")
    temporary.write_text(json.dumps({"run_id": run_id, "digest": digest, "finished": finished}) + "\n")
    temporary.replace(output_dir / STATE_FILE)


def latest_checkpoint(output_dir) -> str | None:
    checkpoints = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(checkpoints, key=lambda p: int(p.name.split("-")[-1]))) if checkpoints else None


def fail_orphaned_runs(mlflow) -> None:
    """Mark FAILED the RUNNING train runs whose process died on this host without a word (SIGKILL, OOM)."""
    import os
    import socket

    from mlflow import MlflowClient

    from folksy.tracking import current_experiment

    experiment = current_experiment()
    if experiment is None:
        return
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.`folksy.step` = 'train' and attributes.status = 'RUNNING' and tags.`folksy.host` = '{socket.gethostname()}'",
        output_format="list",
    )
    for run in runs:
        pid = int(run.data.tags.get("folksy.pid", "0"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            MlflowClient().set_terminated(run.info.run_id, status="FAILED")
        except (PermissionError, OSError):
            pass


def adopt_run(client, old_run_id: str, new_run_id: str) -> None:
    """Hand a killed run's work to the run the caller is waiting on.

    `mlflow run` (and so `main`) creates a fresh run B and reports B; a resume under it must leave the
    model and the whole loss history in B, not in the killed run A. So A's metric history is copied
    into B, B is tagged with where it came from, and A is marked FAILED and pointed at B.
    """
    from mlflow.entities import Metric

    old = client.get_run(old_run_id)
    history = [
        Metric(key, m.value, m.timestamp, m.step) for key in old.data.metrics for m in client.get_metric_history(old_run_id, key)
    ]
    for start in range(0, len(history), 1000):  # the store takes at most 1000 metrics a call
        client.log_batch(new_run_id, metrics=history[start : start + 1000])
    client.set_tag(new_run_id, "folksy.resumed_run_id", old_run_id)
    client.set_tag(old_run_id, "folksy.continued_in_run_id", new_run_id)
    if old.info.status == "RUNNING":
        client.set_terminated(old_run_id, status="FAILED")
