"""A blind reading of the training corpus itself: which of the engine's sayings a reader would keep.

    python benchmarks/corpus_reading.py sample --count 2000 --batches 4 --out reading/    # reading/batch-<first id>.jsonl + key.json
    python benchmarks/corpus_reading.py sample --count 0 --exclude corpus/saying_labels.jsonl --first-id 2001 --batches 8 --out reading2/
    python benchmarks/corpus_reading.py assemble --key reading/key.json reading2/key.json --marks reading*/marks-*.jsonl \\
        --out corpus/saying_labels.jsonl

`sample` draws distinct corpus sayings at random (seeded) and writes them in batches of `id, request,
saying` lines (the request is one the corpus pairs the saying with, a word-seeded one where there is one):
give each batch alone to two readers with the labelling guide of docs/judge.md, one reading top-down and one
bottom-up. `assemble` joins the readers' `{"id", "score"}` files into the labelled file the recipe's
`min_reader_label` trains on (`folksy.training.sft.recipe_rows`): one line per saying, both readers' marks
and their mean rounded half up, and prints the bands per family and how often the readers agree.
"""

import argparse
import json
import math
import random
from collections import Counter, defaultdict
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "training_pairs.jsonl"


def sample(options) -> None:
    requests: dict[str, list[dict]] = defaultdict(list)
    for line in options.corpus.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            requests[row["output"]].append(row)
    read = {json.loads(line)["saying"] for path in options.exclude for line in path.read_text().splitlines() if line.strip()}
    unread = sorted(set(requests) - read)
    chosen = random.Random(options.seed).sample(unread, min(options.count or len(unread), len(unread)))
    options.out.mkdir(parents=True, exist_ok=True)
    key = {}
    size = math.ceil(len(chosen) / options.batches)
    for k in range(options.batches):
        lines = []
        for number, saying in enumerate(chosen[k * size:(k + 1) * size], options.first_id + k * size):
            rows = requests[saying]
            asked = next((r for r in rows if r["input_type"] == "word_seeded"), rows[0])
            lines.append({"id": number, "request": asked["input"], "saying": saying})
            key[str(number)] = {"saying": saying, "meta_template": rows[0]["meta_template"]}
        (options.out / f"batch-{options.first_id + k * size}.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    (options.out / "key.json").write_text(json.dumps(key, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(chosen)} sayings of {len(requests)} in {options.batches} batches -> {options.out}")


def assemble(options) -> None:
    from folksy.judging.rubric import agreement, band, reader_label

    key = {number: entry for path in options.key for number, entry in json.loads(path.read_text()).items()}
    marks: dict[str, list[int]] = defaultdict(list)
    for path in options.marks:
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if str(row.get("id")) not in key or int(row.get("score", 0)) not in range(1, 6):
                raise SystemExit(f"{path}:{number}: not an {{id, score}} line for this key (score 1-5): {line[:80]}")
            marks[str(row["id"])].append(int(row["score"]))
    out, bands, pairs = [], defaultdict(Counter), []
    for number, entry in key.items():
        if number not in marks:
            continue
        scores = marks[number]
        label = reader_label(scores)
        out.append({"saying": entry["saying"], "meta_template": entry["meta_template"], "scores": scores, "label": label})
        bands[entry["meta_template"]][band(label)] += 1
        if len(scores) == 2:
            pairs.append(scores)
    out.sort(key=lambda row: row["saying"])
    options.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in out))
    for family, counts in sorted(bands.items()):
        print(f"{family:24s} Good {counts['Good']:4d}  Okay {counts['Okay']:4d}  Bad {counts['Bad']:4d}")
    total = sum(bands.values(), Counter())
    print(f"{'all':24s} Good {total['Good']:4d}  Okay {total['Okay']:4d}  Bad {total['Bad']:4d}  ({len(out)} sayings -> {options.out})")
    if pairs:
        print(agreement(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    drawn = commands.add_parser("sample", help="draw corpus sayings into reading batches")
    drawn.add_argument("--corpus", type=Path, default=CORPUS)
    drawn.add_argument("--count", type=int, default=2000, help="sayings to draw; 0: every one not yet read")
    drawn.add_argument("--exclude", type=Path, nargs="*", default=[], help="labelled files whose sayings were read already")
    drawn.add_argument("--first-id", type=int, default=1, help="the first line's id (a later round continues the ids)")
    drawn.add_argument("--batches", type=int, default=4)
    drawn.add_argument("--seed", type=int, default=7)
    drawn.add_argument("--out", type=Path, required=True)
    joined = commands.add_parser("assemble", help="join readers' marks into the labelled file")
    joined.add_argument("--key", type=Path, nargs="+", required=True, help="every round's key.json")
    joined.add_argument("--marks", nargs="+", required=True)
    joined.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    sample(options) if options.command == "sample" else assemble(options)


if __name__ == "__main__":
    main()
