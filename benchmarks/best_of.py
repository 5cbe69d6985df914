"""Best-of-n with the default critic: what it picks, for blind reading, and what it costs.

    python benchmarks/best_of.py --model <HF dir or model URI> --prompts benchmarks/reading/prompts-2026-12-03.jsonl --out best_of.json

Samples --n sayings per prompt (the pyfunc's default sampling, one seed), scores every one with the
default critic (the one `judge` trains, from the folksy cache), and records for each prompt the pick
of best-of-k for k = 1, 2, 4, ... n taken over the first k samples (best-of-1 is plain sampling).
`--reading <file>` also writes the picks of best-of-1, best-of-4 and best-of-n and one template-engine answer per
prompt as `id, request, saying` lines, shuffled, with the key (which source wrote which id) kept in
the --out file only: give the reading file alone to blind readers.

Latency is measured side by side in the same process: one prompt answered with best_of = 1, 4 and n
(generation plus critic), each repeated --repeats times, median seconds.
"""

import argparse
import json
import random
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model URI (runs:/..., models:/...) or a Hugging Face directory")
    parser.add_argument("--prompts", type=Path, required=True, help="prompts JSONL ({prompt, kind} per line)")
    parser.add_argument("--n", type=int, default=8, help="samples per prompt")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3, help="latency repeats per best_of")
    parser.add_argument("--out", type=Path, required=True, help="JSON: every sample, its score, the picks, latency")
    parser.add_argument("--reading", type=Path, default=None, help="also write a shuffled blind-reading file here")
    options = parser.parse_args()

    import torch

    from folksy.best_of import critic_scores, pick_best
    from folksy.corpus.engine import respond
    from folksy.defaults import CORPUS
    from folksy.generation import SayingGenerator, load_generator
    from folksy.judging.critic import Critic
    from folksy.judging.critic_registry import default_critic_dir

    prompts = [json.loads(line) for line in options.prompts.read_text().splitlines() if line.strip()]
    critic = Critic.load(default_critic_dir(ROOT / CORPUS))
    score = critic_scores(critic)
    generator = SayingGenerator.from_pretrained(options.model) if Path(options.model).is_dir() else load_generator(options.model)
    generator.model.to(torch.bfloat16)

    texts = [p["prompt"] for p in prompts]
    samples = generator.generate(texts, num_return_sequences=options.n, seed=options.seed, progress=True)
    raw = score([s for options_ in samples for s in options_])
    sizes = [k for k in (1, 2, 4, 8, 16, 32) if k <= options.n]
    picks = {k: pick_best([s[:k] for s in samples], score) for k in sizes}
    calibrated = [float(c) for c in critic.calibrate(raw)]

    rows = []
    for i, prompt in enumerate(prompts):
        chunk = slice(i * options.n, (i + 1) * options.n)
        rows.append({
            **prompt,
            "samples": [{"text": t, "raw": round(float(r), 4), "score": round(c, 3)} for t, r, c in zip(samples[i], raw[chunk], calibrated[chunk])],
            "picks": {str(k): picks[k][i][0] for k in sizes},
            "engine": respond(prompt["prompt"], seed=options.seed + i),
        })

    latency = {}
    one = [texts[0]]
    for k in sorted({1, min(4, options.n), options.n}):
        times = []
        for repeat in range(options.repeats):
            start = time.perf_counter()
            pick_best(generator.generate(one, num_return_sequences=k, seed=repeat), score)
            times.append(time.perf_counter() - start)
        latency[str(k)] = round(statistics.median(times), 3)
    print("latency, one prompt (s, median):", latency)

    by_score = {k: statistics.mean(next(s["score"] for s in row["samples"] if s["text"] == picks[k][i][0]) for i, row in enumerate(rows)) for k in sizes}
    print("critic mean of the pick:", {k: round(v, 3) for k, v in by_score.items()})
    result = {"model": options.model, "n": options.n, "seed": options.seed, "latency_s": latency,
              "critic_mean_of_pick": {str(k): round(v, 4) for k, v in by_score.items()}, "prompts": rows}  # fmt: skip

    if options.reading:
        items = []
        for row in rows:
            answers = {f"best-of-{k}": row["picks"][str(k)] for k in sorted({1, min(4, options.n), options.n})} | {"engine": row["engine"]}
            for source, saying in answers.items():
                items.append({"request": row["prompt"], "saying": saying, "source": source})
        random.Random(options.seed).shuffle(items)
        for number, item in enumerate(items, 1):
            item["id"] = number
        options.reading.write_text("".join(json.dumps({"id": it["id"], "request": it["request"], "saying": it["saying"]}) + "\n" for it in items))
        result["reading_key"] = {str(it["id"]): it["source"] for it in items}
        print(f"{len(items)} lines for blind reading -> {options.reading}")
    options.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"-> {options.out}")


if __name__ == "__main__":
    main()
