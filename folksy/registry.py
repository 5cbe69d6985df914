"""What `register` records about a version: its JSON registry entry (registry/<name>/v<N>.json), written
atomically. No MLflow calls of its own."""

from folksy.defaults import PRODUCTION_ALIAS, STAGING_ALIAS


def run_seconds(run) -> float | None:
    if run is None or not run.info.end_time:
        return None
    return round((run.info.end_time - run.info.start_time) / 1000, 1)


def framework_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "transformers", "trl", "peft", "mlflow", "sentence-transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def registry_entry(name, version, decision, thresholds, train, prepare, evaluate, judge) -> dict:
    import datetime
    import platform

    from folksy.gate import targets

    params = train.data.params
    return {
        "model_id": f"{name}/{version}",
        "base_model": params.get("base_model"),
        "method": params.get("method"),
        "hyperparameters": {k: v for k, v in sorted(params.items()) if not k.endswith("run_id")},
        "dataset": {
            "name": (prepare.data.params.get("corpus") if prepare else None),
            "size": (prepare.data.metrics.get("rows_total") if prepare else None),
            "hash": (prepare.data.params.get("corpus_sha256") if prepare else params.get("corpus_sha256")),
            "splits": {s: prepare.data.metrics.get(f"rows_{s}") for s in ("train", "val", "test")} if prepare else None,
        },
        "metrics": {
            "eval": dict(sorted(evaluate.data.metrics.items())) if evaluate else {},
            "judge": dict(sorted(judge.data.metrics.items())) if judge else {},
        },
        "artifacts": {"model_uri": f"models:/{name}/{version}", "source": f"runs:/{train.info.run_id}/model"},
        "training_metadata": {
            "hardware": params.get("hardware") or train.data.tags.get("folksy.hardware") or f"{platform.machine()} ({platform.processor() or 'cpu'})",
            "durations_seconds": {
                "prepare": run_seconds(prepare),
                "train": run_seconds(train),
                "evaluate": run_seconds(evaluate),
                "judge": run_seconds(judge),
            },
            "framework_versions": framework_versions(),
        },
        "run_ids": {
            "prepare": prepare.info.run_id if prepare else None,
            "train": train.info.run_id,
            "evaluate": evaluate.info.run_id if evaluate else None,
            "judge": judge.info.run_id if judge else None,
        },
        "gate": {"passed": decision.passed, "forced": decision.forced, "reason": decision.reason, "thresholds": vars(thresholds),
                 "targets_met": targets(judge.data.metrics if judge else {})},
        "status": PRODUCTION_ALIAS if decision.promote else STAGING_ALIAS,
        "registered_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_entry(entry: dict, directory):
    """Write the entry atomically: a reader never sees half a JSON file."""
    import json
    import os
    import tempfile
    from pathlib import Path

    name, version = entry["model_id"].rsplit("/", 1)
    target = Path(directory) / name / f"v{version}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(entry, out, indent=2, default=str)
        out.write("\n")
    os.replace(staging, target)
    return target
