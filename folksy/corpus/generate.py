"""Generate the training corpus: `python -m folksy.corpus.generate` rewrites the shipped file byte for byte.

The corpus is a list of prompt/saying pairs. Every saying is asked for by a word prompt, a category
prompt and a persona prompt; about 76% also get a prompt that describes the family in plain words and
about 24% an open-ended one ("Tell me a proverb."), the shape of the original corpus.
"""

import hashlib
import json
import math
import os
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

import click

from folksy.defaults import CORPUS, PROJECT_ROOT
from folksy.corpus.engine import FAMILIES, FAMILY_DESCRIPTIONS, FAMILY_SHARES, Saying, compose
from folksy.corpus.lexicon import LEXICON, WORDS
from folksy.corpus.prompts import (
    CATEGORY_NAMES,
    CATEGORY_PHRASINGS,
    INPUT_TYPES,
    OPEN_PHRASINGS,
    PERSONA_PHRASINGS,
    PERSONAS,
    TEMPLATE_PHRASINGS,
    WORD_PHRASINGS,
    noun_forms,
)
from folksy.corpus.quality import normalize
from folksy.corpus.templates import PATTERNS

DEFAULT_SEED = 42
DEFAULT_SAYINGS = 9025  # the original corpus's unique sayings
DEFAULT_OUT = PROJECT_ROOT / CORPUS
TEMPLATE_PROMPT_SHARE = 0.76  # of sayings that also get a template_seeded prompt
OPEN_PROMPT_SHARE = 0.24  # of sayings that also get an open_ended prompt
REBALANCE_FLOOR = 0.10  # --rebalance lifts every family to at least this share


def target_shares(rebalance: bool = False) -> dict[str, float]:
    """Each family's share of sayings (fractions summing to 1); --rebalance floors every family at 10%."""
    total = sum(FAMILY_SHARES.values())
    shares = {f: FAMILY_SHARES[f] / total for f in FAMILIES}
    if not rebalance:
        return shares
    low = [f for f in FAMILIES if shares[f] < REBALANCE_FLOOR]
    rest = 1.0 - REBALANCE_FLOOR * len(low)
    high_total = sum(shares[f] for f in FAMILIES if f not in low)
    return {f: REBALANCE_FLOOR if f in low else shares[f] / high_total * rest for f in FAMILIES}


def family_quotas(n_sayings: int, rebalance: bool = False) -> dict[str, int]:
    """Sayings per family: the target shares of n_sayings by largest remainder, summing to n_sayings.

    Under --rebalance the floored families round up, so each really holds at least 10%.
    """
    shares = target_shares(rebalance)
    floored = {f for f in FAMILIES if rebalance and shares[f] == REBALANCE_FLOOR}
    quotas = {f: math.ceil(n_sayings * REBALANCE_FLOOR - 1e-9) for f in floored}
    free = [f for f in FAMILIES if f not in floored]
    left = n_sayings - sum(quotas.values())
    free_total = sum(shares[f] for f in free)
    exact = {f: left * shares[f] / free_total for f in free}
    quotas.update({f: int(exact[f]) for f in free})
    by_remainder = sorted(free, key=lambda f: (exact[f] - int(exact[f]), -FAMILIES.index(f)), reverse=True)
    for f in by_remainder[: n_sayings - sum(quotas.values())]:
        quotas[f] += 1
    return {f: quotas[f] for f in FAMILIES}


def generate_sayings(rng: random.Random, quotas: dict[str, int]) -> tuple[list[Saying], int]:
    """Unique sayings meeting each family's quota, and how many duplicate candidates were dropped.

    Each family walks its own shuffled deck of the whole lexicon, so every word is used about equally
    often and all 624 appear; a candidate equal to an earlier saying (case and punctuation aside) is dropped.
    """
    sayings, seen, duplicates = [], set(), 0
    for family in FAMILIES:
        made, deck = 0, []
        attempts_left = 50 * quotas[family] + len(WORDS)
        while made < quotas[family]:
            attempts_left -= 1
            if attempts_left < 0:
                raise RuntimeError(f"{family}: could not make {quotas[family]} unique sayings; add patterns or words")
            if not deck:
                deck = rng.sample(WORDS, len(WORDS))
            saying = compose(family, rng, deck.pop())
            if saying is None:
                continue
            key = normalize(saying.text)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            sayings.append(saying)
            made += 1
    return sayings, duplicates



def prompts_for(saying: Saying, rng: random.Random) -> list[tuple[str, str]]:
    """(prompt, input_type) pairs that ask for this saying."""
    main = saying.words[0]
    asked = rng.choice(saying.words)
    prompts = [
        (rng.choice(WORD_PHRASINGS).format(**noun_forms(asked)), "word_seeded"),
        (rng.choice(CATEGORY_PHRASINGS).format(category=CATEGORY_NAMES[LEXICON[asked]["category"]]), "category_seeded"),
    ]
    fitting = [p for p, categories in PERSONAS.items() if LEXICON[main]["category"] in categories]
    prompts.append((rng.choice(PERSONA_PHRASINGS).format(persona=rng.choice(fitting)), "persona_seeded"))
    if rng.random() < TEMPLATE_PROMPT_SHARE:
        description = FAMILY_DESCRIPTIONS[saying.family]
        prompts.append((rng.choice(TEMPLATE_PHRASINGS).format(description=description), "template_seeded"))
    if rng.random() < OPEN_PROMPT_SHARE:
        prompts.append((rng.choice(OPEN_PHRASINGS), "open_ended"))
    return prompts


