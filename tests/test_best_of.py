"""folksy.best_of: keeping the sayings a scorer rates highest, and the critic as that scorer."""

import numpy as np
import pytest

from folksy.best_of import critic_scores, pick_best


def by_length(sayings):
    return [len(s) for s in sayings]


def test_each_prompt_keeps_its_highest_scored_saying():
    candidates = [["ab", "abcd", "abc"], ["x", "xyz"]]
    assert pick_best(candidates, by_length) == [["abcd"], ["xyz"]]


def test_keep_returns_distinct_sayings_best_first_and_repeats_only_when_short():
    assert pick_best([["aa", "bbbb", "bbbb", "ccc"]], by_length, keep=3) == [["bbbb", "ccc", "aa"]]
    assert pick_best([["bbbb", "bbbb", "a"]], by_length, keep=3) == [["bbbb", "a", "bbbb"]]


def test_ties_go_to_the_earlier_sample_so_best_of_one_is_plain_sampling():
    assert pick_best([["one", "two", "six"]], by_length) == [["one"]]
    assert pick_best([["z"], ["y"]], lambda sayings: [0.0] * len(sayings)) == [["z"], ["y"]]


def test_all_candidates_are_scored_in_one_call():
    calls = []

    def score(sayings):
        calls.append(list(sayings))
        return by_length(sayings)

    pick_best([["a", "bb"], ["ccc"], ["dd", "e"]], score)
    assert calls == [["a", "bb", "ccc", "dd", "e"]]


def test_a_scorer_that_loses_sayings_is_refused():
    with pytest.raises(ValueError, match="score returned 1 numbers for 2 sayings"):
        pick_best([["a", "b"]], lambda sayings: [1.0])


def test_the_critic_scorer_orders_by_the_raw_score_that_calibration_would_tie():
    class Critic:  # two sayings the isotonic map puts on one flat step, told apart by the raw score
        def raw(self, sayings):
            return np.array([3.1 if s == "better" else 3.0 for s in sayings])

        def calibrate(self, raw):
            return np.full_like(raw, 3.0)

    assert pick_best([["worse", "better"]], critic_scores(Critic())) == [["better"]]
