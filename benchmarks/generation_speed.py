"""Generation speed of the served path, and the share of the machine's ceiling it reaches, in one run.

    python benchmarks/generation_speed.py --model runs:/<train run>/model
    python benchmarks/generation_speed.py                     # the embedded SmolLM2-135M-Instruct, untuned

Measured side by side in the same process, on the same weights, prompts and seed:
- which matrix ISA torch dispatches to (`torch.backends.cpu.get_cpu_capability()`: AVX512 or AMX),
  the bf16 and fp32 matmul peak at a large square shape and at the model's own decode shapes (rows =
  prompts per batch x samples per prompt), and the memory bandwidth of a large copy;
- the served workload: judge's (every prompt of --prompts answered best-of-8, 8 samples each) and one
  prompt best-of-8 (what one request to `mlflow models serve` costs), in the served dtype
  (`folksy.generation.inference_dtype`, bfloat16 on a CPU with native bf16), sampled from the same
  distribution (temperature 0.8, top-p 0.95) three ways: `model.generate` with transformers' warpers and
  multinomial over the whole vocabulary (`SayingGenerator` until 2026-12-07, the baseline); `model.generate`
  with `folksy.generation.NucleusSampler` (2026-12-07); `SayingGenerator.decode`, its own loop that reads a
  prompt once for all its samples and drops a row when it stops (now), with the same sampler;
  `--dtypes float32,bfloat16` adds float32 (how the pyfunc served a trained model before 2026-12-04);
- generated tokens per second at 1, 8, 32 and 64 rows (one sample per prompt), and one saying's latency
  (p50 / p95), for the baseline and now;
- generated tokens per second, the ratio new / old, and the share of the decode-shape matmul peak the
  generation's matmul FLOPs reach (2 x parameters per generated token, LM head included);
- greedy sayings of the baseline loop and of `decode` on every prompt, and how many are equal.

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


def decode_with_generate(generator, transformers_sampler: bool):
    """`generator` decoding through `model.generate`, as SayingGenerator did until this benchmark's change:
    every copy of a prompt read separately, a stopped row carried as padding until the batch's longest stops.
    Sampling goes either to transformers' warpers (until 2026-12-07) or to the same NucleusSampler, left the
    only finite score so a greedy `generate` takes it. A benchmark-only shim: the library keeps one loop."""
    def decode(input_ids, attention_mask, max_new_tokens, copies=1, sampler=None):
        settings = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if sampler is not None and transformers_sampler:
            settings.update(do_sample=True, temperature=sampler.temperature, top_p=sampler.top_p)
        elif sampler is not None:
            def leave_one(ids, scores):
                return scores.new_full(scores.shape, float("-inf")).scatter_(1, sampler(scores)[:, None], 0.0)
            settings["logits_processor"] = [leave_one]
        input_ids, attention_mask = (t.repeat_interleave(copies, dim=0) for t in (input_ids, attention_mask))
        output = generator.model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                                          pad_token_id=generator.tokenizer.pad_token_id, eos_token_id=generator.stop_token_ids,
                                          use_cache=True, **settings)
        stops = set(generator.stop_token_ids)
        rows = output[:, input_ids.shape[1]:].tolist()
        return [row[: next((i + 1 for i, token in enumerate(row) if token in stops), len(row))] for row in rows]

    generator.decode = decode
    return generator


def tokens_per_second(generator, prompts: list[str], rows: int, seed: int) -> float:
    """Generated tokens per second with `rows` prompts decoded together, one sample each."""
    batch = [prompts[i % len(prompts)] for i in range(rows)]
    seconds, tokens = timed_generation(generator, batch, 1, seed, rows)
    return tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="a model URI (runs:/..., models:/...) or a Hugging Face directory [default: the embedded base]")
    parser.add_argument("--prompts", type=Path, default=ROOT / "benchmarks" / "reading" / "prompts-2026-12-04b.jsonl")
    parser.add_argument("--samples", type=int, default=8, help="samples per prompt (the default recipe's best_of)")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per generate call, as SayingGenerator's default")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the one-prompt latency (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--one-saying-repeats", type=int, default=20, help="one prompt, one sample, this many times: p50 and p95")
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
    paths = {"generate, transformers sampler": True, "generate, nucleus sampler": False, "decode": None}
    generators = {}
    for name in dtypes:
        for path, transformers_sampler in paths.items():
            generator = SayingGenerator.from_pretrained(hf_dir, dtype=name)
            generators[f"{name}, {path}"] = generator if transformers_sampler is None else decode_with_generate(generator, transformers_sampler)
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
        if "nucleus" not in name:  # the baseline and now: tokens/s by batch size, one saying's latency
            figures[name]["tokens_per_s_by_rows"] = {rows: round(tokens_per_second(generator, prompts, rows, options.seed), 1) for rows in (1, 8, 32, 64)}
            one = sorted(timed_generation(generator, [prompts[r % len(prompts)]], 1, options.seed + r, 1)[0] for r in range(options.one_saying_repeats))
            figures[name]["one_saying_p50_s"] = round(statistics.median(one), 3)
            figures[name]["one_saying_p95_s"] = round(one[min(len(one) - 1, round(0.95 * (len(one) - 1)))], 3)
        print(name, json.dumps(figures[name]))
    for name in dtypes:
        before, now = figures[f"{name}, generate, transformers sampler"], figures[f"{name}, decode"]
        figures[f"{name} speedup"] = {
            "judge_workload": round(before["judge_workload_s"] / now["judge_workload_s"], 2),
            "one_prompt_best_of": round(before["one_prompt_best_of_s"] / now["one_prompt_best_of_s"], 2),
            "one_saying_p50": round(before["one_saying_p50_s"] / now["one_saying_p50_s"], 2),
            "by_rows": {rows: round(now["tokens_per_s_by_rows"][rows] / before["tokens_per_s_by_rows"][rows], 2) for rows in (1, 8, 32, 64)},
        }
        print(f"{name} speedup", json.dumps(figures[f"{name} speedup"]))
        baseline = generators[f"{name}, generate, nucleus sampler"].generate(prompts, temperature=0.0)
        mine = generators[f"{name}, decode"].generate(prompts, temperature=0.0)
        figures[f"{name} greedy"] = {"prompts": len(prompts), "equal": sum(a == b for a, b in zip(baseline, mine)),
                                     "differing": [[a[0], b[0]] for a, b in zip(baseline, mine) if a != b]}
        print(f"{name} greedy", json.dumps(figures[f"{name} greedy"]))
    if options.out:
        options.out.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
