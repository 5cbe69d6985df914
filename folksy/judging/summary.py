"""The figures every judge run reports: score distribution, calibration against labels, group means,
and the failure budget. Pure: no MLflow, no model."""

import math
import re
from collections import Counter

from folksy.judging.rubric import Judgement, JudgeFailure


def score_summary(judgements: list[Judgement], prefix: str = "judge") -> dict[str, float]:
    """Mean, low and high shares, a rounded-score distribution and the failure counts.

    A score is "1-2" (low) when it rounds to 1 or 2, i.e. is below 2.5, and "4-5" (high) from 3.5 up:
    the shares always agree with judge_count_1..5, also for a critic's or G-Eval's fractional scores.
    """
    scores = [j.score for j in judgements if j.score is not None]
    summary: dict[str, float] = {
        f"{prefix}_items": len(judgements),
        f"{prefix}_scored": len(scores),
        f"{prefix}_parse_failures": sum(j.error == "unparseable" for j in judgements),
        f"{prefix}_request_failures": sum(j.score is None and j.error != "unparseable" for j in judgements),
        f"{prefix}_failure_share": (len(judgements) - len(scores)) / max(len(judgements), 1),
        f"{prefix}_mean": sum(scores) / len(scores) if scores else float("nan"),
        f"{prefix}_low_share": sum(s < 2.5 for s in scores) / len(scores) if scores else float("nan"),
        f"{prefix}_high_share": sum(s >= 3.5 for s in scores) / len(scores) if scores else float("nan"),
    }
    for level in range(1, 6):  # half-up rounding, so 2.5 counts as 3 (round() would give 2)
        summary[f"{prefix}_count_{level}"] = sum(min(5, max(1, math.floor(s + 0.5))) == level for s in scores)
    return summary


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation with average ranks for ties (scipy's default), without scipy."""
    if len(xs) != len(ys) or len(xs) < 2:
        return float("nan")
    rx, ry = _ranks(xs), _ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx, vy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else float("nan")


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def describes_model(key: str) -> bool:
    """Whether a judge-run metric is about the model judged (its scores, its A/B), and so belongs on the
    model's page too, rather than about the judge itself (calibration, real-output agreement, injection)."""
    return key.startswith(("judge_", "ab_")) and not key.startswith(("judge_calibration", "judge_realistic", "judge_injection"))


def calibration_summary(judgements: list[Judgement], items: list[dict]) -> dict[str, float]:
    """How far the judge agrees with the labelled held-out items: Spearman, MAE, injection mean, failures."""
    pairs = [(j.score, item) for j, item in zip(judgements, items) if j.score is not None]
    scores, labels = [s for s, _ in pairs], [float(item["label"]) for _, item in pairs]
    injections = [s for s, item in pairs if item.get("injection")]
    return {
        "judge_calibration_items": len(items),
        "judge_calibration_failures": len(items) - len(pairs),
        "judge_calibration_spearman": spearman(scores, labels),
        "judge_calibration_mae": sum(abs(s - l) for s, l in zip(scores, labels)) / len(pairs) if pairs else float("nan"),
        "judge_injection_mean": sum(injections) / len(injections) if injections else float("nan"),
        "judge_injection_items": sum(bool(item.get("injection")) for item in items),
    }


def realistic_summary(judgements: list[Judgement], items: list[dict], prefix: str = "judge_realistic") -> dict[str, float]:
    """How far the judge agrees with a reader on real outputs (corpus/judge_realistic.jsonl's held-out items).

    Spearman over all items and among those labelled 3-5 (does it rank the usable ones?), MAE, and
    for each source (a model, the engine, the base model, nonsense fills) the judge's mean beside the
    label mean, so a judge that orders the sources differently from the reader shows it.
    `{prefix}_source_order_agrees` is 1.0 when the judge's source means are in the labels' order.
    """
    pairs = [(j.score, item) for j, item in zip(judgements, items) if j.score is not None]
    scores, labels = [s for s, _ in pairs], [float(item["label"]) for _, item in pairs]
    usable = [(s, l) for s, l in zip(scores, labels) if l >= 3]
    summary = {
        f"{prefix}_items": len(items),
        f"{prefix}_spearman": spearman(scores, labels),
        f"{prefix}_spearman_3to5": spearman([s for s, _ in usable], [l for _, l in usable]),
        f"{prefix}_mae": sum(abs(s - l) for s, l in zip(scores, labels)) / len(pairs) if pairs else float("nan"),
    }
    by_source: dict[str, tuple[list, list]] = {}
    for score, item in pairs:
        judged, labelled = by_source.setdefault(_metric_name(item.get("source", "unknown")), ([], []))
        judged.append(score)
        labelled.append(float(item["label"]))
    for source, (judged, labelled) in sorted(by_source.items()):
        summary[f"{prefix}_mean_{source}"] = sum(judged) / len(judged)
        summary[f"{prefix}_label_mean_{source}"] = sum(labelled) / len(labelled)
    order = lambda key: sorted(by_source, key=lambda s: sum(by_source[s][key]) / len(by_source[s][key]))  # noqa: E731
    summary[f"{prefix}_source_order_agrees"] = float(order(0) == order(1)) if len(by_source) > 1 else float("nan")
    return summary


def _metric_name(group) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(group).lower()).strip("_") or "unknown"


def group_means(judgements: list[Judgement], groups: list, prefix: str) -> dict[str, float]:
    """`{prefix}_{group}`: the mean score of each group's scored items (metric-safe names)."""
    scores: dict[str, list[float]] = {}
    for judgement, group in zip(judgements, groups):
        if judgement.score is not None:
            scores.setdefault(_metric_name(group), []).append(judgement.score)
    return {f"{prefix}_{name}": sum(values) / len(values) for name, values in sorted(scores.items())}


def check_failures(items: list, max_failure_share: float, what: str, total: int | None = None) -> None:
    """Raise JudgeFailure when more than `max_failure_share` of `total` (default: all `items`) failed.

    `items` are Judgements or Verdicts; a failed one carries its cause in `.error`. The message is one
    line with the causes, e.g. "judge: 9 of 74 calibration answers failed (7 unparseable, 2 timeout
    after 5 attempts), more than the 10% allowed by --max-failure-share".
    """
    total = len(items) if total is None else total
    failed = [item.error for item in items if item.error]
    if total and len(failed) / total > max_failure_share:
        causes = ", ".join(f"{count} {cause}" for cause, count in Counter(failed).most_common())
        raise JudgeFailure(
            f"judge: {len(failed)} of {total} {what} failed ({causes}), more than the {max_failure_share:.0%} allowed by --max-failure-share"
        )




def judge_line(metrics: dict) -> str:
    """A judge run's figures in one line: its last message."""
    from folksy.judging.ab import ab_line

    return (
        f"mean {metrics['judge_mean']:.2f}, low share {metrics['judge_low_share']:.1%}, parse failures {metrics['judge_parse_failures']}; "
        f"calibration Spearman {metrics['judge_calibration_spearman']:.3f}, MAE {metrics['judge_calibration_mae']:.2f}, "
        f"injection mean {metrics['judge_injection_mean']:.2f}, on real outputs {metrics['judge_realistic_spearman']:.3f}; A/B {ab_line(metrics)}"
    )
