"""train: fine-tune the base model on the prepared splits with TRL's SFTTrainer and log a pyfunc model.

\b
Reads:  --config          a recipe in configs/ (every hyperparameter), --overrides key=value,... on top
        --prepare-run-id  the prepare run whose splits/train.jsonl and splits/val.jsonl are used (default: newest)
\b
Writes: params            the resolved recipe, base_model_revision, prepare_run_id, corpus_sha256, precision, ...
        metrics           per step: loss, learning_rate, grad_norm, tokens_per_second (real, non-pad); per eval
                          (and step 0): eval_loss, eval_perplexity; best_eval_loss, trained_steps; system metrics
        artifacts         loss_curve.png; samples.json, a table of fixed prompts before/after training
        datasets          the train and val rows trained on (a subsample is named for itself: folksy-train-N-of-M)
        model             runs:/<run id>/model, a pyfunc model (safetensors, LoRA merged) for evaluate, judge, register,
                          with the picker critic (judge's data plus the blind readings; cached) for the recipe's best_of
Checkpoints go to --output-dir. If a run dies (even by SIGKILL), the same command with the same --output-dir
resumes from its latest checkpoint: in the same run, or, under `mlflow run`, in the run it reports.
"""

import click

from folksy.defaults import CORPUS, PROJECT_ROOT, RECIPE


@click.command(help=__doc__)
@click.option("--config", default=RECIPE, show_default=True, help="Training recipe (YAML in configs/).")
@click.option("--prepare-run-id", default="", help="prepare run whose splits to train on [default: newest finished prepare run].")
@click.option("--overrides", default="", help="Comma-separated key=value pairs over the recipe, e.g. max_steps=20,method=lora.")
@click.option("--output-dir", default="", help="Checkpoint directory [default: outputs/train/<recipe name>-<digest of recipe and prepare run>]; the same one resumes.")
def train(config, prepare_run_id, overrides, output_dir):
    import os
    import socket
    from contextlib import nullcontext
    from pathlib import Path

    from folksy.defaults import project_path
    from folksy.errors import FolksyError
    from folksy.lineage import finished_step_run
    from folksy.training.checkpoints import STATE_FILE, adopt_run, fail_orphaned_runs, latest_checkpoint, output_dir_for, read_state, recipe_digest, write_state
    from folksy.training.recipe import load_recipe
    from folksy.training.sft import effective_recipe
    from folksy.tracking import configure, current_experiment, experiment_name, git_commit, latest_run_id, step_run

    recipe = load_recipe(project_path(config), overrides)  # every input check happens here, before anything heavy
    mlflow = configure()
    prepare_run_id = prepare_run_id.strip() or latest_run_id("prepare")
    if not prepare_run_id:
        experiment = current_experiment()
        where = experiment.name if experiment else experiment_name()
        raise FolksyError(f"--prepare-run-id: experiment '{where}' has no finished prepare run; run `mlflow run . -e prepare` first")
    prepare_run = finished_step_run(mlflow.MlflowClient(), prepare_run_id, "prepare", needed_by="train")
    recipe = effective_recipe(recipe, prepare_run.data.params.get("corpus_sha256"), log=click.echo)  # labels fit one corpus

    is_main = int(os.environ.get("RANK", "0")) == 0  # under `accelerate launch`, only rank 0 talks to MLflow
    digest = recipe_digest(recipe, prepare_run_id)
    out = output_dir_for(config, output_dir, digest)
    state = read_state(out, digest) if is_main else None
    resume_from = latest_checkpoint(out) if (state or not is_main) and out.is_dir() else None

    launched_as = os.environ.get("MLFLOW_RUN_ID")  # `mlflow run` (and `main`) made a run and will report it
    if is_main:
        fail_orphaned_runs(mlflow)
        if state and launched_as and launched_as != state["run_id"]:  # the killed run's work moves into it
            adopt_run(mlflow.MlflowClient(), state["run_id"], launched_as)
    with step_run("train", run_id=state["run_id"] if state and not launched_as else None) if is_main else nullcontext() as run:
        if is_main:
            write_state(out, run.info.run_id, digest, finished=False)
            mlflow.set_tags({"folksy.pid": str(os.getpid()), "folksy.host": socket.gethostname(), "folksy.output_dir": str(out)})
            if resume_from:
                mlflow.set_tag("folksy.resumed_from", Path(resume_from).name)
                click.echo(f"train: resuming run {run.info.run_id} from {resume_from}")
        try:
            _train(mlflow, recipe, prepare_run, out, resume_from, run, is_main, git_commit())
        except FolksyError:
            if is_main and latest_checkpoint(out) is None:  # bad input, nothing trained: nothing to resume, so
                (out / STATE_FILE).unlink(missing_ok=True)  # nothing may block the next run with fixed input
            raise


