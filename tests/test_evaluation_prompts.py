import json
import random

import numpy as np
import pytest

from folksy.chat import to_prompt_completion
from folksy.data import read_split
from folksy.evaluation.families import classifier_report, fit_family_classifier, predict_families, UNCLASSIFIED
from folksy.evaluation.prompts import corpus_prompt, EvalPrompt, evaluation_prompts, full_cycle, generated_prompts, prompts_from_split, shared_positions
from folksy.errors import FolksyError

INPUT_TYPES = ["word_seeded", "category_seeded", "persona_seeded", "template_seeded", "open_ended"]
FAMILIES = ["f1", "f2", "f3", "f4", "f5", "f6", "f7"]


def split_row(prompt, output, family="f1", input_type="word_seeded", words=("mule", "goat")):
    return to_prompt_completion(
        {"input": prompt, "output": output, "meta_template": family, "input_type": input_type, "source_words": list(words)}
    )


def fake_prompt(input_type, family, rng):
    return f"{input_type}:{family}:{rng.randint(0, 9)}", ["mule"] if input_type == "word_seeded" else []


def test_read_split_names_the_bad_line(tmp_path):
    path = tmp_path / "test.jsonl"
    good = json.dumps(split_row("Tell me about mules.", "A mule is a mule."))
    path.write_text(good + "\n\n" + good + "\n{oops\n")
    with pytest.raises(FolksyError, match=r"test.jsonl:4: invalid JSON"):
        read_split(path)
    path.write_text(good + "\n" + json.dumps({"prompt": []}) + "\n")
    with pytest.raises(FolksyError, match=r"test.jsonl:2: not a prepare split row \(missing completion"):
        read_split(path)
    path.write_text("\n")
    with pytest.raises(FolksyError, match="empty"):
        read_split(path)


def test_split_prompts_group_references_and_find_the_seeded_word():
    rows = [
        split_row("Tell me something about mules.", "Saying one.", words=("goat", "mule")),
        split_row("Tell me a proverb.", "Saying two.", "f2", "open_ended"),
        split_row("Tell me something about mules.", "Saying three.", words=("mule", "barn")),
        split_row("Tell me a proverb.", "Saying four.", "f3", "open_ended"),
    ]
    prompts = prompts_from_split(rows, plural=lambda word: word + "s")
    assert [p.prompt for p in prompts] == ["Tell me something about mules.", "Tell me a proverb."]
    assert prompts[0].references == ["Saying one.", "Saying three."]
    # the prompt asks for "mule" (as "mules"), not for the saying's other word "goat"
    assert prompts[0].seed_words == ["mule"]
    assert prompts[1].seed_words == [] and prompts[1].family == "f2" and prompts[1].origin == "test"


def test_generated_prompts_take_turns_and_name_every_family():
    prompts = generated_prompts(full_cycle(INPUT_TYPES, FAMILIES), INPUT_TYPES, FAMILIES, fake_prompt, seed=1)
    assert len(prompts) == 35
    assert [p.input_type for p in prompts[:6]] == INPUT_TYPES + ["word_seeded"]
    template = [p for p in prompts if p.input_type == "template_seeded"]
    assert [p.family for p in template] == FAMILIES
    assert all(p.family is None for p in prompts if p.input_type != "template_seeded")
    assert all(p.origin == "generated" for p in prompts)
    assert prompts == generated_prompts(35, INPUT_TYPES, FAMILIES, fake_prompt, seed=1)  # seeded


def test_corpus_prompts_read_like_the_corpus():
    from folksy.corpus.engine import FAMILIES as CORPUS_FAMILIES
    from folksy.corpus.engine import FAMILY_DESCRIPTIONS, detect_input_type
    from folksy.corpus.prompts import INPUT_TYPES as CORPUS_TYPES

    rng = random.Random(3)
    for input_type in CORPUS_TYPES:
        for family in CORPUS_FAMILIES:
            prompt, seeds = corpus_prompt(input_type, family if input_type == "template_seeded" else None, rng)
            assert detect_input_type(prompt) == input_type, prompt
            if input_type == "template_seeded":
                assert FAMILY_DESCRIPTIONS[family] in prompt
            assert bool(seeds) == (input_type == "word_seeded")
    with pytest.raises(FolksyError, match="unknown input type"):
        corpus_prompt("limerick", None, rng)


def test_evaluation_prompts_keep_one_full_cycle():
    rows = [split_row(f"Tell me something about thing{i}s.", f"Saying {i}.", words=(f"thing{i}",)) for i in range(50)]
    prompts = evaluation_prompts(rows, 40, INPUT_TYPES, FAMILIES, fake_prompt, lambda w: w + "s", seed=0)
    # 40 prompts, 35 of them the generated cycle, so only 5 test prompts fit
    assert [p.origin for p in prompts] == ["test"] * 5 + ["generated"] * 35
    prompts = evaluation_prompts(rows[:3], 40, INPUT_TYPES, FAMILIES, fake_prompt, lambda w: w + "s", seed=0)
    assert [p.origin for p in prompts] == ["test"] * 3 + ["generated"] * 37
    with pytest.raises(FolksyError, match="--num-prompts must be at least 35"):
        evaluation_prompts(rows, 34, INPUT_TYPES, FAMILIES, fake_prompt, lambda w: w + "s", seed=0)


def test_shared_positions_keep_a_cycle_then_fill_with_test_prompts():
    prompts = [EvalPrompt(f"t{i}", "open_ended", "test") for i in range(4)]
    prompts += [EvalPrompt(f"g{i}", "open_ended", "generated") for i in range(6)]
    # size 5, cycle 3: three generated prompts (positions 4-6), then two test prompts (0, 1)
    assert shared_positions(prompts, 5, cycle=3) == [0, 1, 4, 5, 6]
    # few test prompts: generated ones fill the rest
    assert shared_positions(prompts, 8, cycle=3) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert shared_positions(prompts, 2, cycle=3) == [4, 5]
    assert shared_positions(prompts, 99, cycle=3) == list(range(10))


def around(degrees, spread=0.3, count=7):
    angles = np.radians(degrees) + np.linspace(-spread, spread, count)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def point(degrees):
    return [np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]


def test_family_classifier_abstains_when_unsure():
    # three families of unit vectors, 120 degrees apart; the origin is equally far from all three
    classifier = fit_family_classifier(np.vstack([around(90), around(210), around(330)]), ["n"] * 7 + ["sw"] * 7 + ["se"] * 7)
    labels, confidences = predict_families(classifier, np.array([point(90), point(330), [0.0, 0.0]]))
    assert labels == ["n", "se", UNCLASSIFIED]
    assert confidences[0] > 0.9 and confidences[2] == pytest.approx(1 / 3, abs=0.05)
    # held out: n right, sw right, an se point labelled sw wrong
    report = classifier_report(classifier, np.array([point(95), point(200), point(330)]), ["n", "sw", "sw"])
    assert report["accuracy"] == pytest.approx(2 / 3) and report["confident_accuracy"] == pytest.approx(2 / 3)
    assert report["unclassified_share"] == 0 and report["held_out_sayings"] == 3
    assert report["confusion"] == {"n": {"n": 1}, "sw": {"se": 1, "sw": 1}}
    with_origin = classifier_report(classifier, np.array([point(95), point(200), point(330), [0.0, 0.0]]), ["n", "sw", "sw", "se"])
    assert with_origin["unclassified_share"] == pytest.approx(1 / 4)
    with pytest.raises(FolksyError, match="at least two families"):
        fit_family_classifier(around(90), ["n"] * 7)
