"""What `main` chains: the step order, and the reuse cache that skips a step that already finished with
the same parameters and the same code (as in MLflow's multistep workflow example)."""

import click

STEPS = ("prepare", "train", "evaluate", "judge", "register")
CODE_ROOTS = ("folksy", "steps", "corpus", "configs")  # everything that decides what a step computes


def code_version(root) -> str:
    """A digest of everything that decides what a step computes; edits invalidate the reuse cache."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    files = [Path(root) / "MLproject"]
    for folder in CODE_ROOTS:
        files += [p for p in sorted((Path(root) / folder).rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_key(step: str, parameters: dict, version: str) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps([step, sorted(parameters.items()), version]).encode()).hexdigest()


def get_or_run(step: str, parameters: dict, version: str, label: str, experiment_id: str) -> str:
    """Reuse a finished run of `step` with the same cache key, or run the step now. Returns its run id.
    `label` prefixes what it prints ("[2/5] train" under main, "[1/4] train learning_rate=1e-4" under sweep)."""
    import time

    import mlflow
    from mlflow import MlflowClient

    key = cache_key(step, parameters, version)
    found = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`folksy.step` = '{step}' and tags.`folksy.cache_key` = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        click.secho(f"{label}: reusing finished run {found[0].info.run_id} (same parameters and code)", fg="cyan")
        return found[0].info.run_id
    click.secho(f"{label}: running with {parameters}", fg="cyan", bold=True)
    started = time.time()
    submitted = mlflow.projects.run(
        ".", entry_point=step, parameters=parameters, env_manager="local", experiment_id=experiment_id, synchronous=False
    )
    if not submitted.wait():
        if MlflowClient().get_run(submitted.run_id).info.status == "RUNNING":  # the step died before it could say so
            MlflowClient().set_terminated(submitted.run_id, status="FAILED")
        raise click.ClickException(f"step '{step}' failed (run {submitted.run_id}); see its output above and the run in `mlflow ui`")
    MlflowClient().set_tag(submitted.run_id, "folksy.cache_key", key)  # only finished runs become reusable
    click.secho(f"{label}: done in {time.time() - started:.0f}s, run {submitted.run_id}", fg="green")
    return submitted.run_id
