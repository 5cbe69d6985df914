"""The SFT recipe as plain functions: rows, base model, TRL config, trainer, export. No MLflow.

steps/train.py opens the run, calls these in order and logs what they return.
"""

# Prompts for the before/after sample table: one per kind of request the corpus holds, fixed forever
SAMPLE_PROMPTS = (
    "Tell me something about color.",
    "Write a folksy saying about chicken feed.",
    "Give me a proverb about patience.",
    "Imagine you're a grumpy farmer. What's your favorite saying?",
    "What would grandma say about money?",
    "Share some wisdom about the weather.",
)


def subsample_rows(rows: list[dict], subsample: int, seed: int) -> list[dict]:
    """A seeded subsample of split rows if `subsample` is set and smaller than the split, else all of them."""
    import random

    return random.Random(seed).sample(rows, subsample) if subsample and subsample < len(rows) else rows


def relation_of(saying: str) -> str | None:
    """How the second word of the engine pattern `saying` follows must relate to the first (one of
    folksy.corpus.templates.RELATIONS), or None when the pattern has no second word or nothing parses."""
    from folksy.corpus.templates import PATTERNS
    from folksy.judging.fit import parse

    found = parse(saying)
    if found is None:
        return None
    family, index = found["pattern"].rstrip("]").split("[")
    return PATTERNS[family][int(index)].y


def skipped_relations(value: str) -> frozenset[str]:
    """The recipe's skip_relations ("related,any", "" or "none") as a set of relations."""
    return frozenset(part.strip() for part in value.split(",") if part.strip() and part.strip() != "none")


def effective_recipe(recipe: dict, corpus_sha256: str | None, log=print) -> dict:
    """The recipe as it trains on a prepare run of the corpus with `corpus_sha256`: `min_reader_label` applies
    only to the corpus its labels were read from (the shipped one, by sha256); on any other corpus it becomes 0,
    said in one line, so `main -P corpus=<yours>` trains on every saying instead of failing."""
    from folksy.base_models import file_sha256
    from folksy.defaults import CORPUS, PROJECT_ROOT, READER_LABELS

    if not recipe.get("min_reader_label"):
        return recipe
    if corpus_sha256 == file_sha256(PROJECT_ROOT / CORPUS):  # as prepare logs corpus_sha256
        return recipe
    log(f"train: min_reader_label {recipe['min_reader_label']} -> 0: {READER_LABELS} labels the shipped {CORPUS}, "
        f"and this prepare run read another corpus (sha256 {str(corpus_sha256)[:12]}); training on every saying")
    return {**recipe, "min_reader_label": 0}


def reader_labels_digest(recipe: dict) -> str:
    """sha256 of the labels file when `min_reader_label` uses it, else "" (so the recipe's digest follows the file)."""
    from folksy.base_models import file_sha256
    from folksy.defaults import PROJECT_ROOT, READER_LABELS

    return file_sha256(PROJECT_ROOT / READER_LABELS) if recipe.get("min_reader_label") else ""


def recipe_rows(rows: list[dict], recipe: dict, split: str, labels: dict[str, int] | None = None) -> list[dict]:
    """The prepare split rows (folksy.data.read_split) that a recipe trains or validates on: those whose saying's
    pattern relation is not in `skip_relations` (read blind, sayings whose two words must be merely related
    or of one category read worst; docs/benchmarks.md); with `min_reader_label` set, only the sayings readers
    labelled that high (`labels`, default reader_labels()), in validation too: on the whole split, val loss
    rises as the model leaves the sayings it is kept from, and the best checkpoint would be an early one;
    then a seeded `<split>_subsample` of them."""
    skip = skipped_relations(recipe["skip_relations"])
    if skip:
        relations = {saying: relation_of(saying) for saying in {row["output"] for row in rows}}
        rows = [row for row in rows if relations[row["output"]] not in skip]
    if recipe.get("min_reader_label"):
        from folksy.data import reader_labels

        labels = reader_labels() if labels is None else labels
        rows = [row for row in rows if labels.get(row["output"], 0) >= recipe["min_reader_label"]]
        if not rows:
            from folksy.defaults import READER_LABELS
            from folksy.errors import FolksyError

            raise FolksyError(f"min_reader_label: no {split} saying is labelled {recipe['min_reader_label']} or more in {READER_LABELS} "
                              "(it labels the shipped corpus); train another corpus with --overrides min_reader_label=0")
    return subsample_rows(rows, recipe[f"{split}_subsample"], recipe["seed"])


