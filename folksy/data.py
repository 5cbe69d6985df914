"""Corpus validation, de-duplication, the leak-free split and the split files' reader. Pure: no MLflow.

A corpus line is `{"input", "output", "meta_template", "source_words"[, "input_type"]}`; every
problem is reported as `file:line: what is wrong`.
"""

import random
import re
from collections import defaultdict
from pathlib import Path

from folksy.errors import FolksyError
from folksy.jsonl import read_jsonl

MAX_LINE_BYTES = 64 * 1024  # corpus lines are ~200 bytes; a huge line is corruption, not a saying
SPLIT_KEYS = ("prompt", "completion", "meta_template", "input_type", "source_words", "output")  # see folksy.chat.to_prompt_completion
REQUIRED_STRINGS = ("input", "output", "meta_template")
SPLITS = ("train", "val", "test")


class CorpusError(FolksyError):
    pass


def known_families() -> tuple[str, ...]:
    from folksy.corpus.engine import FAMILIES

    return tuple(FAMILIES)


def known_input_types() -> tuple[str, ...]:
    from folksy.corpus.prompts import INPUT_TYPES

    return tuple(INPUT_TYPES)


def check_row(row, families, input_types) -> str | None:
    """The problem with one parsed corpus line, or None if it is usable."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    for field in REQUIRED_STRINGS + ("source_words",):
        if field not in row:
            return f"missing field '{field}'"
    for field in REQUIRED_STRINGS:
        if not isinstance(row[field], str):
            return f"field '{field}' must be a string, got {type(row[field]).__name__}"
        if not row[field].strip():
            return f"field '{field}' is empty"
    words = row["source_words"]
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        return "field 'source_words' must be a list of strings"
    if row["meta_template"] not in families:
        return f"unknown meta_template '{row['meta_template']}' (known: {', '.join(families)})"
    if "input_type" in row and row["input_type"] not in input_types:
        return f"unknown input_type '{row['input_type']}' (known: {', '.join(input_types)})"
    return None


def read_corpus(path, on_error: str = "fail") -> tuple[list[dict], list[str]]:
    """Read and validate a corpus JSONL file.

    Returns the valid rows and, with on_error="skip", one `file:line: problem` string per skipped line.
    With on_error="fail" the first problem raises CorpusError. An empty result always raises.
    """
    if on_error not in ("fail", "skip"):
        raise FolksyError(f"--on-error must be 'fail' or 'skip', got '{on_error}'")
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such corpus file")
    families, input_types = known_families(), known_input_types()
    bad: list[str] = []
    rows = read_jsonl(
        path, lambda row: check_row(row, families, input_types), bad=bad if on_error == "skip" else None,
        max_line_bytes=MAX_LINE_BYTES, raises=CorpusError,
    )
    if not rows:
        raise CorpusError(f"{path}: no valid corpus lines" + (f" ({len(bad)} bad)" if bad else " (the file is empty)"))
    return rows, bad


def split_row_problem(row) -> str | None:
    """What is wrong with one line of a prepare split file (splits/*.jsonl), or None."""
    missing = [key for key in SPLIT_KEYS if not isinstance(row, dict) or key not in row]
    return f"not a prepare split row (missing {', '.join(missing)})" if missing else None


def read_split(path) -> list[dict]:
    """Rows of a prepare split file; a malformed line raises FolksyError naming file:line."""
    rows = read_jsonl(path, split_row_problem)
    if not rows:
        raise FolksyError(f"{path}: the split is empty")
    return rows


def dedupe(rows: list[dict]) -> tuple[list[dict], int]:
    """Drop exact duplicate (input, output) pairs, keeping the first. Returns rows and the number dropped."""
    seen, kept = set(), []
    for row in rows:
        key = (row["input"].strip(), row["output"].strip())
        if key not in seen:
            seen.add(key)
            kept.append(row)
    return kept, len(rows) - len(kept)


def check_ratios(train: float, val: float, test: float) -> tuple[float, float, float]:
    for name, value in (("train_ratio", train), ("val_ratio", val), ("test_ratio", test)):
        if not 0 < value < 1:
            raise FolksyError(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
    if abs(train + val + test - 1) > 1e-6:
        raise FolksyError(f"--train-ratio, --val-ratio and --test-ratio must sum to 1, got {train + val + test:g}")
    return train, val, test


def saying_key(text: str) -> str:
    """Sayings that differ only in case, spacing or punctuation are the same saying."""
    return re.sub(r"[^a-z0-9 ]+", "", re.sub(r"\s+", " ", text.lower())).strip()


def split_rows(rows: list[dict], ratios: tuple[float, float, float], seed: int) -> dict[str, list[dict]]:
    """Split into train/val/test, stratified by meta_template and grouped by saying.

    All pairs that share a saying land in the same split, so no test saying is ever trained on.
    Within each family the sayings are shuffled with `seed` and cut by the ratios.
    """
    groups: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for row in rows:
        key = saying_key(row["output"])
        family = row["meta_template"]
        # a saying keeps the family it was first seen with, so its pairs never straddle strata
        owner = next((f for f, g in groups.items() if key in g), family)
        groups[owner].setdefault(key, []).append(row)
    rng = random.Random(seed)
    splits = {name: [] for name in SPLITS}
    for family in sorted(groups):
        keys = sorted(groups[family])
        rng.shuffle(keys)
        n_val, n_test = round(len(keys) * ratios[1]), round(len(keys) * ratios[2])
        assignment = {"val": keys[:n_val], "test": keys[n_val : n_val + n_test], "train": keys[n_val + n_test :]}
        for name, chosen in assignment.items():
            for key in chosen:
                splits[name].extend(groups[family][key])
    for name in SPLITS:
        rng.shuffle(splits[name])
    return splits


def split_stats(splits: dict[str, list[dict]]) -> dict:
    """Rows, distinct sayings, families and input types of each split (prepare logs them as splits/stats.json)."""
    from collections import Counter

    stats = {}
    for name, rows in splits.items():
        stats[name] = {
            "rows": len(rows),
            "sayings": len({row["output"] for row in rows}),
            "families": dict(sorted(Counter(row["meta_template"] for row in rows).items())),
            "input_types": dict(sorted(Counter(row["input_type"] for row in rows).items())),
        }
    return stats


def reader_labels(path=None) -> dict[str, int]:
    """Saying -> the readers' label (1-5) in the corpus's blind reading (READER_LABELS; benchmarks/corpus_reading.py).
    A malformed line raises FolksyError naming file:line."""
    from folksy.defaults import PROJECT_ROOT, READER_LABELS

    def problem(row):
        return None if isinstance(row, dict) and isinstance(row.get("saying"), str) and row.get("label") in range(1, 6) else "not a {saying, label 1-5} line"

    return {row["saying"]: row["label"] for row in read_jsonl(path or PROJECT_ROOT / READER_LABELS, problem)}
