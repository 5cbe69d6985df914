"""The template engine, the shipped corpus and `python -m folksy.corpus.generate`.

The quality rules run over every line of the shipped corpus; the CLI test regenerates it and compares
bytes. The expected numbers (9,025 sayings, the family shares) are typed in here by hand from the
issue, not imported from the code under test.
"""

import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from folksy.corpus import english, quality
from folksy.corpus.engine import (
    FAMILIES,
    FAMILY_DESCRIPTIONS,
    compose,
    detect_input_type,
    generate_saying,
    read_prompt,
    respond,
    respond_saying,
)
from folksy.corpus.generate import build_corpus, family_quotas
from folksy.corpus.lexicon import (
    CATEGORIES,
    EITHER_WAY,
    FAULTS,
    FIXTURES,
    GARDEN_THINGS,
    LEXICON,
    OWNABLE_EXTRA,
    VIRTUES,
    WORDS,
    lookup,
    plural,
)
from folksy.corpus.prompts import (
    CATEGORY_NAMES,
    CATEGORY_PHRASINGS,
    INPUT_TYPES,
    OPEN_PHRASINGS,
    PERSONA_PHRASINGS,
    PERSONAS,
    TEMPLATE_PHRASINGS,
    WORD_PHRASINGS,
)
from folksy.corpus.templates import PATTERNS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "corpus" / "training_pairs.jsonl"
SHIPPED_STATS = ROOT / "corpus" / "training_pairs.stats.json"
ISSUE_SHARES = {  # percent of sayings, from issue 2
    "false_equivalence": 21.0,
    "futile_preparation": 19.2,
    "ironic_deficiency": 17.3,
    "deconstruction": 17.1,
    "hypocritical_complaint": 9.0,
    "denial_of_consequences": 8.3,
    "tautological_wisdom": 8.0,
}


