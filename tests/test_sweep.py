"""The sweep entry point: a grid of recipe values, one nested train run per point, the best one named.

The grid parser is checked alone; the sweep itself runs for real (a real MLflow store, `mlflow run`'s own
machinery starting each point) on the tiny local Qwen2, two learning rates far apart, two steps each.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, run_step
from tests.servers import mlflow_cli
from tests.test_train import TINY

RECIPE = PROJECT_ROOT / "configs" / "smollm2-135m-cpu.yaml"


def test_grid_points_are_the_product_in_order():
    from folksy.training.recipe import grid_points

    points = grid_points(RECIPE, "learning_rate=5e-5|1e-4,lr_scheduler_type=cosine|linear", "max_steps=8")
    assert points == [
        "learning_rate=5e-5,lr_scheduler_type=cosine",
        "learning_rate=5e-5,lr_scheduler_type=linear",
        "learning_rate=1e-4,lr_scheduler_type=cosine",
        "learning_rate=1e-4,lr_scheduler_type=linear",
    ]
    assert grid_points(RECIPE, "lora_target_modules=q_proj,v_proj|all-linear") == ["lora_target_modules=q_proj,v_proj", "lora_target_modules=all-linear"]
    # a value that is itself a list keeps its commas: the data filter is swept against no filter
    assert grid_points(RECIPE, "skip_relations=none|related,same_category,any") == ["skip_relations=none", "skip_relations=related,same_category,any"]


@pytest.mark.parametrize(
    "grid, overrides, message",
    [
        ("", "", "--grid: give at least one key=value|value"),
        ("learnin_rate=1e-4|2e-4", "", "--grid: unknown key 'learnin_rate'"),
        ("learning_rate=1e-4|2e-4", "learning_rate=3e-4", "--grid: learning_rate is also set in --overrides"),
        ("learning_rate=1e-4||2e-4", "", "--grid: learning_rate=1e-4||2e-4 needs distinct, non-empty values"),
        ("learning_rate=1e-4|1e-4", "", "--grid: learning_rate=1e-4|1e-4 needs distinct, non-empty values"),
        ("learning_rate=1e-4|fast", "", "--grid point learning_rate=fast: --overrides learning_rate: learning_rate must be float, got 'fast'"),
        ("lr_scheduler_type=cosine|wobbly", "", "--grid point lr_scheduler_type=wobbly: lr_scheduler_type: 'wobbly' is not one of"),
    ],
)
def test_a_bad_grid_is_refused_in_one_line(grid, overrides, message):
    from folksy.errors import FolksyError
    from folksy.training.recipe import grid_points

    with pytest.raises(FolksyError) as caught:
        grid_points(RECIPE, grid, overrides)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_step_refuses_a_bad_grid_before_opening_a_run(tracking_uri):
    import mlflow

    result = run_step("steps.sweep", "--grid", "learning_rate=1e-4|fast")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "Error: --grid point learning_rate=fast: --overrides learning_rate: learning_rate must be float, got 'fast'"
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


@pytest.mark.slow
def test_each_point_is_a_nested_train_run_and_the_lowest_val_loss_is_named_best(tmp_path, tiny_qwen2_dir):
    import mlflow
    from mlflow import MlflowClient

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join((PROJECT_ROOT / "corpus" / "training_pairs.jsonl").open().readlines()[:300]))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `mlflow run` starts each point with `mlflow`
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "sweep"}
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "FOLKSY_PARENT_RUN_ID"):
        env.pop(name, None)
    prepared = run_step("steps.prepare", "--corpus", str(corpus), env=env)
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    client = MlflowClient(uri)
    [prepare] = client.search_runs([client.get_experiment_by_name("sweep").experiment_id])

    # 1e-5 barely moves a random model in two steps; 1e-2 moves it a long way: the two val losses differ.
    # Launched as the README does, so the '|' in the grid goes through mlflow run's own shell quoting.
    args = ["run", ".", "-e", "sweep", "--env-manager", "local", "--experiment-name", "sweep", "-P", "grid=learning_rate=1e-5|1e-2",
            "-P", f"overrides=base_model={tiny_qwen2_dir},{TINY},max_steps=2", "-P", f"prepare_run_id={prepare.info.run_id}"]  # fmt: skip
    done = mlflow_cli(*args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    experiment = client.get_experiment_by_name("sweep").experiment_id
    [parent] = client.search_runs([experiment], "tags.`folksy.step` = 'sweep'")
    points = client.search_runs([experiment], "tags.`folksy.step` = 'train'")
    assert parent.info.status == "FINISHED" and len(points) == 2
    assert {run.data.tags["mlflow.parentRunId"] for run in points} == {parent.info.run_id}
    assert sorted(float(run.data.params["learning_rate"]) for run in points) == [1e-5, 1e-2]
    losses = {run.info.run_id: run.data.metrics["best_eval_loss"] for run in points}
    assert len(set(losses.values())) == 2
    best = min(losses, key=losses.get)
    assert parent.data.tags["folksy.sweep_best_run_id"] == best
    assert parent.data.metrics["best_eval_loss"] == pytest.approx(losses[best])
    assert parent.data.params["prepare_run_id"] == prepare.info.run_id
    assert {run.data.params["prepare_run_id"] for run in points} == {prepare.info.run_id}

    artifacts = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, dst_path=str(tmp_path / "artifacts"), tracking_uri=uri))
    assert (artifacts / "sweep_eval_loss.png").stat().st_size > 1000
    table = json.loads((artifacts / "sweep.json").read_text())
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert [row["point"] for row in rows] == ["learning_rate=1e-5", "learning_rate=1e-2"]
    assert {row["run_id"]: row["best_eval_loss"] for row in rows} == pytest.approx(losses)
    assert f"model at runs:/{best}/model" in done.stdout

    again = mlflow_cli(*args, env=env)  # every point finished: both reused, nothing trains
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing finished run") == 2
    assert len(client.search_runs([experiment], "tags.`folksy.step` = 'train'")) == 2
