"""The judge run's per-item files: judge_results.jsonl, ab_results.jsonl, ab_champion_results.jsonl, calibration_results.jsonl."""

from pathlib import Path

from folksy.jsonl import write_jsonl


def write_results(out: Path, judge_id: str, sample, prompts, sayings, judgements, ab, heldout, calibration) -> None:
    """`ab` is ((prompts, rows, model sayings, engine sayings, outcomes, model-first verdicts, engine-first verdicts),
    the champion A/B's rows)."""
    ab, champion_rows = ab
    write_jsonl(out / "judge_results.jsonl", (
        {"prompt": p, "input_type": row.get("input_type"), "saying": s, "score": j.score, "justification": j.justification,
         "raw": j.raw, "error": j.error, "judge_id": judge_id}
        for p, row, s, j in zip(prompts, sample, sayings, judgements)
    ))
    write_jsonl(out / "ab_results.jsonl", (
        {"prompt": p, "input_type": row.get("input_type"), "model_saying": m, "engine_saying": e, "outcome": o,
         "model_first": vars(a), "engine_first": vars(b), "judge_id": judge_id}
        for p, row, m, e, o, a, b in zip(*ab)
    ))
    write_jsonl(out / "ab_champion_results.jsonl", ({**row, "judge_id": judge_id} for row in champion_rows))
    write_jsonl(out / "calibration_results.jsonl", (
        {**row, "score": j.score, "justification": j.justification, "raw": j.raw, "error": j.error, "judge_id": judge_id}
        for row, j in zip(heldout, calibration)
    ))
