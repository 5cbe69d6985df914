"""Every metric on examples small enough to work out by hand (the arithmetic is in the comments)."""

import math
import random

import numpy as np
import pytest

from folksy.evaluation.metrics import (
    adheres,
    corpus_bleu,
    distinct_n,
    exact_copy_share,
    families_present,
    family_entropy,
    family_shares,
    near_copy_share,
    near_duplicate_share,
    nearest_similarities,
    ngram_novelty,
    perplexity,
    prompt_adherence,
    rouge,
    self_bleu,
    system_metrics,
    words,
)


def naive_plural(word: str) -> str:
    return word + "s"


def test_words_lowercase_and_keep_inner_apostrophes():
    assert words("Don't  count thinkin' CHICKENS!") == ["don't", "count", "thinkin", "chickens"]
    assert words("Ain\u2019t no mule") == ["ain't", "no", "mule"]


def test_distinct_n_pools_all_texts():
    texts = ["The cat sat.", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 unique of 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 3 unique of 4
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert math.isnan(distinct_n(["one"], 2))


def test_self_bleu_hand_computed():
    # "a b c d" against "a b c e": matches 3/4, 2/3, 1/2 and 0/1 n-grams; exp smoothing turns the
    # zero 4-gram precision into 100 / (2 * 1) = 50, so BLEU = (75 * 66.67 * 50 * 50) ** 0.25 = 59.46;
    # the pair is symmetric, so the mean is the same.
    assert self_bleu(["a b c d", "a b c e"]) == pytest.approx((75 * 200 / 3 * 50 * 50) ** 0.25)
    # two identical texts score 100 against each other, "x y" shares nothing: (100 + 100 + 0) / 3
    assert self_bleu(["a b c d", "a b c d", "x y"]) == pytest.approx(200 / 3)
    assert math.isnan(self_bleu(["alone"]))


def test_self_bleu_equals_sacrebleu_leave_one_out():
    from sacrebleu import sentence_bleu

    rng = random.Random(7)
    vocab = "a cat dog ran the mud rain fell on hat".split()
    for _ in range(60):
        texts = [
            " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9))) + rng.choice(["", ".", "?"])
            for _ in range(rng.randint(2, 7))
        ]
        expected = sum(sentence_bleu(t, texts[:i] + texts[i + 1 :]).score for i, t in enumerate(texts)) / len(texts)
        assert self_bleu(texts) == pytest.approx(expected, abs=1e-9)


def test_corpus_bleu_names_its_tokenizer_and_uses_every_reference():
    score, signature = corpus_bleu(["a b c d"], [["a b c e"]])
    assert score == pytest.approx((75 * 200 / 3 * 50 * 50) ** 0.25)  # as in the self-BLEU example
    assert "tok:13a" in signature
    # with a second reference "x b c d": all 1-, 2- and 3-grams match, the 4-gram still doesn't
    two_refs, _ = corpus_bleu(["a b c d"], [["a b c e", "x b c d"]])
    assert two_refs == pytest.approx((100 * 100 * 100 * 50) ** 0.25)
    # prompts with different numbers of references mix in one corpus
    mixed, _ = corpus_bleu(["a b c d", "e f g h"], [["a b c d", "z z z z"], ["e f g h"]])
    assert mixed == pytest.approx(100)
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])


def test_rouge_uses_the_stemmer_and_the_best_reference():
    # hyp [the cat sat] vs ref [the cat sat down] once "cats" is stemmed:
    # ROUGE-1 P=3/3 R=3/4 F=6/7; ROUGE-2 P=2/2 R=2/3 F=4/5; ROUGE-L LCS=3, same as ROUGE-1
    scores = rouge(["The cats sat."], [["the cat sat down", "nothing in common"]])
    assert scores == pytest.approx({"rouge1": 600 / 7, "rouge2": 80.0, "rougeL": 600 / 7})
    # the mean is over hypotheses: a second, disjoint pair adds zeros
    assert rouge(["The cats sat.", "zzz"], [["the cat sat down"], ["yyy"]])["rouge2"] == pytest.approx(40.0)


def test_nearest_similarities():
    queries = np.array([[1, 0], [0, 1]], dtype=np.float32)
    corpus = np.array([[0.6, 0.8], [1, 0]], dtype=np.float32)
    assert nearest_similarities(queries, corpus) == pytest.approx([1.0, 0.8])
    same = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    # each row's own similarity (1.0) is ignored: row 0 -> max(0.6, 0), row 1 -> max(0.6, 0.8), row 2 -> max(0, 0.8)
    assert nearest_similarities(same, same, exclude_self=True, chunk=2) == pytest.approx([0.6, 0.8, 0.8])


def test_near_copy_and_near_duplicate_shares():
    generations = np.array([[1, 0], [0, 1], [0.8, 0.6]], dtype=np.float32)
    training = np.array([[1, 0]], dtype=np.float32)
    # nearest training similarities 1.0, 0.0, 0.8: one of three is >= 0.9
    assert near_copy_share(generations, training) == pytest.approx(1 / 3)
    assert near_copy_share(generations, training, threshold=0.75) == pytest.approx(2 / 3)
    # generations 0 and 1 are the same saying; 2 is unlike both
    twins = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert near_duplicate_share(twins) == pytest.approx(2 / 3)
    assert near_duplicate_share(generations) == pytest.approx(0.0)  # best other similarity 0.8, 0.6, 0.8


