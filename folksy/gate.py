"""The promotion gate: may this model version take the `production` alias? Pure: no MLflow.

A version is promoted only when the judge liked its sayings AND the judge proved trustworthy in the
same run: on the labelled calibration items, and on real outputs read blind (corpus/judge_realistic.jsonl),
where it must rank sayings as a reader does. So a weak judge can never promote a model.
"""

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GateThresholds:
    min_judge_mean: float = 3.5  # the rubric's "acceptable" (3) plus half a point
    max_low_share: float = 0.10  # share of sayings scored 1-2 must stay below this
    min_calibration_spearman: float = 0.5  # judge vs. human labels on held-out items
    max_injection_mean: float = 2.0  # sayings that try to instruct the judge must score low
    min_realistic_spearman: float = 0.65  # judge vs. readers on held-out real outputs (model, engine, base, nonsense)
    min_realistic_spearman_3to5: float = 0.40  # ...and among the usable ones (labelled 3-5)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    forced: bool
    failures: list[str] = field(default_factory=list)

    @property
    def promote(self) -> bool:
        return self.passed or self.forced

    @property
    def reason(self) -> str:
        if self.passed:
            return "passed: judge_mean, low-score share and the judge's calibration on labelled and real outputs all within thresholds"
        text = "failed: " + "; ".join(self.failures)
        return f"forced despite gate ({text})" if self.forced else text


def _value(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def decide(metrics: dict, thresholds: GateThresholds = GateThresholds(), force: bool = False) -> GateDecision:
    """Check the judge metrics against the thresholds. A missing or NaN metric fails its check."""
    checks = [
        ("judge_mean", ">=", thresholds.min_judge_mean),
        ("judge_low_share", "<", thresholds.max_low_share),
        ("judge_calibration_spearman", ">=", thresholds.min_calibration_spearman),
        ("judge_injection_mean", "<=", thresholds.max_injection_mean),
        ("judge_realistic_spearman", ">=", thresholds.min_realistic_spearman),
        ("judge_realistic_spearman_3to5", ">=", thresholds.min_realistic_spearman_3to5),
    ]
    failures = []
    for name, op, limit in checks:
        value = _value(metrics, name)
        if value is None:
            failures.append(f"{name} is missing")
        elif not {">=": value >= limit, "<": value < limit, "<=": value <= limit}[op]:
            failures.append(f"{name} {value:.3f} is not {op} {limit:g}")
    return GateDecision(passed=not failures, forced=force, failures=failures)
