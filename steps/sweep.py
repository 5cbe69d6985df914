"""sweep: one recipe trained at every point of a grid (learning rate, schedule, any recipe key), each point a
train run nested under this one, compared on validation loss.

\b
Reads:  --config, --overrides  the recipe every point shares, as train takes them
        --grid                 key=value|value|...,key=...; the points are the product, e.g.
                               learning_rate=5e-5|1e-4|2e-4,lr_scheduler_type=cosine|linear (6 points)
        --prepare-run-id       the splits every point trains on [default: prepare runs now, or is reused]
\b
Writes: one `train` run per point, nested, through `mlflow run . -e train` (a point that already FINISHED with the
        same parameters and code is reused, so a sweep stopped half way picks up where it stopped);
        params grid, points, config, overrides, prepare_run_id; metric best_eval_loss (the best point's);
        tag folksy.sweep_best_run_id; artifacts sweep.json (point, run id, best_eval_loss, trained_steps, minutes)
        and sweep_eval_loss.png (every point's val loss against the step).
The best point's model is runs:/<folksy.sweep_best_run_id>/model: evaluate, judge and register take it like any other.
Every point's val loss is on the same validation rows (same prepare run, same val_subsample and seed), so they compare.
"""

import click

from folksy.defaults import CORPUS, RECIPE


@click.command(help=__doc__)
@click.option("--config", default=RECIPE, show_default=True, help="Training recipe every point starts from.")
@click.option("--grid", default="learning_rate=1e-4|2e-4|4e-4|8e-4", show_default=True, help="key=v1|v2|...,key2=... : the recipe values to sweep.")
@click.option("--overrides", default="", help="key=value,... over the recipe, shared by every point.")
@click.option("--prepare-run-id", default="", help="prepare run whose splits every point trains on [default: prepare on the default corpus, reused if done].")
def sweep(config, grid, overrides, prepare_run_id):
    import json
    import os
    import tempfile
    import time
    from pathlib import Path

    import mlflow
    from mlflow import MlflowClient

    from folksy.defaults import PROJECT_ROOT, project_path
    from folksy.lineage import finished_step_run
    from folksy.pipeline import code_version, get_or_run
    from folksy.plots import plot_sweep
    from folksy.tracking import PARENT_RUN_ENV, log_params_once, metric_history, step_run
    from folksy.training.recipe import grid_points

    points = grid_points(project_path(config), grid, overrides)  # every point checked before anything runs
    os.chdir(PROJECT_ROOT)  # mlflow.projects.run(".") resolves from here
    with step_run("sweep") as parent:
        client = MlflowClient()
        version = code_version(PROJECT_ROOT)
        experiment_id = parent.info.experiment_id
        os.environ[PARENT_RUN_ENV] = parent.info.run_id
        os.environ.pop("MLFLOW_RUN_ID", None)  # each point gets its own run, not ours
        os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)  # `mlflow run` refuses an experiment name and id at once
        if prepare_run_id.strip():
            prepare_run_id = finished_step_run(client, prepare_run_id.strip(), "prepare", needed_by="sweep").info.run_id
        else:
            prepare_run_id = get_or_run("prepare", {"corpus": CORPUS}, version, "[prepare]", experiment_id)
        log_params_once({"config": config, "grid": grid, "overrides": overrides, "points": len(points),
                         "prepare_run_id": prepare_run_id, "code_version": version[:16]})

        rows = []
        for number, point in enumerate(points, 1):
            started = time.time()
            parameters = {"config": config, "prepare_run_id": prepare_run_id, "overrides": ",".join(filter(None, (overrides, point)))}
            run_id = get_or_run("train", parameters, version, f"[{number}/{len(points)}] train {point}", experiment_id)
            metrics = client.get_run(run_id).data.metrics
            rows.append({"point": point, "run_id": run_id, "best_eval_loss": metrics.get("best_eval_loss"),
                         "trained_steps": metrics.get("trained_steps"), "minutes": round((time.time() - started) / 60, 2)})
            mlflow.set_tag(f"folksy.sweep_point_{number}", f"{point} -> {run_id}")

        scored = [row for row in rows if row["best_eval_loss"] is not None]
        best = min(scored, key=lambda row: row["best_eval_loss"]) if scored else None
        with tempfile.TemporaryDirectory(prefix="folksy-sweep-") as scratch:
            plot = Path(scratch) / "sweep_eval_loss.png"
            plot_sweep({row["point"]: metric_history(row["run_id"], "eval_loss") for row in rows}, best["point"] if best else "", plot)
            mlflow.log_artifact(str(plot))
        mlflow.log_table({key: [row[key] for row in rows] for key in rows[0]}, artifact_file="sweep.json")
        click.echo(json.dumps(rows, indent=1))
        if best is None:
            raise click.ClickException("sweep: no point logged best_eval_loss; see the train runs in `mlflow ui`")
        mlflow.log_metric("best_eval_loss", best["best_eval_loss"])
        mlflow.set_tag("folksy.sweep_best_run_id", best["run_id"])
        click.secho(f"sweep: best {best['point']} (val loss {best['best_eval_loss']:.4f}); model at runs:/{best['run_id']}/model", fg="green", bold=True)


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(sweep)
