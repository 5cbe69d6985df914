"""Candidate sayings for the judge's realistic labelled set (corpus/judge_realistic.jsonl), from real sources.

    python benchmarks/judge_set_candidates.py model --model runs:/<train run>/model --source model-64 --out candidates.jsonl
    python benchmarks/judge_set_candidates.py base --out candidates.jsonl      # the untuned embedded base model
    python benchmarks/judge_set_candidates.py engine --out candidates.jsonl    # the template engine
    python benchmarks/judge_set_candidates.py nonsense --count 120 --out candidates.jsonl

Every command appends `{"text", "source", "prompt", "prompt_kind"}` lines to --out. The prompts are
benchmarks/reading/prompts.jsonl: written for reading, none of them in the corpus. The candidates are
then labelled by reading them blind against docs/judge.md's labelling guide (see docs/benchmarks.md).
"""

import argparse
import json
import random
from pathlib import Path

PROMPTS = Path(__file__).resolve().parent / "reading" / "prompts.jsonl"


def reading_prompts(path: Path | None = None) -> list[dict]:
    return [json.loads(line) for line in (path or PROMPTS).read_text().splitlines() if line.strip()]


def append(out: Path, rows: list[dict]) -> None:
    with open(out, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} candidates -> {out}")


def from_generator(generator, source: str, per_prompt: int, seed: int, path: Path | None = None) -> list[dict]:
    prompts = reading_prompts(path)
    texts = [p["prompt"] for p in prompts]
    answers = generator.generate(texts, num_return_sequences=per_prompt, seed=seed, progress=True)
    return [{"text": saying, "source": source, "prompt": p["prompt"], "prompt_kind": p["kind"]} for p, sayings in zip(prompts, answers) for saying in sayings]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=["model", "base", "engine", "nonsense"])
    parser.add_argument("--model", default="", help="model URI or HF directory (source model)")
    parser.add_argument("--name", default="", help="the source name to record, e.g. model-64 (source model)")
    parser.add_argument("--per-prompt", type=int, default=2)
    parser.add_argument("--count", type=int, default=120, help="how many nonsense sayings")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, default=PROMPTS, help="prompts JSONL ({prompt, kind} per line)")
    options = parser.parse_args()

    if options.source == "engine":
        from folksy.corpus.engine import respond

        rows = [{"text": respond(p["prompt"], seed=options.seed + i * 10 + k), "source": "engine", "prompt": p["prompt"], "prompt_kind": p["kind"]}
                for i, p in enumerate(reading_prompts(options.prompts)) for k in range(options.per_prompt)]  # fmt: skip
    elif options.source == "nonsense":
        from folksy.judging.critic_data import mismatched_fill

        rng = random.Random(options.seed)
        rows = [{"text": mismatched_fill(rng), "source": "nonsense", "prompt": "", "prompt_kind": ""} for _ in range(options.count)]
    else:
        import torch

        from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model
        from folksy.generation import SayingGenerator, load_generator

        if options.source == "base":
            generator, name = SayingGenerator.from_pretrained(resolve_base_model(EMBEDDED_DEFAULT).path), "base"
        else:
            generator, name = load_generator(options.model), options.name or "model"
        generator.model.to(torch.bfloat16)
        rows = from_generator(generator, name, options.per_prompt, options.seed, options.prompts)
    append(options.out, rows)


if __name__ == "__main__":
    main()