def _train(mlflow, recipe, prepare_run, out, resume_from, run, is_main, commit) -> None:
    """Everything after the run is open: data, model, trainer, samples, the loss curve and the model."""
    import json
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from folksy.base_models import resolve_base_model
    from folksy.generation import SayingGenerator, bf16_supported
    from folksy.judging.critic_registry import picker_critic_dir
    from folksy.lineage import download_splits, log_split_datasets
    from folksy.plots import plot_loss_curve
    from folksy.pyfunc_model import model_kwargs
    from folksy.tracking import log_params_once, metric_history
    from folksy.training.checkpoints import write_state
    from folksy.training.sft import SAMPLE_PROMPTS, build_trainer, export_model, load_base, reader_labels_digest, recipe_rows, sample_sayings, training_rows
    from folksy.training.trainer import keep_freed_memory

    bf16 = recipe["bf16"] and bf16_supported()
    keep_freed_memory()  # recycle the per-step buffers instead of page-faulting them in again each step
    with tempfile.TemporaryDirectory(prefix="folksy-train-") as scratch:
        splits = download_splits(prepare_run.info.run_id, ("train", "val"), scratch)
        chosen = {split: recipe_rows(splits[split], recipe, split) for split in ("train", "val")}
        train_rows, val_rows = training_rows(chosen["train"]), training_rows(chosen["val"])
        base = resolve_base_model(recipe["base_model"])
        if is_main:
            params = {
                **recipe, "base_model_path": base.path, "base_model_source": base.source, "base_model_revision": base.revision,
                "prepare_run_id": prepare_run.info.run_id, "corpus_sha256": prepare_run.data.params.get("corpus_sha256"),
                "git_commit": commit, "precision": "bf16-autocast" if bf16 else "fp32", "reader_labels_sha256": reader_labels_digest(recipe),
                "train_examples": len(train_rows), "val_examples": len(val_rows),
                "world_size": int(os.environ.get("WORLD_SIZE", "1")), "sample_prompts": " | ".join(SAMPLE_PROMPTS),
            }
            if resume_from:  # the code may have moved on since the run started; the param keeps the first commit
                mlflow.set_tag("folksy.resumed_at_commit", params.pop("git_commit"))
            log_params_once(params)  # a resumed run logged them already; `mlflow run` logged its own three
            log_split_datasets(prepare_run.info.run_id, chosen)

        model, tokenizer = load_base(recipe, base.path, bf16)
        before_path = out / "samples_before.json"  # kept beside the checkpoints, for a resumed run's table
        if is_main and not before_path.is_file():
            before_path.write_text(json.dumps(sample_sayings(SayingGenerator(model, tokenizer), recipe["sample_max_new_tokens"])))
        trainer = build_trainer(recipe, model, tokenizer, train_rows, val_rows, out, bf16, sink=lambda values, step: is_main and mlflow.log_metrics(values, step=step))
        if not resume_from:
            trainer.evaluate()  # step 0: the base model's val loss, where the eval curve starts
        trainer.train(resume_from_checkpoint=resume_from)  # ends on the best checkpoint (load_best_model_at_end)

        hf_dir = Path(scratch) / "hf_model"
        export_model(trainer, recipe, base.path, hf_dir)
        if not is_main:
            return
        state = trainer.state
        mlflow.log_metrics({"best_eval_loss": state.best_metric, "trained_steps": state.global_step}, step=state.global_step)
        if state.best_model_checkpoint:
            mlflow.set_tag("folksy.best_checkpoint", Path(state.best_model_checkpoint).name)
        after = sample_sayings(SayingGenerator.from_pretrained(str(hf_dir)), recipe["sample_max_new_tokens"])
        before = json.loads(before_path.read_text())
        mlflow.log_table({"prompt": list(SAMPLE_PROMPTS), "before": before, "after": after}, artifact_file="samples.json")
        plot_loss_curve(metric_history(run.info.run_id, "loss"), metric_history(run.info.run_id, "eval_loss"), Path(scratch) / "loss_curve.png")
        mlflow.log_artifact(str(Path(scratch) / "loss_curve.png"))  # from the run's history: complete across resumes
        critic_dir = picker_critic_dir(PROJECT_ROOT / CORPUS, log=click.echo)  # what the model's best_of picks with
        mlflow.pyfunc.log_model(name="model", **model_kwargs(hf_dir, scratch, critic_dir, recipe["best_of"]))
        write_state(out, run.info.run_id, "", finished=True)
        for checkpoint in out.glob("checkpoint-*"):  # the model is logged; checkpoints only served a resume
            shutil.rmtree(checkpoint, ignore_errors=True)
        click.echo(f"train: best eval_loss {state.best_metric:.4f} after {state.global_step} steps; model at runs:/{run.info.run_id}/model")


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(train)
