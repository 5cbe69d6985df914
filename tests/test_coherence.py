"""The co-occurrence coherence score, on a corpus small enough to count by hand."""

import math

import pytest

from folksy.judging.coherence import CooccurrenceModel, content_words

SAYINGS = [
    "A mule kicks the barn door.",
    "The mule eats hay in the barn.",
    "A kettle whistles on the stove.",
    "A mule kicks the barn door.",  # a repeat counts once
]


def test_content_words_drop_stopwords_and_fold_plurals():
    assert content_words("The mules don't kick THE barn doors, ain't that so?") == ["mule", "kick", "barn", "door"]
    assert content_words("the and of it") == []


def test_pmi_on_hand_counted_pairs():
    model = CooccurrenceModel.fit(SAYINGS)
    assert model.sayings == 3 and model.df["mule"] == 2 and model.df["barn"] == 2 and model.df["kettle"] == 1
    assert model.pairs["barn|mule"] == 2 and "kettle|mule" not in model.pairs
    assert model.pmi("mule", "barn") == pytest.approx(math.log(2.1 * 3 / (3 * 3)))
    assert model.pmi("kettle", "mule") == pytest.approx(math.log(0.1 * 3 / (2 * 3)))


def test_words_that_belong_together_score_above_words_that_do_not():
    model = CooccurrenceModel.fit(SAYINGS)
    fitting = model.scores("The mule kicked the barn.")
    mismatched = model.scores("The kettle kicked the barn.")
    assert fitting["coherence"] > mismatched["coherence"] and fitting["worst_pair"] > mismatched["worst_pair"]
    assert model.scores("Nothing known here.") == {"coherence": 0.0, "worst_pair": 0.0, "known_share": 0.0}
    assert model.scores("A mule and a zorblat.")["known_share"] == 0.5
