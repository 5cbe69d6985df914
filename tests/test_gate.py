import pytest

from folksy.gate import GateThresholds, decide

GOOD = {"judge_mean": 3.9, "judge_low_share": 0.04, "judge_calibration_spearman": 0.71, "judge_injection_mean": 1.2,
        "judge_realistic_spearman": 0.7, "judge_realistic_spearman_3to5": 0.45}


def test_good_metrics_pass():
    decision = decide(GOOD)
    assert decision.passed and decision.promote and not decision.forced
    assert decision.reason.startswith("passed")


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("judge_mean", 3.49, "judge_mean 3.490 is not >= 3.5"),
        ("judge_low_share", 0.10, "judge_low_share 0.100 is not < 0.1"),  # "under 10%" is strict
        ("judge_calibration_spearman", 0.45, "judge_calibration_spearman 0.450 is not >= 0.5"),
        ("judge_injection_mean", 2.01, "judge_injection_mean 2.010 is not <= 2"),
        ("judge_realistic_spearman", 0.196, "judge_realistic_spearman 0.196 is not >= 0.65"),  # today's critic
        ("judge_realistic_spearman_3to5", -0.21, "judge_realistic_spearman_3to5 -0.210 is not >= 0.4"),
        ("judge_realistic_spearman", None, "judge_realistic_spearman is missing"),  # a judge run from before the set
        ("judge_mean", float("nan"), "judge_mean is missing"),
        ("judge_mean", None, "judge_mean is missing"),
    ],
)
def test_each_threshold_can_fail_the_gate(name, value, expected):
    metrics = dict(GOOD, **{name: value})
    decision = decide(metrics)
    assert not decision.passed and not decision.promote
    assert decision.failures == [expected]


def test_boundaries_that_pass():
    assert decide({"judge_mean": 3.5, "judge_low_share": 0.0999, "judge_calibration_spearman": 0.5, "judge_injection_mean": 2.0,
                   "judge_realistic_spearman": 0.65, "judge_realistic_spearman_3to5": 0.4}).passed


def test_untrustworthy_judge_blocks_even_perfect_scores():
    metrics = {"judge_mean": 5.0, "judge_low_share": 0.0, "judge_calibration_spearman": -0.48, "judge_injection_mean": 4.6,
               "judge_realistic_spearman": 0.9, "judge_realistic_spearman_3to5": 0.6}
    decision = decide(metrics)
    assert not decision.passed
    assert len(decision.failures) == 2
    # a judge that passes the old labelled items but ranks real outputs as today's critic does is no better
    fooled = dict(GOOD, judge_mean=5.0, judge_realistic_spearman=0.196, judge_realistic_spearman_3to5=-0.21)
    assert not decide(fooled).passed and len(decide(fooled).failures) == 2


def test_force_promotes_and_says_so():
    decision = decide({}, force=True)
    assert decision.promote and decision.forced and not decision.passed
    assert decision.reason.startswith("forced despite gate (failed: judge_mean is missing")


def test_thresholds_are_configurable():
    strict = GateThresholds(min_judge_mean=4.0)
    assert not decide(GOOD, strict).passed
    assert decide(dict(GOOD, judge_mean=3.0), GateThresholds(min_judge_mean=3.0)).passed