def training_rows(rows: list[dict]) -> list[dict]:
    """The prompt/completion part of split rows: what TRL's SFTTrainer takes."""
    return [{"prompt": row["prompt"], "completion": row["completion"]} for row in rows]


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
    from trl import SFTConfig

    from folksy.training.trainer import shared_trainer_args

    return SFTConfig(
        **shared_trainer_args(recipe, output_dir, bf16),
        completion_only_loss=True,  # loss on the saying and its end-of-turn token, never on the prompt
        weight_decay=recipe["weight_decay"],
        per_device_eval_batch_size=recipe["per_device_eval_batch_size"],
        max_grad_norm=recipe["max_grad_norm"],
        optim=recipe["optim"],
        data_seed=recipe["seed"],
        activation_checkpointing=recipe["gradient_checkpointing"],  # transformers 5's name; TRL defaults it on
        train_sampling_strategy="group_by_length" if recipe["group_by_length"] else "random",
        eval_strategy="steps",
        eval_steps=recipe["eval_steps"],
        save_strategy="steps",
        save_steps=recipe["save_steps"],
        save_total_limit=recipe["save_total_limit"],
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
    )


def export_model(trainer, recipe: dict, base_path: str, target) -> None:
    """Save the trained model as a plain HF directory (safetensors + tokenizer); LoRA merged into the base.
    The directory describes itself (folksy.model_dir): chat template default, sampling, model card."""
    import tempfile
    from pathlib import Path

    from folksy.model_dir import describe_model_dir

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
    state = trainer.state
    describe_model_dir(target, {
        "base_model": recipe["base_model"], "method": recipe["method"], "learning_rate": recipe["learning_rate"],
        "training examples": len(trainer.train_dataset), "steps": state.global_step,
        "best validation loss (completion tokens)": f"{state.best_metric:.4f}" if state.best_metric is not None else None,
        "best checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
    })


def sample_sayings(generator, max_new_tokens: int) -> list[str]:
    """Greedy sayings for SAMPLE_PROMPTS: the before/after table of a train run."""
    sayings = generator.generate(list(SAMPLE_PROMPTS), temperature=0.0, max_new_tokens=max_new_tokens)
    return [options[0] for options in sayings]


def peft_config(recipe: dict):
    """peft's LoraConfig for the lora and qlora methods; None for a full fine-tune."""
    if recipe["method"] == "full":
        return None
    from peft import LoraConfig

    from folksy.training.recipe import lora_target_modules

    return LoraConfig(
        r=recipe["lora_r"], lora_alpha=recipe["lora_alpha"], lora_dropout=recipe["lora_dropout"],
        target_modules=lora_target_modules(recipe), task_type="CAUSAL_LM",
    )


def build_trainer(recipe: dict, model, tokenizer, train_rows, val_rows, output_dir, bf16: bool, sink):
    """FolksySFTTrainer over the rows, every numeric log entry handed to `sink(metrics, step)`."""
    from datasets import Dataset
    from transformers import EarlyStoppingCallback

    from folksy.training.trainer import CrashPoints, FolksySFTTrainer, MetricsCallback

    if recipe["method"] == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe["gradient_checkpointing"])
    callbacks = [MetricsCallback(sink), CrashPoints()]
    if recipe["early_stopping_patience"]:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=recipe["early_stopping_patience"]))
    return FolksySFTTrainer(
        model=model,
        args=sft_config(recipe, output_dir, bf16),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows),
        processing_class=tokenizer,
        peft_config=peft_config(recipe),
        callbacks=callbacks,
    )