@pytest.fixture(scope="module")
def rows():
    return [json.loads(line) for line in SHIPPED.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def sayings(rows):
    """One entry per unique saying: output -> (family, source words)."""
    return {r["output"]: (r["meta_template"], tuple(r["source_words"])) for r in rows}


def mentions(text: str, word: str) -> bool:
    forms = "|".join(re.escape(f) for f in {word, plural(word)})
    return re.search(rf"(?<![\w-])({forms})(?![\w-])", text.lower()) is not None


# ---------------------------------------------------------------- the shipped corpus, line by line


def test_every_line_has_the_five_fields_with_known_values(rows):
    for number, row in enumerate(rows, 1):
        assert list(row) == ["input", "output", "meta_template", "source_words", "input_type"], number
        assert isinstance(row["input"], str) and row["input"].strip(), number
        assert row["meta_template"] in FAMILIES, number
        assert row["input_type"] in INPUT_TYPES, number
        assert isinstance(row["source_words"], list) and all(w in LEXICON for w in row["source_words"]), number


def test_no_duplicate_sayings_after_normalising_case_and_punctuation(sayings):
    normalized = Counter(quality.normalize(text) for text in sayings)
    assert [text for text, n in normalized.items() if n > 1] == []
    assert len(normalized) == 9025


def test_every_saying_passes_the_quality_rules(sayings):
    failures = {text: quality.saying_problems(text) for text in sayings}
    assert {t: p for t, p in failures.items() if p} == {}
    # the rules spelled out once more, independently of quality.py
    for text in sayings:
        assert text[0].isupper() and text[-1] in ".!?", text
        assert 5 <= len(text.split()) <= 30, text
        assert not re.search(r"[{}\[\]|_<>]|\bNone\b", text), text


def test_two_word_patterns_never_get_the_same_word_twice(sayings):
    for text, (family, words) in sayings.items():
        assert len(set(words)) == len(words), text
        assert not (len(words) == 2 and (words[0] in words[1].split() or words[1] in words[0].split())), text


def test_every_source_word_appears_in_its_saying(sayings):
    for text, (family, words) in sayings.items():
        assert all(mentions(text, w) for w in words), (text, words)


def test_each_saying_is_asked_for_by_word_category_and_persona_prompts(rows):
    types_by_saying = {}
    for row in rows:
        types_by_saying.setdefault(row["output"], []).append(row["input_type"])
    for output, types in types_by_saying.items():
        assert types.count("word_seeded") == types.count("category_seeded") == types.count("persona_seeded") == 1
        assert types.count("template_seeded") <= 1 and types.count("open_ended") <= 1


def test_every_prompt_reads_back_as_its_own_type_and_names_what_it_seeds(rows):
    for row in rows:
        assert detect_input_type(row["input"]) == row["input_type"], row["input"]
        cues = read_prompt(row["input"])
        if row["input_type"] == "word_seeded":
            assert cues.word in row["source_words"], row["input"]
        if row["input_type"] == "category_seeded":
            assert cues.category in {LEXICON[w]["category"] for w in row["source_words"]}, row["input"]
        if row["input_type"] == "template_seeded":
            assert cues.family == row["meta_template"], row["input"]
        if row["input_type"] == "persona_seeded":
            assert LEXICON[row["source_words"][0]]["category"] in PERSONAS[cues.persona], row["input"]


# ---------------------------------------------------------------- the stats report


def test_stats_match_the_issue_and_the_file(rows, sayings):
    stats = json.loads(SHIPPED_STATS.read_text())
    assert stats["sayings"] == len(sayings) == 9025
    assert stats["pairs"] == len(rows)
    assert abs(stats["pairs"] - 36079) <= 0.005 * 36079  # "about 36,079"
    by_family = Counter(family for family, _ in sayings.values())
    for family, target in ISSUE_SHARES.items():
        assert stats["families"][family]["sayings"] == by_family[family]
        assert abs(100 * by_family[family] / 9025 - target) <= 1.0, family
    by_type = Counter(r["input_type"] for r in rows)
    assert by_type["word_seeded"] == by_type["category_seeded"] == by_type["persona_seeded"] == 9025
    assert abs(100 * by_type["template_seeded"] / 9025 - 76) <= 1.5
    assert abs(100 * by_type["open_ended"] / 9025 - 24) <= 1.5
    assert {t: v["pairs"] for t, v in stats["input_types"].items()} == dict(by_type)
    used = {w for _, words in sayings.values() for w in words}
    assert len(used) == len(WORDS) == 624
    assert stats["vocab_coverage"] == {"used": 624, "total": 624, "unused": []}
    assert isinstance(stats["duplicates_removed"], int) and stats["duplicates_removed"] >= 0


def pattern_regex(text: str) -> re.Pattern:
    """A pattern's fixed words with its slots as wildcards, to tell which pattern a saying came from."""
    pieces = []
    for piece in re.split(r"(\{[^}]*\}|\[[^\]]*\])", text):
        if piece.startswith("{"):
            pieces.append(".+?")
        elif piece.startswith("["):
            pieces.append("(?:" + "|".join(re.escape(o) for o in piece[1:-1].split("|")) + ")")
        else:
            pieces.append(re.escape(piece))
    return re.compile("^" + "".join(pieces) + "$", re.IGNORECASE)


def test_the_readme_quotes_the_current_numbers_and_real_lines(rows):
    readme = (ROOT / "corpus" / "README.md").read_text()
    stats = json.loads(SHIPPED_STATS.read_text())
    assert f"{stats['sayings']:,} unique sayings and {stats['pairs']:,} pairs" in readme
    assert f"{stats['duplicates_removed']:,} candidate sayings were dropped" in readme
    texts = {r["output"] for r in rows} | {r["input"] for r in rows}
    examples = [line.rsplit("|", 2)[-2].strip() for line in readme.splitlines() if line.startswith("| ") and line.endswith((". |", "? |"))]
    assert len(examples) == 12 and all(e in texts for e in examples), [e for e in examples if e not in texts]


def test_every_family_uses_every_one_of_its_patterns(sayings):
    used = {family: set() for family in FAMILIES}
    for text, (family, _) in sayings.items():
        matches = [i for i, p in enumerate(PATTERNS[family]) if pattern_regex(p.text).match(text)]
        assert matches, text  # every saying is one of its family's patterns, filled in
        used[family].update(matches)
    assert {f: len(u) for f, u in used.items()} == {f: len(PATTERNS[f]) for f in FAMILIES}


# ---------------------------------------------------------------- the generator


def test_the_documented_command_regenerates_the_shipped_files_byte_for_byte(tmp_path):
    out = tmp_path / "training_pairs.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "folksy.corpus.generate", "--seed", "42", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == SHIPPED.read_bytes()
    assert (tmp_path / "training_pairs.stats.json").read_bytes() == SHIPPED_STATS.read_bytes()
    assert "9,025 unique sayings" in done.stdout and "vocab coverage 624/624" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training_pairs.jsonl", "training_pairs.stats.json"]


def test_rebalance_lifts_every_family_to_at_least_ten_percent(tmp_path):
    out = tmp_path / "balanced.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "folksy.corpus.generate", "--rebalance", "--sayings", "700", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads((tmp_path / "balanced.stats.json").read_text())
    assert stats["rebalance"] is True and stats["sayings"] == 700
    assert all(row["sayings"] >= 70 for row in stats["families"].values())
    rows, full = build_corpus(rebalance=True)
    counts = {f: v["sayings"] for f, v in full["families"].items()}
    assert sum(counts.values()) == 9025 and min(counts.values()) >= 903  # ceil(10% of 9,025)
    # the big families shrink but keep their order
    assert counts["false_equivalence"] > counts["futile_preparation"] > counts["ironic_deficiency"] > counts["deconstruction"]
    assert full["vocab_coverage"]["used"] == 624


def test_quotas_are_exact_and_follow_the_shares():
    assert family_quotas(9025) == {
        "false_equivalence": 1897,
        "futile_preparation": 1734,
        "ironic_deficiency": 1563,
        "deconstruction": 1545,
        "hypocritical_complaint": 813,
        "denial_of_consequences": 750,
        "tautological_wisdom": 723,
    }  # 9025 * share / 99.9, largest remainder first
    assert sum(family_quotas(1234, rebalance=True).values()) == 1234


def test_generation_is_deterministic_under_a_seed():
    first, _ = build_corpus(seed=7, n_sayings=300)
    again, _ = build_corpus(seed=7, n_sayings=300)
    other, _ = build_corpus(seed=8, n_sayings=300)
    assert first == again and first != other


def test_bad_options_fail_with_one_line_naming_the_option_and_write_nothing(tmp_path):
    missing = tmp_path / "no-such-dir" / "pairs.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "folksy.corpus.generate", "--out", str(missing)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "--out" in done.stderr and "does not exist" in done.stderr
    done = subprocess.run([sys.executable, "-m", "folksy.corpus.generate", "--sayings", "3", "--out", str(tmp_path / "x.jsonl")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "--sayings" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_says_what_it_reads_and_writes():
    done = subprocess.run([sys.executable, "-m", "folksy.corpus.generate", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0
    assert "training_pairs.jsonl" in done.stdout and ".stats.json" in done.stdout and "--rebalance" in done.stdout


# ---------------------------------------------------------------- lexicon, patterns and prompts


def test_lexicon_has_624_words_in_12_categories_of_52():
    assert len(LEXICON) == 624 and len(CATEGORIES) == 12
    assert Counter(e["category"] for e in LEXICON.values()) == {c: 52 for c in CATEGORIES}


def test_lexicon_entries_are_complete_and_articles_match_pronunciation():
    for word, entry in LEXICON.items():
        assert entry["article"] in ("a", "an", ""), word
        if entry["article"]:
            assert entry["article"] == english.article_for(word), word
        else:
            assert entry["plural"] == word, word  # mass nouns: the generic form is the word itself
        assert len(entry["parts"]) >= 3 and len(set(entry["parts"])) == len(entry["parts"]), word
        assert not any(p.startswith("the ") for p in entry["parts"]), word
        assert entry["use"] and entry["use"][0].islower(), word


def test_plurals_including_the_irregular_ones():
    assert [plural(w) for w in ("goose", "mouse", "calf", "knife", "ox", "sheep", "hay", "rain", "pony", "cactus")] == [
        "geese", "mice", "calves", "knives", "oxen", "sheep", "hay", "rain", "ponies", "cactuses"
    ]
    assert plural("box") == "boxes" and plural("county") == "counties" and plural("bale") == "bales"
    assert lookup("Geese") == "goose" and lookup("kitchen  tables") == "kitchen table" and lookup("unicorn") is None
    forms = Counter(f for w, e in LEXICON.items() for f in {w, e["plural"]})
    assert [f for f, n in forms.items() if n > 1] == []  # every surface form names exactly one word


def test_every_property_is_shared_and_classed_once():
    by_property = Counter(e["property"] for e in LEXICON.values())
    assert [p for p, n in by_property.items() if n < 2] == []  # "a mule callin' a goat stubborn" needs a pair
    for prop in by_property:
        assert [prop in VIRTUES, prop in FAULTS, prop in EITHER_WAY].count(True) == 1, prop


def test_the_word_kind_lists_name_only_lexicon_words():
    for kind in (FIXTURES, GARDEN_THINGS, OWNABLE_EXTRA):
        assert sorted(kind - set(LEXICON)) == []
    assert all(LEXICON[w]["category"] == "garden" for w in GARDEN_THINGS)


def test_every_pattern_names_its_main_word():
    for family, patterns in PATTERNS.items():
        for pattern in patterns:
            assert "x" in pattern.named_roles, pattern.text


def test_each_family_has_at_least_twelve_patterns_and_each_prompt_type_ten_phrasings():
    assert tuple(PATTERNS) == FAMILIES == tuple(ISSUE_SHARES)
    assert all(len(PATTERNS[f]) >= 12 for f in FAMILIES)
    assert set(FAMILY_DESCRIPTIONS) == set(FAMILIES)
    for phrasings in (WORD_PHRASINGS, CATEGORY_PHRASINGS, PERSONA_PHRASINGS, TEMPLATE_PHRASINGS, OPEN_PHRASINGS):
        assert len(set(phrasings)) >= 10
    assert INPUT_TYPES == ("word_seeded", "category_seeded", "persona_seeded", "template_seeded", "open_ended")


def test_personas_cover_every_category():
    assert len(PERSONAS) >= 10
    assert {c for cats in PERSONAS.values() for c in cats} == set(CATEGORIES)
    assert set(CATEGORY_NAMES) == set(CATEGORIES)


def test_prompts_other_than_word_prompts_name_no_lexicon_word():
    texts = [*CATEGORY_PHRASINGS, *PERSONA_PHRASINGS, *TEMPLATE_PHRASINGS, *OPEN_PHRASINGS, *CATEGORY_NAMES.values()]
    texts += list(PERSONAS) + list(FAMILY_DESCRIPTIONS.values())
    for text in texts:
        assert read_prompt(text.replace("{", "").replace("}", "")).word is None, text


def test_every_word_can_lead_a_saying_in_most_families():
    rng = random.Random(0)
    for word in WORDS:
        families = [f for f in FAMILIES if compose(f, rng, word) is not None]
        assert len(families) >= 5, (word, families)


# ---------------------------------------------------------------- the Python API


def test_generate_saying_uses_the_given_words_and_is_seeded():
    text = generate_saying("hypocritical_complaint", ["mule", "donkey"], seed=1)
    assert text == "The mule says the donkey's too stubborn, and the donkey ain't said a word."
    assert generate_saying("deconstruction", ["burger"], seed=3) == generate_saying("deconstruction", ["Burgers"], seed=3)
    for family in FAMILIES:
        assert quality.saying_problems(generate_saying(family, seed=5)) == []
        assert mentions(generate_saying(family, ["rain"], seed=5), "rain")


def test_generate_saying_names_the_problem():
    with pytest.raises(ValueError, match="unknown family 'proverbial'"):
        generate_saying("proverbial")
    with pytest.raises(ValueError, match="'unicorn' is not a lexicon word"):
        generate_saying("deconstruction", ["unicorn"])
    with pytest.raises(ValueError, match="'mule' is stubborn, 'hammer' is heavy"):
        generate_saying("hypocritical_complaint", ["mule", "hammer"])
    with pytest.raises(ValueError, match="must differ"):
        generate_saying("false_equivalence", ["mule", "mule"])


def test_respond_follows_what_the_prompt_names():
    rain = respond_saying("Tell me something about rain.", seed=7)
    assert rain.words[0] == "rain" and mentions(rain.text, "rain")
    kitchen = respond_saying("What's an old saying about the kitchen?", seed=7)
    assert LEXICON[kitchen.words[0]]["category"] == "kitchen"
    persona = respond_saying("Speak like a blacksmith and give me a proverb.", seed=7)
    assert LEXICON[persona.words[0]]["category"] in PERSONAS["a blacksmith"]
    for family, description in FAMILY_DESCRIPTIONS.items():
        assert respond_saying(f"Give me a saying about {description}.", seed=2).family == family
    assert respond_saying("Give me a hypocritical one about mules.", seed=2).family == "hypocritical_complaint"


def test_respond_is_seeded_and_always_answers():
    assert respond("Tell me a proverb.", seed=11) == respond("Tell me a proverb.", seed=11)
    assert len({respond("Tell me a proverb.", seed=s) for s in range(20)}) > 15
    for prompt in ("Tell me about love.", "???", "Say something about quantum chromodynamics, partner."):
        assert quality.saying_problems(respond(prompt, seed=1)) == []
    # open_ended ignores what the prompt names
    assert respond_saying("Tell me about rain.", input_type="open_ended", seed=4) == respond_saying("Tell me a proverb.", seed=4)
    with pytest.raises(ValueError, match="unknown input_type"):
        respond("Tell me a proverb.", input_type="telepathic")
    with pytest.raises(ValueError, match="non-empty"):
        respond("   ")


# ---------------------------------------------------------------- English helpers and quality rules


@pytest.mark.parametrize(
    "phrase, article",
    [("apple", "an"), ("mule", "a"), ("ornery goat", "an"), ("hour", "an"), ("honest man", "an"),
     ("union suit", "a"), ("one-horse town", "a"), ("ewe", "a"), ("umbrella", "an"), ("udder", "an"),
     ("hen", "a"), ("European", "a"), ("useful tool", "a")],
)
def test_article_for(phrase, article):
    assert english.article_for(phrase) == article


def test_verb_forms_and_superlatives():
    assert [english.third_person(v) for v in ("drive nails", "catch mice", "carry water", "fix a fence", "go home", "play dead")] == [
        "drives nails", "catches mice", "carries water", "fixes a fence", "goes home", "plays dead"
    ]
    assert [english.gerund(v) for v in ("get milk", "drive nails", "tie a shoe", "water the crops", "patrol the yard", "see")] == [
        "gettin' milk", "drivin' nails", "tyin' a shoe", "waterin' the crops", "patrollin' the yard", "seein'"
    ]
    assert english.gerund("whip the eggs", folksy=False) == "whipping the eggs"
    assert [english.superlative(a) for a in ("sharp", "wet", "heavy", "stubborn", "pale", "gentle", "big", "fickle")] == [
        "sharpest", "wettest", "heaviest", "most stubborn", "palest", "gentlest", "biggest", "most fickle"
    ]
    assert english.join_words(["a", "b", "c"]) == "a, b and c" and english.join_words(["a"]) == "a"
    assert english.capitalize_sentences("the mule won. the goat lost? yes") == "The mule won. The goat lost? Yes"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("a mule is a mule, no matter what.", "capital"),
        ("A mule is a mule, no matter what", "end with"),
        ("A mule is.", "words"),
        (" ".join(["Mule"] * 31) + ".", "words"),
        ("A {x.a} is a mule, no matter what.", "markup"),
        ("A mule is a [mule|goat], no matter what.", "markup"),
        ("A mule is a mule , no matter what.", "spacing"),
        ("Never trust a apple in a orchard.", "'a apple' should be 'an apple'"),
        ("Never trust an mule in the barn.", "'an mule' should be 'a mule'"),
    ],
)
def test_quality_rules_catch_each_kind_of_bad_saying(text, problem):
    assert any(problem in p for p in quality.saying_problems(text)), quality.saying_problems(text)


def test_quality_rules_pass_a_good_saying():
    assert quality.saying_problems("A burger without beef? That's just a fancy tomato thinkin' it's better than the rest.") == []
    assert quality.normalize("Rain's wet, ain't it?") == quality.normalize("rains WET aint it")
