"""The one JSONL reader and writer. A bad line is reported as `file:line: what is wrong`."""

import json
from pathlib import Path

from folksy.errors import FolksyError

MAX_LINE_BYTES = 64 * 1024  # folksy's lines are ~200-800 bytes; a huge line is corruption, not data


def read_jsonl(path, check=None, bad: list | None = None, max_line_bytes: int = MAX_LINE_BYTES, raises=FolksyError) -> list:
    """The JSON values of a JSONL file's non-blank lines, in order.

    `check(row)` returns what is wrong with a parsed line (one phrase) or None. Each problem becomes
    `"{path}:{line}: {problem}"`: raised as `raises` (a FolksyError class) at the first one, or, when `bad` is a list,
    appended to it and the line skipped. A missing file raises FolksyError.
    """
    path = Path(path)
    if not path.is_file():
        raise raises(f"{path}: no such file")
    rows = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            row, problem = None, None
            if len(raw) > max_line_bytes:
                problem = f"line is {len(raw)} bytes; the limit is {max_line_bytes}"
            else:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    problem = f"not UTF-8 (byte {error.start})"
                else:
                    if not text.strip():
                        continue  # blank lines carry nothing
                    try:
                        row = json.loads(text)
                    except json.JSONDecodeError as error:
                        problem = f"invalid JSON ({error.msg} at column {error.colno})"
                    else:
                        problem = check(row) if check else None
            if problem:
                if bad is None:
                    raise raises(f"{path}:{number}: {problem}")
                bad.append(f"{path}:{number}: {problem}")
            else:
                rows.append(row)
    return rows


def write_jsonl(path, rows) -> None:
    """One JSON value per line, UTF-8, non-ASCII kept as is."""
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
