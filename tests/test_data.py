import json

import pytest

from folksy.corpus.engine import FAMILIES as ENGINE_FAMILIES
from folksy.data import CorpusError, check_ratios, dedupe, read_corpus, saying_key, split_rows
from folksy.errors import FolksyError

FAMILIES = list(ENGINE_FAMILIES)


def pair(i: int, family: str = "false_equivalence", output: str | None = None, **extra) -> dict:
    row = {
        "input": f"Tell me something about thing{i}.",
        "output": output or f"A thing{i} without a lid? That's just a bowl with big dreams.",
        "meta_template": family,
        "source_words": [f"thing{i}"],
        "input_type": "word_seeded",
    }
    row.update(extra)
    return row


def write_lines(path, lines) -> str:
    with open(path, "wb") as handle:
        for line in lines:
            handle.write(line if isinstance(line, bytes) else (json.dumps(line) if isinstance(line, dict) else line).encode() + b"\n")
    return str(path)


@pytest.mark.parametrize(
    "bad_line, expected",
    [
        (b"\xff\xfe not utf8\n", "not UTF-8"),
        (b'{"input": "Tell me", "output": "A saw', "invalid JSON"),
        ({"input": "Tell me a proverb.", "output": "Rain falls.", "meta_template": "deconstruction"}, "missing field 'source_words'"),
        ({"input": 3, "output": "Rain falls.", "meta_template": "deconstruction", "source_words": []}, "field 'input' must be a string"),
        ({"input": "Tell me.", "output": "Rain.", "meta_template": "deconstruction", "source_words": "rain"}, "'source_words' must be a list"),
        ({"input": "Tell me.", "output": "Rain.", "meta_template": "limerick", "source_words": []}, "unknown meta_template 'limerick'"),
        ({"input": "Tell me.", "output": "  ", "meta_template": "deconstruction", "source_words": []}, "field 'output' is empty"),
        ([1, 2], "expected a JSON object"),
        (b'{"input": "' + b"x" * (10 * 1024 * 1024) + b'"}\n', "the limit is"),
    ],
    ids=["not-utf8", "truncated-json", "missing-field", "wrong-type", "words-not-list", "unknown-template", "empty-output", "not-object", "10mb-line"],
)
def test_bad_line_names_file_and_line(tmp_path, bad_line, expected):
    if isinstance(bad_line, list):
        bad_line = json.dumps(bad_line).encode() + b"\n"
    path = write_lines(tmp_path / "corpus.jsonl", [pair(1), pair(2), bad_line, pair(3)])
    with pytest.raises(CorpusError) as caught:
        read_corpus(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: ")
    assert expected in message
    assert "\n" not in message


def test_skip_mode_counts_bad_lines(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", [pair(1), b"{oops\n", pair(2), {"input": "x"}])
    rows, bad = read_corpus(path, on_error="skip")
    assert [row["source_words"] for row in rows] == [["thing1"], ["thing2"]]
    assert [line.split(": ")[0] for line in bad] == [f"{path}:2", f"{path}:4"]


def test_empty_corpus_is_an_error(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", [])
    with pytest.raises(CorpusError, match="empty"):
        read_corpus(path)
    path = write_lines(tmp_path / "bad.jsonl", [b"nope\n"])
    with pytest.raises(CorpusError, match=r"no valid corpus lines \(1 bad\)"):
        read_corpus(path, on_error="skip")


def test_unknown_input_type_is_rejected(tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", [pair(1, input_type="telepathic")])
    with pytest.raises(CorpusError, match="unknown input_type 'telepathic'"):
        read_corpus(path)


def test_dedupe_drops_exact_pairs_only():
    rows = [pair(1), pair(1), pair(1, input="Give me a saying about thing1.")]
    kept, dropped = dedupe(rows)
    assert dropped == 1
    assert len(kept) == 2


@pytest.mark.parametrize(
    "ratios, message",
    [((0.8, 0.1, 0.05), "must sum to 1"), ((0.95, 0.0, 0.05), "--val-ratio must be between 0 and 1"), ((-0.1, 0.6, 0.5), "--train-ratio")],
)
def test_bad_ratios(ratios, message):
    with pytest.raises(FolksyError, match=message):
        check_ratios(*ratios)


def test_split_is_grouped_stratified_and_seeded():
    rows = []
    for family_index, family in enumerate(FAMILIES):
        for i in range(40 * (family_index + 1)):
            saying = f"The {family} saying number {i} ain't what it used to be."
            # each saying comes with three prompts, as in the real corpus
            for prompt_kind in ("word", "category", "persona"):
                rows.append(pair(i, family, output=saying, input=f"{prompt_kind} prompt {i}"))
    splits = split_rows(rows, (0.9, 0.05, 0.05), seed=7)
    assert sum(len(s) for s in splits.values()) == len(rows)
    keys = {name: {saying_key(r["output"]) for r in split} for name, split in splits.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    for family_index, family in enumerate(FAMILIES):
        n = 40 * (family_index + 1)
        in_test = sum(1 for r in splits["test"] if r["meta_template"] == family) // 3
        assert in_test == round(n * 0.05), family  # every family is cut by the same ratios
    assert split_rows(rows, (0.9, 0.05, 0.05), seed=7) == splits
    assert split_rows(rows, (0.9, 0.05, 0.05), seed=8)["test"] != splits["test"]


def test_near_identical_sayings_share_a_split():
    rows = [pair(1, output="Rain ain't wet."), pair(2, output="rain ain't wet!")] + [pair(i) for i in range(3, 60)]
    splits = split_rows(rows, (0.6, 0.2, 0.2), seed=1)
    homes = [name for name, split in splits.items() for r in split if saying_key(r["output"]) == "rain aint wet"]
    assert len(homes) == 2 and len(set(homes)) == 1