def build_corpus(seed: int = DEFAULT_SEED, n_sayings: int = DEFAULT_SAYINGS, rebalance: bool = False):
    """The corpus rows and the stats report, computed in memory (nothing is written)."""
    rng = random.Random(seed)
    quotas = family_quotas(n_sayings, rebalance)
    sayings, duplicates = generate_sayings(rng, quotas)
    rng.shuffle(sayings)  # interleave the families, so any slice of the file looks like the whole
    rows = []
    for saying in sayings:
        for prompt, input_type in prompts_for(saying, rng):
            rows.append(
                {
                    "input": prompt,
                    "output": saying.text,
                    "meta_template": saying.family,
                    "source_words": list(saying.words),
                    "input_type": input_type,
                }
            )
    return rows, corpus_stats(rows, sayings, duplicates, seed, rebalance)


def corpus_stats(rows, sayings, duplicates, seed, rebalance) -> dict:
    shares = target_shares(rebalance)
    by_family = Counter(s.family for s in sayings)
    by_type = Counter(r["input_type"] for r in rows)
    used = {w for s in sayings for w in s.words}
    lengths = [len(s.text.split()) for s in sayings]
    patterns_used = {f: len({s.pattern for s in sayings if s.family == f}) for f in FAMILIES}
    return {
        "seed": seed,
        "rebalance": rebalance,
        "sayings": len(sayings),
        "pairs": len(rows),
        "families": {
            f: {
                "sayings": by_family[f],
                "share": round(100 * by_family[f] / len(sayings), 2),
                "target_share": round(100 * shares[f], 2),
                "patterns_used": patterns_used[f],
                "patterns": len(PATTERNS[f]),
            }
            for f in FAMILIES
        },
        "input_types": {
            t: {
                "pairs": by_type[t],
                "share_of_pairs": round(100 * by_type[t] / len(rows), 2),
                "share_of_sayings": round(100 * by_type[t] / len(sayings), 2),
            }
            for t in INPUT_TYPES
        },
        "vocab_coverage": {"used": len(used), "total": len(WORDS), "unused": [w for w in WORDS if w not in used]},
        "duplicates_removed": duplicates,
        "words_per_saying": {"min": min(lengths), "mean": round(sum(lengths) / len(lengths), 2), "max": max(lengths)},
    }


def to_jsonl(rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def write_atomically(files: dict[Path, str]) -> None:
    """Write every file to a temporary sibling first, then rename them all into place."""
    staged = {}
    try:
        for path, text in files.items():
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
            os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it private; the corpus is for everyone
            staged[path] = name
        for path, name in staged.items():
            os.replace(name, path)
    finally:
        for name in staged.values():
            if os.path.exists(name):
                os.unlink(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def format_stats(stats: dict, out: Path) -> str:
    lines = [
        f"{out}: {stats['pairs']:,} pairs, {stats['sayings']:,} unique sayings "
        f"(seed {stats['seed']}{', rebalanced' if stats['rebalance'] else ''})",
        f"{'family':<24}{'sayings':>8}{'share':>8}{'target':>8}{'patterns':>10}",
    ]
    for family, row in stats["families"].items():
        lines.append(
            f"{family:<24}{row['sayings']:>8,}{row['share']:>7.1f}%{row['target_share']:>7.1f}%"
            f"{row['patterns_used']:>6}/{row['patterns']}"
        )
    lines.append(f"{'input type':<24}{'pairs':>8}{'of pairs':>10}{'of sayings':>12}")
    for input_type, row in stats["input_types"].items():
        lines.append(f"{input_type:<24}{row['pairs']:>8,}{row['share_of_pairs']:>9.1f}%{row['share_of_sayings']:>11.1f}%")
    coverage = stats["vocab_coverage"]
    lines.append(f"vocab coverage {coverage['used']}/{coverage['total']}; duplicates removed {stats['duplicates_removed']:,}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Random seed; the same seed gives the same bytes.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=CORPUS,
    help="The JSONL file to write; the stats report goes beside it as <name>.stats.json.",
)
@click.option("--rebalance", is_flag=True, help="Lift every family to at least 10% of the sayings.")
@click.option(
    "--sayings",
    "n_sayings",
    type=click.IntRange(min=len(FAMILIES) * 10),
    default=DEFAULT_SAYINGS,
    show_default=True,
    help="Unique sayings to make (the original corpus had 9,025).",
)
def main(seed: int, out: Path, rebalance: bool, n_sayings: int):
    """Write the folksy-proverb training corpus and its stats report.

    Reads nothing but the engine in corpus/ (lexicon, templates, prompts). Writes OUT (default
    corpus/training_pairs.jsonl), one {"input", "output", "meta_template", "source_words", "input_type"}
    object per line, and OUT's .stats.json beside it: counts per family and per input type, vocab
    coverage and duplicates removed. The `prepare` step reads OUT. With the defaults it regenerates
    the shipped file byte for byte.
    """
    out = out.expanduser()
    if not out.parent.is_dir():
        raise click.BadParameter(f"directory {out.parent} does not exist", param_hint="--out")
    rows, stats = build_corpus(seed, n_sayings, rebalance)
    jsonl = to_jsonl(rows)
    stats["sha256"] = hashlib.sha256(jsonl.encode()).hexdigest()
    stats_path = out.with_name(out.stem + ".stats.json")
    write_atomically({out: jsonl, stats_path: json.dumps(stats, indent=2) + "\n"})
    click.echo(format_stats(stats, out))
    click.echo(f"stats: {stats_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
