"""Training throughput: this project's settings against the original skeleton's, same model, same data.

    python benchmarks/train_throughput.py --steps 4

Both settings train the embedded SmolLM2-135M-Instruct with TRL's SFTTrainer at batch 32 on the same
pool of corpus examples (conversational prompt/completion, completion-only loss):

- skeleton: SFTTrainer's defaults on a CPU: gradient checkpointing on, fp32, max length 128, SDPA
  attention, random batches, TRL's own loss (full-vocabulary log-probs, entropy and token accuracy);
- folksy: the CPU recipe's speed settings (configs/smollm2-135m-cpu.yaml): bf16 autocast with fp32
  master weights, no gradient checkpointing, eager attention, length-grouped batches,
  folksy.training.trainer.FolksySFTTrainer's loss on the completion positions only, and glibc keeping freed
  memory for reuse (folksy.training.trainer.keep_freed_memory).

For each it prints real (non-pad) tokens per second over the timed steps (the first `--warmup` steps are
not timed), the ratio between them, and MFU: useful matmul FLOPs per second over the best bf16 matmul
rate measured on this machine in the same run. Useful FLOPs are 6 x (decoder params + the LM head on
the scored share of positions) per real token; padding, recomputation and attention scores earn nothing.
It is a benchmark, not a test: run it on a quiet machine. Nothing is logged to MLflow.
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

CPU_RECIPE = PROJECT_ROOT / "configs" / "smollm2-135m-cpu.yaml"
BATCH_SIZE = 32  # the batch both settings were measured at before the train issue
SKELETON_MAX_LENGTH = 128


def matmul_peak(dtype, seconds: float = 2.0) -> float:
    """Best GFLOP/s of a plain matmul over a few shapes, including this model's own GEMM shapes."""
    import torch

    best = 0.0
    for m, k, n in [(2048, 2048, 2048), (1792, 576, 1536), (1792, 1536, 576), (4096, 576, 576)]:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        a @ b
        deadline = time.perf_counter() + seconds / 4
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            a @ b
            best = max(best, 2 * m * k * n / (time.perf_counter() - started) / 1e9)
    return best


