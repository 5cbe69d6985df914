"""corpus/judge_realistic.jsonl, the realistic labelled set (docs/judge.md): its shape and its split."""

import json
from collections import Counter, defaultdict

from folksy.defaults import PROJECT_ROOT

SET = PROJECT_ROOT / "corpus" / "judge_realistic.jsonl"


def rows() -> list[dict]:
    return [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines()]


def test_every_item_is_labelled_on_the_rubric_and_read_ones_keep_both_readings():
    items = rows()
    assert len(items) >= 600
    assert {"text", "label", "readings", "source", "prompt", "prompt_kind", "split", "injection"} <= set().union(*items)
    for item in items:
        assert item["label"] in (1, 2, 3, 4, 5) and item["split"] in ("train", "heldout") and item["text"].strip()
        if not item["source"].startswith("calibration-"):
            a, b = item["readings"]  # two blind readers; the label is their mean rounded half up
            assert item["label"] == int((a + b) / 2 + 0.5)
    sources = Counter(item["source"] for item in items)
    assert {"engine", "base", "nonsense"} <= set(sources) and sum(s.startswith("model-") for s in sources) >= 3
    assert sum(item["injection"] for item in items) >= 10


def test_held_out_items_are_grouped_by_prompt_and_every_source_is_held_out():
    splits_of_prompt = defaultdict(set)
    for item in rows():
        if item["prompt"]:
            splits_of_prompt[item["prompt"]].add(item["split"])
    assert all(len(splits) == 1 for splits in splits_of_prompt.values())  # no prompt on both sides
    held = Counter(item["source"] for item in rows() if item["split"] == "heldout")
    total = Counter(item["source"] for item in rows())
    for source, n in total.items():
        assert 0.2 <= held[source] / n <= 0.5, source


def test_the_old_calibration_set_is_inside_with_its_labels_and_split():
    from folksy.judging.critic_data import load_calibration

    inside = {(item["text"], item["label"], item["split"]) for item in rows() if item["source"].startswith("calibration-")}
    assert inside == {(item["text"], int(item["label"]), item["split"]) for item in load_calibration()}


def test_the_critic_learns_from_the_train_split_and_never_sees_a_held_out_item():
    from folksy.judging.critic_data import critic_labelled, realistic_heldout

    labelled = critic_labelled()
    trained_on = {row["text"] for row in labelled if row["split"] == "train"}
    real_train = {item["text"] for item in rows() if item["split"] == "train" and not item["source"].startswith("calibration-")}
    assert real_train and real_train <= trained_on
    assert not trained_on & {row["text"] for row in realistic_heldout()}
