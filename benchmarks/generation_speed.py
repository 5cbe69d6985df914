"""Generation speed of the served path, and the share of the machine's ceiling it reaches, in one run.

    python benchmarks/generation_speed.py --model runs:/<train run>/model
    python benchmarks/generation_speed.py                     # the embedded SmolLM2-135M-Instruct, untuned

Measured side by side in the same process, on the same weights, prompts and seed:
- which matrix ISA torch dispatches to (`torch.backends.cpu.get_cpu_capability()`: AVX512 or AMX),
  the bf16 and fp32 matmul peak at a large square shape and at the model's own decode shapes (rows =
  prompts per batch x samples per prompt), and the memory bandwidth of a large copy;
- the served workload: judge's (every prompt of --prompts answered best-of-8, 8 samples each) and one
  prompt best-of-8 (what one request to `mlflow models serve` costs), in the served dtype
  (`folksy.generation.inference_dtype`, bfloat16 on a CPU with native bf16), sampled two ways from the same
  distribution (temperature 0.8, top-p 0.95): with transformers' warpers and multinomial over the whole
  vocabulary (`SayingGenerator` before 2026-12-07) and with `folksy.generation.NucleusSampler` (now);
  `--dtypes float32,bfloat16` adds float32 (how the pyfunc served a trained model before 2026-12-04);
- generated tokens per second, the ratio new / old, and the share of the decode-shape matmul peak the
  generation's matmul FLOPs reach (2 x parameters per generated token, LM head included).

The critic's scoring is left out: it is the same in both, and this is about the language model.
Figures go into docs/benchmarks.md ("Generation speed").
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def matmul_gflops(m: int, k: int, n: int, dtype, seconds: float = 1.0) -> float:
    """Best GFLOP/s of one (m x k) @ (k x n) matmul, repeated for about `seconds`."""
    import torch

    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    a @ b
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * m * k * n / (time.perf_counter() - started) / 1e9)
    return best


def copy_bandwidth_gbs(megabytes: int = 512, repeats: int = 5) -> float:
    """Best GB/s of copying a large buffer (read + write counted)."""
    import torch

    source = torch.empty(megabytes * 2**20, dtype=torch.uint8).fill_(1)
    target = torch.empty_like(source)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        target.copy_(source)
        best = max(best, 2 * source.numel() / (time.perf_counter() - started) / 1e9)
    return best


def decode_peak(config, rows: int, dtype) -> float:
    """Matmul GFLOP/s at the decode step's shapes, weighted by each shape's FLOPs: what a decode step
    could reach if it were nothing but its matmuls."""
    hidden, inter, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    shapes = [(rows, hidden, config.num_attention_heads * head_dim), (rows, hidden, 2 * config.num_key_value_heads * head_dim),
              (rows, config.num_attention_heads * head_dim, hidden), (rows, hidden, 2 * inter), (rows, inter, hidden), (rows, hidden, vocab)]
    flops = [2 * m * k * n for m, k, n in shapes]
    seconds = sum(f / (matmul_gflops(m, k, n, dtype, 0.5) * 1e9) for f, (m, k, n) in zip(flops, shapes))
    return sum(flops) / seconds / 1e9


def timed_generation(generator, prompts: list[str], samples: int, seed: int, batch_size: int) -> tuple[float, int]:
    """Wall seconds to sample `samples` sayings per prompt, and the tokens generated (end-of-turn included)."""
    started = time.perf_counter()
    sayings = generator.generate(prompts, num_return_sequences=samples, seed=seed, batch_size=batch_size)
    seconds = time.perf_counter() - started
    tokens = sum(len(generator.tokenizer(s, add_special_tokens=False)["input_ids"]) + 1 for options in sayings for s in options)
    return seconds, tokens


def sample_as_before(generator):
    """`generator`, sampling the way SayingGenerator did before 2026-12-07: its NucleusSampler handed back to
    transformers as `do_sample=True` with the same temperature and top-p (sorted and drawn over the whole
    vocabulary). A benchmark-only shim: the library keeps one sampling path."""
    generate = generator.model.generate

    def generate_as_before(**kwargs):
        for sampler in kwargs.pop("logits_processor", None) or []:
            kwargs.update(do_sample=True, temperature=sampler.temperature, top_p=sampler.top_p)
        return generate(**kwargs)

    generator.model.generate = generate_as_before
    return generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="a model URI (runs:/..., models:/...) or a Hugging Face directory [default: the embedded base]")
    parser.add_argument("--prompts", type=Path, default=ROOT / "benchmarks" / "reading" / "prompts-2026-12-04b.jsonl")
    parser.add_argument("--samples", type=int, default=8, help="samples per prompt (the default recipe's best_of)")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per generate call, as SayingGenerator's default")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the one-prompt latency (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dtypes", default="", help="comma-separated dtypes to run [default: the served one]")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here as JSON")
    options = parser.parse_args()

    import torch

    from folksy.base_models import resolve_base_model
    from folksy.generation import SayingGenerator, download_hf_dir, inference_dtype

    if not options.model:
        hf_dir = resolve_base_model("smollm2-135m-instruct").path
    elif Path(options.model).is_dir():
        hf_dir = options.model
    else:
        download = tempfile.TemporaryDirectory(prefix="folksy-model-")  # removed when the process exits
        hf_dir = str(download_hf_dir(options.model, download.name))
    prompts = [json.loads(line)["prompt"] for line in options.prompts.read_text().splitlines() if line.strip()]
    served = inference_dtype()
    threads = torch.get_num_threads()

    dtypes = [name.strip() for name in options.dtypes.split(",") if name.strip()] or [served]
    generators = {}
    for name in dtypes:
        generators[f"{name}, transformers sampler"] = sample_as_before(SayingGenerator.from_pretrained(hf_dir, dtype=name))
        generators[f"{name}, nucleus sampler"] = SayingGenerator.from_pretrained(hf_dir, dtype=name)
    model = next(iter(generators.values())).model
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    if model.get_output_embeddings().weight is model.get_input_embeddings().weight:
        params_per_token = params  # tied: the embedding table is the LM head, and every token pays for it
    else:
        params_per_token = params - model.get_input_embeddings().weight.numel()
    rows = min(options.batch_size, len(prompts)) * options.samples

    figures = {
        "torch": torch.__version__, "threads": threads, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "served_dtype": served, "params": params, "decode_rows": rows,
        "copy_bandwidth_gbs": round(copy_bandwidth_gbs(), 1),
        "peak_square_gflops": {name: round(matmul_gflops(2048, 2048, 2048, getattr(torch, name)), 1) for name in dtypes},
        "peak_decode_gflops": {name: round(decode_peak(config, rows, getattr(torch, name)), 1) for name in dtypes},
        "peak_decode_one_prompt_gflops": {name: round(decode_peak(config, options.samples, getattr(torch, name)), 1) for name in dtypes},
    }
    print(json.dumps(figures))
    for name, generator in generators.items():
        generator.generate(prompts[:2], num_return_sequences=2, seed=0, max_new_tokens=4)  # warm-up
        seconds, tokens = timed_generation(generator, prompts, options.samples, options.seed, options.batch_size)
        latency = statistics.median(timed_generation(generator, prompts[:1], options.samples, options.seed + r, options.batch_size)[0] for r in range(options.repeats))
        achieved = tokens * 2 * params_per_token / seconds / 1e9
        figures[name] = {
            "judge_workload_s": round(seconds, 2), "tokens": tokens, "tokens_per_s": round(tokens / seconds, 1),
            "matmul_gflops": round(achieved, 1), "share_of_decode_peak": round(achieved / figures["peak_decode_gflops"][name.split(",")[0]], 3),
            "one_prompt_best_of_s": round(latency, 3),
        }
        print(name, json.dumps(figures[name]))
    for name in dtypes:
        before, now = figures[f"{name}, transformers sampler"], figures[f"{name}, nucleus sampler"]
        figures[f"{name} speedup"] = {"judge_workload": round(before["judge_workload_s"] / now["judge_workload_s"], 2),
                                      "one_prompt": round(before["one_prompt_best_of_s"] / now["one_prompt_best_of_s"], 2)}
        print(f"{name} speedup", json.dumps(figures[f"{name} speedup"]))
    if options.out:
        options.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
