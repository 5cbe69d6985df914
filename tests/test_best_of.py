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


def first_word(saying):
    return saying.split()[0]


def test_with_a_shape_each_kind_of_saying_comes_before_a_second_of_a_kind_already_kept():
    candidates = [["one day aaaaaa", "one day bbbbb", "fella cccc", "folks dd", "folks eeeeeeee"]]
    assert pick_best(candidates, by_length, keep=3) == [["one day aaaaaa", "folks eeeeeeee", "one day bbbbb"]]
    assert pick_best(candidates, by_length, keep=3, shape=first_word) == [["one day aaaaaa", "folks eeeeeeee", "fella cccc"]]
    # once every shape is kept, the rest follow by score; one saying asked for is the best, shape or not
    assert pick_best(candidates, by_length, keep=4, shape=first_word)[0][3] == "one day bbbbb"
    assert pick_best(candidates, by_length, keep=1, shape=first_word) == [["one day aaaaaa"]]


def test_saying_shape_names_the_engine_pattern_else_the_opening_words():
    from folksy.best_of import saying_shape
    from folksy.corpus.engine import respond

    one_day = ["The one day you need rain to be wet is the one day it ain't.", "The one day you need a ladder to be tall is the one day it ain't!"]
    assert saying_shape(one_day[0]) == saying_shape(one_day[1]) == "ironic_deficiency[10]"
    assert saying_shape("A goat in a hat is still a goat.") == saying_shape("A GOAT in a barn ain't a horse") == "a goat in"
    assert saying_shape(respond("Tell me a saying about a mule.", seed=3)).count("[") == 1  # the engine's own parse


def test_served_picks_are_one_of_each_kind_before_a_second_of_a_kind():
    """sample_and_pick is what predict, judge and `folksy generate` serve. The generator here is a stand-in
    that returns fixed samples: which samples a model draws is not what this test is about."""
    from folksy.best_of import sample_and_pick

    class Samples:
        def generate(self, prompts, num_return_sequences, progress=False, **sampling):
            one_day = [f"The one day you need {w} to be handy is the one day it ain't." for w in ("a hammer", "a ladder", "a shovel")]
            return [(one_day + ["A goat in a hat is still a goat, friend."])[:num_return_sequences] for _ in prompts]

    class LongerIsBetter:
        def raw(self, sayings):
            return np.array([len(s) for s in sayings], dtype=float)

    picks = sample_and_pick(Samples(), LongerIsBetter(), ["rain"], keep=2, best_of=2)
    assert picks[0][1] == "A goat in a hat is still a goat, friend."