def corpus_examples(count: int, seed: int) -> list[dict]:
    from folksy.chat import to_prompt_completion

    lines = (PROJECT_ROOT / "corpus" / "training_pairs.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in random.Random(seed).sample(lines, count)]
    return [{k: v for k, v in to_prompt_completion(row).items() if k in ("prompt", "completion")} for row in rows]


class CountingCollator:
    """Wraps the trainer's collator and records each batch's real and padded token counts, in order."""

    def __init__(self, collator):
        self.collator = collator
        self.batches: list[tuple[int, int, int]] = []  # (real tokens, padded positions, scored tokens)

    def __call__(self, examples):
        batch = self.collator(examples)
        mask = batch.get("attention_mask")
        real = int(mask.sum()) if mask is not None else batch["input_ids"].numel()
        scored = int((batch["labels"][:, 1:] != -100).sum())
        self.batches.append((real, batch["input_ids"].numel(), scored))
        return batch


def settings(recipe: dict) -> dict[str, dict]:
    """The two settings compared, plus ablations: the folksy setting with one of its choices undone."""
    skeleton = {"trainer": "trl", "bf16": False, "checkpointing": True, "attention": "sdpa", "grouped": False, "keep_memory": False, "max_length": SKELETON_MAX_LENGTH}
    folksy = {
        "trainer": "folksy", "bf16": recipe["bf16"], "checkpointing": recipe["gradient_checkpointing"],
        "attention": recipe["attn_implementation"], "grouped": recipe["group_by_length"], "keep_memory": True,
        "max_length": recipe["max_length"],
    }
    undo = {
        "folksy + TRL's loss": {"trainer": "trl"},
        "folksy + fp32": {"bf16": False},
        "folksy + gradient checkpointing": {"checkpointing": True},
        "folksy + SDPA attention": {"attention": "sdpa"},
        "folksy + random batches": {"grouped": False},
        "folksy + glibc's default malloc": {"keep_memory": False},
    }
    return {"skeleton": skeleton, "folksy": folksy, **{name: {**folksy, **change} for name, change in undo.items()}}


def measure(name: str, setting: dict, model_dir: str, examples: list[dict], steps: int, warmup: int) -> dict:
    """Train `warmup + steps` optimizer steps in one setting and time the last `steps` of them."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from folksy.generation import bf16_supported
    from folksy.training.trainer import FolksySFTTrainer, keep_freed_memory, train_flops_per_token

    class StepClock(TrainerCallback):
        def __init__(self):
            self.durations, self.started = [], None

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.durations.append(time.perf_counter() - self.started)

    if setting["keep_memory"]:
        keep_freed_memory()  # what steps.train does; process-wide, so main() measures the others first
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=setting["attention"])
    with tempfile.TemporaryDirectory() as output_dir:
        args = SFTConfig(
            output_dir=output_dir, per_device_train_batch_size=BATCH_SIZE, max_steps=warmup + steps,
            learning_rate=1e-5, logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none",
            use_cpu=not torch.cuda.is_available(), seed=0, disable_tqdm=True, dataloader_num_workers=0,
            max_length=setting["max_length"], bf16=setting["bf16"] and bf16_supported(),
            activation_checkpointing=setting["checkpointing"],
            train_sampling_strategy="group_by_length" if setting["grouped"] else "random",
        )
        trainer_class = FolksySFTTrainer if setting["trainer"] == "folksy" else SFTTrainer
        clock = StepClock()
        trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tokenizer, callbacks=[clock])
        trainer.data_collator = counter = CountingCollator(trainer.data_collator)
        print(f"[{name}] training {warmup + steps} steps of {BATCH_SIZE} examples ...", flush=True)
        trainer.train()
    timed = slice(warmup, warmup + steps)
    seconds = sum(clock.durations[timed])
    real, padded, scored = (sum(column) for column in zip(*counter.batches[timed]))
    flops = train_flops_per_token(model.config, scored_share=scored / real)
    return {
        "setting": name,
        "real_tokens_per_second": real / seconds,
        "seconds_per_step": statistics.median(clock.durations[timed]),
        "real_tokens_per_step": real / steps,
        "padding_share": 1 - real / padded,
        "useful_gflops_per_second": real * flops / seconds / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="timed optimizer steps per setting")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (allocation, oneDNN kernels)")
    parser.add_argument("--pool", type=int, default=1600, help="corpus examples the batches are drawn from")
    parser.add_argument("--only", choices=["skeleton", "folksy"], help="measure one setting")
    parser.add_argument("--ablations", action="store_true", help="also measure folksy with each of its choices undone (~4 more minutes)")
    parser.add_argument("--threads", type=int, help="torch threads [default: torch's choice, one per core]")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()

    import torch

    from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model
    from folksy.training.recipe import load_recipe

    if options.threads:
        torch.set_num_threads(options.threads)

    recipe = load_recipe(CPU_RECIPE)
    model_dir = resolve_base_model(EMBEDDED_DEFAULT).path
    examples = corpus_examples(max(options.pool, BATCH_SIZE * (options.steps + options.warmup)), seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    bf16_peak, fp32_peak = matmul_peak(torch.bfloat16), matmul_peak(torch.float32)
    print(f"matmul peak: bf16 {bf16_peak:.0f} GFLOP/s, fp32 {fp32_peak:.0f} GFLOP/s", flush=True)

    chosen = settings(recipe)
    names = ["skeleton", "folksy"] + ([n for n in chosen if n not in ("skeleton", "folksy")] if options.ablations else [])
    names = [n for n in names if options.only in (None, n)]
    # glibc's tuning cannot be undone in-process, so the settings without it are measured first
    measured = {name: measure(name, chosen[name], model_dir, examples, options.steps, options.warmup) for name in sorted(names, key=lambda n: chosen[n]["keep_memory"])}
    results = [measured[name] for name in names]
    for result in results:
        result["mfu_vs_bf16_peak"] = result["useful_gflops_per_second"] / bf16_peak
    print(f"\nload average after: {os.getloadavg()[0]:.1f}\n")
    print("| setting | real tokens/s | s/step | real tokens/step | padding | useful GFLOP/s | MFU (bf16 peak) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['setting']} | {r['real_tokens_per_second']:.0f} | {r['seconds_per_step']:.1f} | {r['real_tokens_per_step']:.0f} | "
            f"{r['padding_share']:.0%} | {r['useful_gflops_per_second']:.0f} | {r['mfu_vs_bf16_peak']:.0%} |"
        )
    by_name = {r["setting"]: r for r in results}
    if {"skeleton", "folksy"} <= set(by_name):
        speedup = by_name["folksy"]["real_tokens_per_second"] / by_name["skeleton"]["real_tokens_per_second"]
        print(f"\nspeed-up: {speedup:.1f}x real tokens/s (target >= 4x); folksy MFU {by_name['folksy']['mfu_vs_bf16_peak']:.0%} (target >= 40%)")
    if options.json:
        options.json.write_text(json.dumps({"bf16_peak_gflops": bf16_peak, "fp32_peak_gflops": fp32_peak, "results": results}, indent=2))


if __name__ == "__main__":
    main()
