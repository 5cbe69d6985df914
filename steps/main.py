"""main: the whole pipeline on one command, prepare -> train -> evaluate -> judge -> register.

Each step runs as its own MLflow run (through `mlflow run`'s machinery), nested under this one,
and receives the run ids of the steps before it. A step that already FINISHED with the same
parameters and the same code (a digest of steps/, corpus/, configs/ and MLproject) is reused
instead of re-run, as in MLflow's multistep workflow example.
Writes: the five step runs; tags on this run naming them; the registered version (see register).
"""

import click

STEPS = ("prepare", "train", "evaluate", "judge", "register")
CODE_ROOTS = ("steps", "corpus", "configs")


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


def get_or_run(step: str, parameters: dict, version: str, position: int, experiment_id: str) -> str:
    """Reuse a finished run of `step` with the same cache key, or run the step now. Returns its run id."""
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
    label = f"[{position}/{len(STEPS)}] {step}"
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


@click.command(help=__doc__)
@click.option("--config", default="configs/smollm2-135m-cpu.yaml", show_default=True, help="Training recipe.")
@click.option("--corpus", default="corpus/training_pairs.jsonl", show_default=True, help="Corpus JSONL for prepare.")
@click.option("--model-name", default="folksy-proverbs", show_default=True, help="Registered model name.")
@click.option("--judge-backend", default="critic", show_default=True, help="critic | endpoint | local (see steps/judge.py).")
@click.option("--train-overrides", default="", help="key=value,... passed to train over the recipe.")
@click.option("--quick", type=bool, default=False, show_default=True, help="Short evaluate/judge (for smoke tests).")
def main(config, corpus, model_name, judge_backend, train_overrides, quick):
    import os

    from steps.tracking import PARENT_RUN_ENV, PROJECT_ROOT, log_params_once, step_run

    os.chdir(PROJECT_ROOT)  # mlflow.projects.run(".") and the relative defaults resolve from here
    with step_run("main") as parent:
        import mlflow

        version = code_version(PROJECT_ROOT)
        params = {"config": config, "corpus": corpus, "model_name": model_name, "judge_backend": judge_backend,
                  "train_overrides": train_overrides, "quick": str(quick).lower(), "code_version": version[:16]}
        log_params_once(params)
        os.environ[PARENT_RUN_ENV] = parent.info.run_id
        os.environ.pop("MLFLOW_RUN_ID", None)  # each step gets its own run, not ours
        os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)  # steps get experiment_id; `mlflow run` refuses both at once
        experiment_id = parent.info.experiment_id
        quick_flag = str(quick).lower()

        def step(name, parameters):
            run_id = get_or_run(name, parameters, version, STEPS.index(name) + 1, experiment_id)
            mlflow.set_tag(f"folksy.{name}_run_id", run_id)
            return run_id

        prepare = step("prepare", {"corpus": corpus})
        train = step("train", {"config": config, "prepare_run_id": prepare, "overrides": train_overrides})
        model_uri = f"runs:/{train}/model"
        evaluate = step("evaluate", {"model_uri": model_uri, "prepare_run_id": prepare, "quick": quick_flag})
        judge = step("judge", {"model_uri": model_uri, "prepare_run_id": prepare, "backend": judge_backend, "quick": quick_flag})
        step("register", {"train_run_id": train, "evaluate_run_id": evaluate, "judge_run_id": judge, "model_name": model_name})
        click.secho(f"main: pipeline finished; open `mlflow ui` and look for run {parent.info.run_id}", fg="green", bold=True)


if __name__ == "__main__":
    from steps.errors import run_command

    run_command(main)
