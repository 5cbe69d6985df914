"""main: the whole pipeline on one command, prepare -> train -> evaluate -> judge -> register.

Each step runs as its own MLflow run (through `mlflow run`'s machinery), nested under this one,
and receives the run ids of the steps before it. A step that already FINISHED with the same
parameters and the same code (a digest of folksy/, steps/, corpus/, configs/ and MLproject) is reused
instead of re-run, as in MLflow's multistep workflow example.
Writes: the five step runs; tags on this run naming them; the registered version (see register).
"""

import click

from folksy.defaults import CORPUS, MODEL_NAME, RECIPE


@click.command(help=__doc__)
@click.option("--config", default=RECIPE, show_default=True, help="Training recipe.")
@click.option("--corpus", default=CORPUS, show_default=True, help="Corpus JSONL for prepare.")
@click.option("--model-name", default=MODEL_NAME, show_default=True, help="Registered model name.")
@click.option("--judge-backend", default="critic", show_default=True, help="critic | endpoint | local (see steps/judge.py).")
@click.option("--train-overrides", default="", help="key=value,... passed to train over the recipe.")
@click.option("--quick", type=bool, default=False, show_default=True, help="Short evaluate/judge (for smoke tests).")
def main(config, corpus, model_name, judge_backend, train_overrides, quick):
    import os

    import mlflow

    from folksy.defaults import PROJECT_ROOT
    from folksy.pipeline import STEPS, code_version, get_or_run
    from folksy.tracking import PARENT_RUN_ENV, log_params_once, step_run

    os.chdir(PROJECT_ROOT)  # mlflow.projects.run(".") and the relative defaults resolve from here
    with step_run("main") as parent:
        version = code_version(PROJECT_ROOT)
        quick_flag = str(quick).lower()
        log_params_once({"config": config, "corpus": corpus, "model_name": model_name, "judge_backend": judge_backend,
                         "train_overrides": train_overrides, "quick": quick_flag, "code_version": version[:16]})
        os.environ[PARENT_RUN_ENV] = parent.info.run_id
        os.environ.pop("MLFLOW_RUN_ID", None)  # each step gets its own run, not ours
        os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)  # steps get experiment_id; `mlflow run` refuses both at once

        def step(name, parameters):
            run_id = get_or_run(name, parameters, version, f"[{STEPS.index(name) + 1}/{len(STEPS)}] {name}", parent.info.experiment_id)
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
    from folksy.errors import run_command

    run_command(main)
