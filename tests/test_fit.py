"""Pattern fit (folksy.judging.fit): the engine's own sayings fit, folksy-sounding nonsense does not."""

import random

import pytest

from folksy.corpus import engine
from folksy.corpus.templates import PATTERNS
from folksy.judging.critic_data import mismatched_fill
from folksy.judging.fit import fit_features, parse


def test_the_engines_own_sayings_parse_and_pass_every_check():
    rng = random.Random(7)
    sayings = [s.text for family in PATTERNS for s in (engine.compose(family, rng) for _ in range(40)) if s is not None]
    parsed = [parse(text) for text in sayings]
    assert len(sayings) >= 250
    assert all(p is not None for p in parsed), [t for t, p in zip(sayings, parsed) if p is None][:3]
    clean = sum(p["failed"] == 0 and p["passed"] >= 1 for p in parsed)
    # two naming slots side by side ("callin' a sweet potato a gravy boat") can split at the wrong word
    assert clean >= 0.97 * len(sayings), [t for t, p in zip(sayings, parsed) if p["failed"]][:5]


def test_folksy_sounding_nonsense_fails_a_check():
    # a few mismatched fills happen to read right ("loud thunder today is loud thunder tomorrow")
    rng = random.Random(3)
    texts = [mismatched_fill(rng) for _ in range(100)]
    failed = [fit_features(t)["fit_failed"] > 0 for t in texts]
    assert sum(failed) >= 90, [t for t, f in zip(texts, failed) if not f][:5]


@pytest.mark.parametrize(
    "text, pattern, words, failed",
    [
        # the judge issue's examples: a rooster is no part of a ladder, "mend a fence" is not a kettle's use
        ("A ladder's just rungs and a rooster that ain't had a fallin' out yet.", "deconstruction[5]", {"x": "ladder"}, 1),
        ("A kettle can help the whole county mend a fence and still can't do a thing for itself.", "ironic_deficiency[8]", {"x": "kettle"}, 1),
        ("A kettle can help the whole county boil water and still can't do a thing for itself.", "ironic_deficiency[8]", {"x": "kettle"}, 0),
        # two naming slots side by side split between the words, not after the first article
        ("Callin' a mule a goat don't change a thing but the conversation.", "false_equivalence[13]", {"x": "mule", "y": "goat"}, 0),
        # the property is read off x: a mule is stubborn, a goat hungry, so "same_prop" is the check that fails
        ("That's a mule callin' a goat stubborn.", "hypocritical_complaint[0]", {"x": "mule", "y": "goat"}, 1),
        ("Don't go callin' a mule a donkey just 'cause they're both stubborn.", "false_equivalence[2]", {"x": "mule", "y": "donkey"}, 0),
        ("A mule ain't nothin' but long ears, four hooves and a pack saddle that decided to get along.", "deconstruction[0]", {"x": "mule"}, 0),
    ],
)
def test_a_saying_is_parsed_onto_its_pattern_and_checked(text, pattern, words, failed):
    parsed = parse(text)
    assert parsed is not None
    assert (parsed["pattern"], parsed["words"], parsed["failed"]) == (pattern, words, failed)


def test_a_saying_in_no_pattern_is_neutral():
    assert parse("A stitch in time saves nine.") is None
    assert fit_features("A stitch in time saves nine.") == {"fit_parsed": 0.0, "fit_passed": 0.0, "fit_failed": 0.0, "fit_share": 0.5}
    assert fit_features("Callin' a mule a goat don't change a thing but the conversation.")["fit_share"] == 1.0