def test_exact_copy_share_ignores_case_spacing_and_punctuation():
    training = ["Mud is just dirt that got ambitious."]
    generations = ["Mud is just dirt that got AMBITIOUS!", "Mud is dirt.", "  mud is just  dirt that got ambitious"]
    assert exact_copy_share(generations, training) == pytest.approx(2 / 3)


def test_ngram_novelty_counts_repeats():
    training = ["The cat sat."]
    # bigrams of the generations: (the cat) seen, (cat ran) new, (a cat) new, (cat sat) seen -> 2 / 4
    assert ngram_novelty(["the cat ran", "a cat sat"], training, n=2) == pytest.approx(0.5)
    # 4-grams (the default): [a b c d] and [b c d e] of "a b c d e"; only the first is in training
    assert ngram_novelty(["a b c d e"], ["a b c d"]) == pytest.approx(0.5)
    assert math.isnan(ngram_novelty(["too short"], training))


def test_prompt_adherence_takes_word_or_plural_as_whole_words():
    generations = ["Cats never lie.", "A dog is a dog.", "Catsup is red.", "Cat got your tongue?"]
    seeds = [["cat"], ["cat"], ["cat"], ["cat"]]
    # "Cats" (plural) and "Cat" count; "Catsup" is another word
    assert prompt_adherence(generations, seeds, naive_plural) == pytest.approx(2 / 4)
    assert adheres("Two ice creams melt faster than one.", ["ice cream"], naive_plural)
    assert adheres("The parade's gonna be loud regardless.", ["parade"], naive_plural)
    assert adheres("Never trust the cats' opinion.", ["cat"], naive_plural)
    assert not adheres("Ice is cream's cousin.", ["ice cream"], naive_plural)
    assert adheres("A cat and no dog.", ["cat", "dog"], naive_plural)  # every seed must appear...
    assert not adheres("A cat and no mouse.", ["cat", "dog"], naive_plural)  # ...so one missing fails
    assert math.isnan(prompt_adherence([], [], naive_plural))


def test_family_shares_presence_and_entropy():
    shares = family_shares(["a", "a", "b", "unclassified"], ["a", "b", "c"])
    assert shares == {"a": 0.5, "b": 0.25, "c": 0.0}  # "unclassified" counts in the denominator only
    assert families_present(shares) == 2
    assert families_present({"a": 0.995, "b": 0.005}) == 1  # below 1% is noise, not coverage
    # renormalised p = (2/3, 1/3): H = 0.636514, divided by ln 3 = 1.098612
    assert family_entropy(shares) == pytest.approx(0.636514 / 1.098612, abs=1e-6)
    assert family_entropy({"a": 0.5, "b": 0.5}) == pytest.approx(1.0)
    assert family_entropy({"a": 1.0, "b": 0.0}) == pytest.approx(0.0)


def test_perplexity_from_summed_nll():
    assert perplexity(6.0, 3) == pytest.approx(math.e**2)  # mean nll 2 nats per token
    assert math.isnan(perplexity(0.0, 0))


def test_system_metrics_compare_on_shared_prompts_and_share_over_all():
    generations = ["The cat sat on the mat.", "The cat sat on the mat.", "A dog ran far away today."]
    scores, nearest = system_metrics(
        generations,
        np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32),
        ["f1", "f1", "unclassified"],
        families=["f1", "f2"],
        training_sayings=["The cat sat on the mat."],
        training_embeddings=np.array([[1, 0]], dtype=np.float32),
        references=[["The cat sat on the mat."], [], ["A dog ran far away today."]],
        seed_words=[["cat"], None, ["cow"]],
        plural=naive_plural,
        shared=[0, 1],
    )
    assert list(nearest) == pytest.approx([1.0, 1.0, 0.0])
    expected = {
        "generations": 3,
        "mean_words": 6.0,
        "empty_share": 0.0,
        # set-level metrics see only the shared prompts 0 and 1, the same saying twice
        "distinct_1": 5 / 12,
        "distinct_2": 5 / 10,
        "self_bleu": 100.0,
        "near_duplicate_share": 1.0,
        # BLEU/ROUGE: test prompts among the shared ones, i.e. prompt 0 only, a perfect match
        "bleu": 100.0,
        "rouge1": 100.0,
        "rouge2": 100.0,
        "rougeL": 100.0,
        # per-generation shares see all three
        "near_copy_share": 2 / 3,
        "nn_similarity_mean": 2 / 3,
        "exact_copy_share": 2 / 3,
        "ngram_novelty_4": 3 / 9,  # only the dog saying's three 4-grams are new
        "prompt_adherence": 1 / 2,  # the cat saying names its cat, the dog saying no cow
        "family_share/f1": 2 / 3,
        "family_share/f2": 0.0,
        "unclassified_share": 1 / 3,
        "families_present": 1,
        "family_entropy": 0.0,
    }
    assert scores == pytest.approx(expected)
