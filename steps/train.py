"""train: fine-tune the base model on the prepared splits with TRL's SFTTrainer and log a pyfunc model.

\b
Reads:  --config          a recipe in configs/ (every hyperparameter), --overrides key=value,... on top
        --prepare-run-id  the prepare run whose artifacts splits/train.jsonl and splits/val.jsonl
                          are used (default: the newest finished prepare run)
\b
Writes: params            the resolved recipe, base_model_revision, prepare_run_id, corpus_sha256,
                          git_commit, precision, train/val example counts
        metrics           per step: loss, learning_rate, grad_norm, tokens_per_second (real, non-pad);
                          per eval (and at step 0): eval_loss, eval_perplexity on the val split;
                          best_eval_loss, trained_steps; MLflow system metrics
        artifacts         loss_curve.png; samples.json, a table of fixed prompts before/after training
        model             runs:/<run id>/model, an MLflow pyfunc model (safetensors, LoRA merged),
                          which evaluate, judge and register read

Checkpoints go to --output-dir. If a run dies (even by SIGKILL), the same command with the same
--output-dir resumes from its latest checkpoint and continues the same MLflow run.
"""

import click

STATE_FILE = "folksy_train.json"  # in --output-dir: which MLflow run the checkpoints belong to


def output_dir_for(config: str, output_dir: str, digest: str):
    """--output-dir, or by default one folder per recipe *and* inputs: the same command finds its own
    checkpoints to resume, while a different recipe or prepare run never trips over a killed one."""
    from pathlib import Path

    from steps.tracking import PROJECT_ROOT

    return Path(output_dir) if output_dir else PROJECT_ROOT / "outputs" / "train" / f"{Path(config).stem}-{digest[:12]}"


def read_state(output_dir, digest: str) -> dict | None:
    """The unfinished run to resume in `output_dir`, or None to start afresh (clearing a finished one)."""
    import json
    import shutil

    from steps.errors import FolksyError

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

    from steps.tracking import current_experiment

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


def read_split(path, subsample: int, seed: int) -> list[dict]:
    """The prompt/completion rows of a prepare split, a seeded subsample of them if `subsample` is set."""
    import json
    import random

    from steps.errors import FolksyError

    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append({"prompt": row["prompt"], "completion": row["completion"]})
            except (json.JSONDecodeError, KeyError, TypeError):
                raise FolksyError(f"splits/{path.name}:{number}: not a prompt/completion row from prepare") from None
    if subsample and subsample < len(rows):
        rows = random.Random(seed).sample(rows, subsample)
    return rows


def load_base(recipe: dict, path: str, bf16: bool):
    """The model to train and its tokenizer; 4-bit NF4 with double quantisation for qlora."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    options = {"attn_implementation": recipe["attn_implementation"], "dtype": torch.float32}
    if recipe["method"] == "qlora":
        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float16,
        )
        options["dtype"] = torch.bfloat16 if bf16 else torch.float16
    return AutoModelForCausalLM.from_pretrained(path, **options), tokenizer


def sft_config(recipe: dict, output_dir, bf16: bool):
    import torch
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_length=recipe["max_length"],
        completion_only_loss=True,  # loss on the saying and its end-of-turn token, never on the prompt
        learning_rate=recipe["learning_rate"],
        lr_scheduler_type=recipe["lr_scheduler_type"],
        warmup_steps=recipe["warmup_ratio"],  # transformers 5: a float below 1 is a ratio of the total steps
        weight_decay=recipe["weight_decay"],
        num_train_epochs=recipe["num_train_epochs"],
        max_steps=recipe["max_steps"],
        per_device_train_batch_size=recipe["per_device_train_batch_size"],
        per_device_eval_batch_size=recipe["per_device_eval_batch_size"],
        gradient_accumulation_steps=recipe["gradient_accumulation_steps"],
        max_grad_norm=recipe["max_grad_norm"],
        optim=recipe["optim"],
        seed=recipe["seed"],
        data_seed=recipe["seed"],
        bf16=bf16,
        activation_checkpointing=recipe["gradient_checkpointing"],  # transformers 5's name; TRL defaults it on
        train_sampling_strategy="group_by_length" if recipe["group_by_length"] else "random",
        logging_steps=recipe["logging_steps"],
        eval_strategy="steps",
        eval_steps=recipe["eval_steps"],
        save_strategy="steps",
        save_steps=recipe["save_steps"],
        save_total_limit=recipe["save_total_limit"],
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        use_cpu=not torch.cuda.is_available(),
        report_to="none",  # metrics go to MLflow through MetricsCallback, into this step's run
        dataloader_num_workers=0,  # collation is cheap; worker processes would fight the trainer for 2 cores
        disable_tqdm=False,
    )


def export_model(trainer, recipe: dict, base_path: str, target) -> None:
    """Save the trained model as a plain HF directory (safetensors + tokenizer); LoRA merged into the base."""
    import tempfile

    model = trainer.model
    if recipe["method"] == "full":
        model.save_pretrained(target)
    elif recipe["method"] == "lora":
        model.merge_and_unload().save_pretrained(target)
    else:  # qlora: merge into an unquantized copy of the base, not into 4-bit weights
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        with tempfile.TemporaryDirectory() as adapter_dir:
            model.save_pretrained(adapter_dir)
            base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.bfloat16)
            PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().save_pretrained(target)
    trainer.processing_class.save_pretrained(target)


def log_loss_curve(mlflow, run_id: str, path) -> None:
    """Plot train and eval loss from the run's metric history (complete across resumes) and log it."""
    from mlflow import MlflowClient

    from steps.training import plot_loss_curve

    client = MlflowClient()
    history = {key: [(m.step, m.value) for m in client.get_metric_history(run_id, key)] for key in ("loss", "eval_loss")}
    plot_loss_curve(history["loss"], history["eval_loss"], path)
    mlflow.log_artifact(str(path))


