"""Assemble the realistic labelled set (corpus/judge_realistic.jsonl) from blind readings.

    python benchmarks/judge_set_assemble.py --key key.json --readings a.jsonl b.jsonl ... [--out corpus/judge_realistic.jsonl]

`--key` maps each reading id to its candidate (benchmarks/judge_set_candidates.py's rows) or to an
anchor from corpus/judge_calibration.jsonl; each readings file holds `{"rid", "score"}` lines from one
reader. Every candidate is read by two readers; its label is their mean rounded half up, and both
readings are kept (`readings`). The old calibration items join the set with their own labels and
split, as source `calibration-<kind>`. The held-out split is grouped by prompt and stratified by
source: a third of the reading prompts (every third within each prompt kind) hold out every saying
written for them, and every third nonsense fill is held out. Prints the readers' agreement with each
other and with the anchors' old labels.
"""

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--readings", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "corpus" / "judge_realistic.jsonl")
    options = parser.parse_args()

    from folksy.jsonl import read_jsonl
    from folksy.judging.critic_data import load_calibration

    key = json.loads(options.key.read_text())
    scores = defaultdict(list)
    for path in options.readings:
        for row in read_jsonl(path):
            if row["rid"] in key and row.get("score") in (1, 2, 3, 4, 5):
                scores[row["rid"]].append(int(row["score"]))

    pairs = [s[:2] for s in scores.values() if len(s) >= 2]
    exact = sum(a == b for a, b in pairs)
    within = sum(abs(a - b) <= 1 for a, b in pairs)
    print(f"readers agree on {len(pairs)} items read twice: {exact} exact ({exact / len(pairs):.0%}), {within} within one ({within / len(pairs):.0%})")
    anchors = [(half_up(sum(scores[r]) / len(scores[r])), int(item["label"])) for r, item in key.items() if item.get("anchor") and scores[r]]
    if anchors:
        a_exact, a_within = sum(a == b for a, b in anchors), sum(abs(a - b) <= 1 for a, b in anchors)
        print(f"anchors (old calibration labels): {len(anchors)} read, {a_exact} exact, {a_within} within one")

    prompts_by_kind = defaultdict(list)
    for item in key.values():
        if not item.get("anchor") and item["prompt"] and item["prompt"] not in prompts_by_kind[item["prompt_kind"]]:
            prompts_by_kind[item["prompt_kind"]].append(item["prompt"])
    heldout_prompts = {p for kind in prompts_by_kind.values() for i, p in enumerate(sorted(kind)) if i % 3 == 0}

    rows, nonsense_seen, unread = [], 0, 0
    for rid, item in sorted(key.items(), key=lambda kv: kv[1]["id"]):
        if item.get("anchor"):
            continue
        read = scores.get(rid, [])
        if len(read) < 2:
            unread += 1
            continue
        if item["source"] == "nonsense":
            split = "heldout" if nonsense_seen % 3 == 0 else "train"
            nonsense_seen += 1
        else:
            split = "heldout" if item["prompt"] in heldout_prompts else "train"
        rows.append({
            "text": item["text"], "label": half_up(sum(read[:2]) / 2), "readings": read[:2], "source": item["source"],
            "prompt": item["prompt"], "prompt_kind": item["prompt_kind"], "split": split, "injection": False,
        })
    for item in load_calibration():
        rows.append({
            "text": item["text"], "label": int(item["label"]), "readings": [], "source": f"calibration-{item['kind']}",
            "prompt": "", "prompt_kind": "", "split": item["split"], "injection": bool(item.get("injection")),
        })
    options.out.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    print(f"{len(rows)} items -> {options.out} ({unread} candidates not read twice were left out)")

    by_source = defaultdict(list)
    for row in rows:
        by_source[row["source"]].append(row)
    print(f"{'source':<26} {'n':>4} {'held':>5} {'mean':>5} {'Good':>5} {'Okay':>5} {'Bad':>5}")
    for source, items in sorted(by_source.items()):
        labels = [r["label"] for r in items]
        print(f"{source:<26} {len(items):>4} {sum(r['split'] == 'heldout' for r in items):>5} {sum(labels) / len(labels):>5.2f} "
              f"{sum(l >= 4 for l in labels):>5} {sum(l == 3 for l in labels):>5} {sum(l <= 2 for l in labels):>5}")


if __name__ == "__main__":
    main()
