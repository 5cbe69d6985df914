"""The default recipe trained once, with the model saved at several step counts: sources for reading.

    python benchmarks/train_snapshots.py --prepare-run-id <id> --steps 64,160,320 --out /tmp/snapshots

Trains `configs/smollm2-135m-cpu.yaml` over the whole train split (train_subsample=0) for the largest
step count, with the cosine schedule set for that count, and saves a plain HF directory at each step
count given (`<out>/step-<n>`), with the validation loss at that step in `<out>/snapshots.json`.
The snapshots are what benchmarks/judge_set_candidates.py reads as "the default model at three
training lengths" for the judge's realistic labelled set. An early snapshot of a long run is not the
same model as a short run of its own (its learning rate has not decayed); the quality-versus-budget
curve in docs/benchmarks.md trains each budget separately. Nothing is logged to MLflow.
"""

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepare-run-id", required=True, help="a finished prepare run in $MLFLOW_TRACKING_URI")
    parser.add_argument("--steps", default="64,160,320", help="step counts to save, comma-separated")
    parser.add_argument("--overrides", default="", help="more recipe overrides, as train's --overrides")
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()

    import tempfile

    from transformers import TrainerCallback

    from folksy.defaults import RECIPE
    from folksy.base_models import resolve_base_model
    from folksy.lineage import download_splits
    from folksy.training.recipe import load_recipe
    from folksy.training.sft import build_trainer, load_base, recipe_rows, training_rows
    from folksy.generation import bf16_supported
    from folksy.training.trainer import keep_freed_memory

    steps = sorted(int(s) for s in options.steps.split(","))
    overrides = f"train_subsample=0,max_steps={steps[-1]},eval_steps=32,save_steps={steps[-1]},early_stopping_patience=0"
    recipe = load_recipe(ROOT / RECIPE, ",".join(filter(None, [overrides, options.overrides])))
    bf16 = recipe["bf16"] and bf16_supported()
    keep_freed_memory()
    options.out.mkdir(parents=True, exist_ok=True)
    record = {"recipe": recipe, "bf16": bf16, "snapshots": []}

    class Snapshots(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in steps:
                control.should_evaluate = True  # the val loss at exactly this step

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if state.global_step in steps and state.global_step not in [s["step"] for s in record["snapshots"]]:
                target = options.out / f"step-{state.global_step}"
                kwargs["model"].save_pretrained(target)
                tokenizer.save_pretrained(target)
                record["snapshots"].append({"step": state.global_step, "eval_loss": metrics["eval_loss"],
                                            "minutes": round((time.time() - started) / 60, 2), "path": str(target)})
                (options.out / "snapshots.json").write_text(json.dumps(record, indent=1))
                print(f"snapshot: step {state.global_step}, eval_loss {metrics['eval_loss']:.4f} -> {target}", flush=True)

    with tempfile.TemporaryDirectory(prefix="folksy-snapshots-") as scratch:
        splits = download_splits(options.prepare_run_id, ("train", "val"), scratch)
        train_rows, val_rows = (training_rows(recipe_rows(splits[split], recipe, split)) for split in ("train", "val"))
        model, tokenizer = load_base(recipe, resolve_base_model(recipe["base_model"]).path, bf16)
        trainer = build_trainer(recipe, model, tokenizer, train_rows, val_rows, Path(scratch) / "out", bf16, sink=lambda values, step: None)
        trainer.add_callback(Snapshots())
        started = time.time()
        trainer.train()
    print(json.dumps(record["snapshots"], indent=1))


if __name__ == "__main__":
    main()
