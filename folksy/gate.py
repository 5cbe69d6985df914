"""The promotion gate: may this model version take the `production` alias? Pure: no MLflow.

A version is promoted only when the judge liked its sayings AND the judge proved trustworthy in the
same run: on the labelled calibration items, and on real outputs read blind (corpus/judge_realistic.jsonl),
where it must rank sayings as a reader does. So a weak judge can never promote a model.

Besides the absolute thresholds the gate compares: in the judge run's swap-consistent A/B the candidate
must win at least as often as it loses against the template engine, and against the version that holds
`production` now. The original spec's 80% win rate against the engine is reported as a target
(`targets`), not gated on, until a model reaches it.
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


AB_ENGINE_TARGET = 0.8  # the original spec: the model wins more than 80% of A/B comparisons against the engine


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
            return ("passed: judge_mean, low-score share and the judge's calibration on labelled and real outputs all within thresholds; "
                    "wins at least as often as it loses against the engine and the production version")
        text = "failed: " + "; ".join(self.failures)
        return f"forced despite gate ({text})" if self.forced else text


def _value(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def decide(metrics: dict, thresholds: GateThresholds = GateThresholds(), force: bool = False, production_version: int | None = None) -> GateDecision:
    """Check the judge metrics against the thresholds and the A/B comparisons. A missing or NaN metric fails
    its check. `production_version` is the version holding `production` now (None: no version does); the
    judge run must have compared the candidate against that very version (`ab_champion_version`)."""
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
    failures += _compare(metrics, "engine", "the template engine")
    if production_version is not None:
        judged = _value(metrics, "ab_champion_version")
        if judged is None or int(judged) != production_version:
            against = f"version {int(judged)}" if judged else "no production version"
            failures.append(f"the judge run compared against {against}, but version {production_version} holds production now; judge again")
        elif not _value(metrics, "ab_champion_is_candidate"):  # the production version itself has nothing to beat
            failures += _compare(metrics, "champion", f"production version {production_version}")
    return GateDecision(passed=not failures, forced=force, failures=failures)


def _compare(metrics: dict, opponent: str, who: str) -> list[str]:
    wins, losses = _value(metrics, f"ab_{opponent}_win_rate"), _value(metrics, f"ab_{opponent}_loss_rate")
    if wins is None or losses is None:
        return [f"ab_{opponent}_win_rate/loss_rate missing"]
    return [] if wins >= losses else [f"A/B against {who}: wins {wins:.2f} < losses {losses:.2f}"]


def targets(metrics: dict) -> dict[str, bool | None]:
    """The original spec's targets that the gate reports but does not (yet) enforce: None when not measured."""
    wins = _value(metrics, "ab_engine_win_rate")
    return {f"ab_engine_win_rate > {AB_ENGINE_TARGET:g}": None if wins is None else wins > AB_ENGINE_TARGET}