def sample_sayings(generator, max_new_tokens: int) -> list[str]:
    from steps.training import SAMPLE_PROMPTS

    sayings = generator.generate(list(SAMPLE_PROMPTS), temperature=0.0, max_new_tokens=max_new_tokens)
    return [options[0] for options in sayings]


@click.command(help=__doc__)
@click.option("--config", default="configs/smollm2-135m-cpu.yaml", show_default=True, help="Training recipe (YAML in configs/).")
@click.option("--prepare-run-id", default="", help="prepare run whose splits to train on [default: newest finished prepare run].")
@click.option("--overrides", default="", help="Comma-separated key=value pairs over the recipe, e.g. max_steps=20,method=lora.")
@click.option("--output-dir", default="", help="Checkpoint directory [default: outputs/train/<recipe name>-<digest of recipe and prepare run>]; the same one resumes.")
def train(config, prepare_run_id, overrides, output_dir):
    import hashlib
    import json
    import os
    import socket
    from contextlib import nullcontext
    from pathlib import Path

    from steps.errors import FolksyError
    from steps.recipe import load_recipe
    from steps.tracking import PROJECT_ROOT, configure, current_experiment, experiment_name, git_commit, latest_run_id, step_run

    config_path = Path(config)
    if not config_path.is_absolute() and not config_path.exists():
        config_path = PROJECT_ROOT / config_path  # `mlflow run` from elsewhere still finds the shipped recipes
    recipe = load_recipe(config_path, overrides)  # every input check happens here, before anything heavy

    mlflow = configure()
    prepare_run_id = prepare_run_id.strip() or latest_run_id("prepare")
    if not prepare_run_id:
        experiment = current_experiment()
        where = experiment.name if experiment else experiment_name()
        raise FolksyError(f"--prepare-run-id: experiment '{where}' has no finished prepare run; run `mlflow run . -e prepare` first")
    try:
        prepare_run = mlflow.get_run(prepare_run_id)
    except Exception:
        raise FolksyError(f"--prepare-run-id '{prepare_run_id}': no such run") from None
    if prepare_run.info.status != "FINISHED":
        raise FolksyError(f"--prepare-run-id '{prepare_run_id}': that run is {prepare_run.info.status}, not FINISHED")

    is_main = int(os.environ.get("RANK", "0")) == 0  # under `accelerate launch`, only rank 0 talks to MLflow
    digest = hashlib.sha256(json.dumps([recipe, prepare_run_id], sort_keys=True).encode()).hexdigest()
    out = output_dir_for(config, output_dir, digest)
    state = read_state(out, digest) if is_main else None
    resume_from = latest_checkpoint(out) if (state or not is_main) and out.is_dir() else None

    os.environ.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")  # CPU, memory, disk next to the loss
    if is_main:
        fail_orphaned_runs(mlflow)
        launched_as = os.environ.get("MLFLOW_RUN_ID")  # `mlflow run` made a fresh run; a resume continues the old one
        if state and launched_as and launched_as != state["run_id"]:
            mlflow.MlflowClient().set_tag(launched_as, "folksy.resumed_run_id", state["run_id"])
    with step_run("train", run_id=state["run_id"] if state else None) if is_main else nullcontext() as run:
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

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import EarlyStoppingCallback

    from steps.base_models import resolve_base_model
    from steps.errors import FolksyError
    from steps.generation import SayingGenerator
    from steps.pyfunc_model import model_kwargs
    from steps.recipe import lora_target_modules
    from steps.tracking import log_params_once
    from steps.training import SAMPLE_PROMPTS, FolksySFTTrainer, MetricsCallback, bf16_supported, keep_freed_memory

    bf16 = recipe["bf16"] and bf16_supported()
    keep_freed_memory()  # recycle the per-step buffers instead of page-faulting them in again each step
    with tempfile.TemporaryDirectory(prefix="folksy-train-") as scratch:
        try:
            splits = Path(mlflow.artifacts.download_artifacts(run_id=prepare_run.info.run_id, artifact_path="splits", dst_path=scratch))
        except Exception:
            raise FolksyError(f"--prepare-run-id '{prepare_run.info.run_id}': the run has no splits/ artifacts") from None
        for name in ("train", "val"):
            if not (splits / f"{name}.jsonl").is_file():
                raise FolksyError(f"--prepare-run-id '{prepare_run.info.run_id}': splits/{name}.jsonl is missing")
        train_rows = read_split(splits / "train.jsonl", recipe["train_subsample"], recipe["seed"])
        val_rows = read_split(splits / "val.jsonl", recipe["val_subsample"], recipe["seed"])
        if not train_rows or not val_rows:
            raise FolksyError(f"--prepare-run-id '{prepare_run.info.run_id}': the train or val split is empty")

        base = resolve_base_model(recipe["base_model"])
        if is_main:
            params = {
                **recipe,
                "base_model_path": base.path,
                "base_model_source": base.source,
                "base_model_revision": base.revision,
                "prepare_run_id": prepare_run.info.run_id,
                "corpus_sha256": prepare_run.data.params.get("corpus_sha256"),
                "git_commit": commit,
                "precision": "bf16-autocast" if bf16 else "fp32",
                "train_examples": len(train_rows),
                "val_examples": len(val_rows),
                "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                "sample_prompts": " | ".join(SAMPLE_PROMPTS),
            }
            if resume_from:  # the code may have moved on since the run started; the param keeps the first commit
                mlflow.set_tag("folksy.resumed_at_commit", params.pop("git_commit"))
            log_params_once(params)  # a resumed run logged them already; `mlflow run` logged its own three

        model, tokenizer = load_base(recipe, base.path, bf16)
        if recipe["method"] == "qlora":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe["gradient_checkpointing"])
        peft_config = None
        if recipe["method"] != "full":
            peft_config = LoraConfig(
                r=recipe["lora_r"], lora_alpha=recipe["lora_alpha"], lora_dropout=recipe["lora_dropout"],
                target_modules=lora_target_modules(recipe), task_type="CAUSAL_LM",
            )

        before_path = out / "samples_before.json"  # kept beside the checkpoints, for a resumed run's table
        before = None
        if is_main and before_path.is_file():
            before = json.loads(before_path.read_text())
        elif is_main:
            before = sample_sayings(SayingGenerator(model, tokenizer), recipe["sample_max_new_tokens"])
            before_path.write_text(json.dumps(before))
        metrics = MetricsCallback(lambda values, step: mlflow.log_metrics(values, step=step) if is_main else None)
        callbacks = [metrics]
        if recipe["early_stopping_patience"]:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe["early_stopping_patience"]))
        trainer = FolksySFTTrainer(
            model=model,
            args=sft_config(recipe, out, bf16),
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(val_rows),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=callbacks,
        )
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
        mlflow.log_table({"prompt": list(SAMPLE_PROMPTS), "before": before, "after": after}, artifact_file="samples.json")
        log_loss_curve(mlflow, run.info.run_id, Path(scratch) / "loss_curve.png")
        mlflow.pyfunc.log_model(name="model", **model_kwargs(hf_dir, scratch))
        write_state(out, run.info.run_id, "", finished=True)
        for checkpoint in out.glob("checkpoint-*"):  # the model is logged; checkpoints only served a resume
            shutil.rmtree(checkpoint, ignore_errors=True)
        click.echo(f"train: best eval_loss {state.best_metric:.4f} after {state.global_step} steps; model at runs:/{run.info.run_id}/model")


if __name__ == "__main__":
    from steps.errors import run_command

    run_command(train)
