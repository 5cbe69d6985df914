"""The folksy-saying template engine: pick words, pick a pattern, fill it in.

It is also the baseline "model" the fine-tuned one has to beat: `respond(prompt)` answers any prompt
with a saying that fits it as well as a template engine can.

    from folksy.corpus.engine import generate_saying, respond
    generate_saying("hypocritical_complaint", ["mule", "donkey"], seed=1)
    # "The mule says the donkey's too stubborn, and the donkey ain't said a word."
    respond("Tell me something about rain.", seed=7)
    # "Sandbag the porch with slippers if it makes you feel better, but the rain's gonna be wet regardless."
"""

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from folksy.corpus import english
from folksy.corpus.lexicon import (
    CATEGORIES,
    EITHER_WAY,
    FAULTS,
    FIXTURES,
    GARDEN_THINGS,
    LEXICON,
    MAKERS,
    OWNABLE_CATEGORIES,
    OWNABLE_EXTRA,
    VIRTUES,
    WORDS,
    lookup,
    plural,
)
from folksy.corpus.prompts import CATEGORY_KEYWORDS, CATEGORY_NAMES, INPUT_TYPES, PERSONAS
from folksy.corpus.quality import saying_problems
from folksy.corpus.templates import PATTERNS, RELATED_CATEGORIES

FAMILIES = (
    "false_equivalence",
    "futile_preparation",
    "ironic_deficiency",
    "deconstruction",
    "hypocritical_complaint",
    "denial_of_consequences",
    "tautological_wisdom",
)

# Percent of sayings per family in the original corpus; the generator reproduces this shape.
FAMILY_SHARES = {
    "false_equivalence": 21.0,
    "futile_preparation": 19.2,
    "ironic_deficiency": 17.3,
    "deconstruction": 17.1,
    "hypocritical_complaint": 9.0,
    "denial_of_consequences": 8.3,
    "tautological_wisdom": 8.0,
}

# How a template_seeded prompt names the family in plain words ("Give me a saying about ...").
FAMILY_DESCRIPTIONS = {
    "false_equivalence": "mistaking one thing for another",
    "futile_preparation": "getting ready for something you can't stop",
    "ironic_deficiency": "lacking the very thing you're known for",
    "deconstruction": "what a thing is really made of",
    "hypocritical_complaint": "complaining about a fault you have yourself",
    "denial_of_consequences": "acting surprised at what you had coming",
    "tautological_wisdom": "things being exactly what they are",
}

# Words a person might use for a family without quoting its description.
FAMILY_KEYWORDS = {
    "false_equivalence": ("false equivalence", "mistaking", "mixing up"),
    "futile_preparation": ("futile", "preparation", "getting ready", "can't stop"),
    "ironic_deficiency": ("ironic", "irony", "known for", "cobbler's children"),
    "deconstruction": ("deconstruct", "made of", "ingredients"),
    "hypocritical_complaint": ("hypocrit", "pot calling the kettle"),
    "denial_of_consequences": ("consequence", "had coming", "acting surprised"),
    "tautological_wisdom": ("tautolog", "what they are"),
}

_NO_SUPERLATIVE = {"lost"}  # "the lostest key in the county"

_SLOT = re.compile(r"\{([xy])(?:\.(\w+))?(?::([^}]*))?\}")
_CHOICE = re.compile(r"\[([^\]]+)\]")


@dataclass(frozen=True)
class Saying:
    text: str
    family: str
    words: tuple[str, ...]  # the words the saying names: x, then y unless only its use or property shows
    pattern: int  # index into templates.PATTERNS[family]


# ---------------------------------------------------------------- word facts, computed once


def _tokens(phrase: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z'-]*", phrase.lower()))


@lru_cache(maxsize=None)
def _features(word: str) -> frozenset:
    entry = LEXICON[word]
    ownable = entry["category"] in OWNABLE_CATEGORIES or word in OWNABLE_EXTRA
    features = set()
    if entry["article"]:
        features.add("count")
    if ownable:
        features.add("ownable")
    portable = ownable and word not in FIXTURES
    if portable:
        features.add("portable")
    if portable or entry["category"] == "wild_critters":
        features.add("handleable")
    if entry["category"] in ("farm_animals", "wild_critters"):
        features.add("critter")
    if entry["property"] not in _NO_SUPERLATIVE:
        features.add("superlative")
    if entry["property"] in FAULTS | EITHER_WAY:
        features.add("fault")
    if entry["property"] in VIRTUES | EITHER_WAY:
        features.add("virtue")
    return frozenset(features)


@lru_cache(maxsize=1)
def _form_regex() -> re.Pattern:
    forms = sorted({form for word in WORDS for form in (word, plural(word))}, key=len, reverse=True)
    return re.compile(r"(?<![\w'-])(" + "|".join(re.escape(f) for f in forms) + r")(?![\w-])")


@lru_cache(maxsize=None)
def _mentions(word: str) -> frozenset:
    """Other lexicon words named in this word's parts and use ("cow" mentions "cowbell")."""
    entry = LEXICON[word]
    text = " ".join((*entry["parts"], entry["use"])).lower()
    return frozenset(lookup(m) for m in _form_regex().findall(text)) - {word}


@lru_cache(maxsize=None)
def _word_tokens(word: str) -> frozenset:
    return frozenset(_tokens(word) | _tokens(plural(word)))


def _clash(x: str, y: str) -> bool:
    """True when two words would make a saying name one thing twice ("a goat callin' a billy goat")."""
    return x == y or y in _mentions(x) or x in _mentions(y) or bool(_word_tokens(x) & _word_tokens(y))


@lru_cache(maxsize=None)
def _literal_tokens(family: str, index: int) -> frozenset:
    text = _SLOT.sub(" ", PATTERNS[family][index].text).replace("|", " ")
    return frozenset(_tokens(text))


def _fits(family: str, index: int, word: str, needs: frozenset) -> bool:
    """The word has the features the pattern needs and is not already one of the pattern's fixed words."""
    return needs <= _features(word) and not (_word_tokens(word) & _literal_tokens(family, index))


@lru_cache(maxsize=None)
def _partners(relation: str, x: str) -> tuple[str, ...]:
    entry = LEXICON[x]
    if relation == "same_prop":
        pool = [w for w in WORDS if LEXICON[w]["property"] == entry["property"]]
    elif relation == "same_category":
        pool = [w for w in WORDS if LEXICON[w]["category"] == entry["category"]]
    elif relation == "related":
        pool = [w for w in WORDS if LEXICON[w]["category"] in RELATED_CATEGORIES[entry["category"]]]
    else:
        pool = WORDS
    return tuple(w for w in pool if not _clash(x, w))


@lru_cache(maxsize=None)
def _y_pool(family: str, index: int) -> frozenset:
    """Every word that could be this pattern's second word, partner aside."""
    pattern = PATTERNS[family][index]
    return frozenset(w for w in WORDS if _fits(family, index, w, pattern.y_needs))


def _y_candidates(family: str, index: int, x: str) -> list[str]:
    pool = _y_pool(family, index)
    return [w for w in _partners(PATTERNS[family][index].y, x) if w in pool]


@lru_cache(maxsize=None)
def _has_partner(family: str, index: int, x: str) -> bool:
    pool = _y_pool(family, index)
    return any(w in pool for w in _partners(PATTERNS[family][index].y, x))


# ---------------------------------------------------------------- rendering


class _Filler:
    """The surface forms of one word in one saying; parts are shuffled once per saying."""

    def __init__(self, word: str, rng: random.Random, entry: dict | None = None):
        self.word = word
        self.entry = entry or LEXICON[word]  # another entry: the critic's mismatched fills (folksy.judging.critic_data)
        self.parts = rng.sample(self.entry["parts"], len(self.entry["parts"]))

    def form(self, name: str | None, arg: str | None) -> str:
        entry, word = self.entry, self.word
        mass = entry["article"] == ""
        if name is None:
            return word
        if name == "a":
            if arg:
                return f"{arg} {word}" if mass else english.with_article(f"{arg} {word}")
            return word if mass else f"{entry['article']} {word}"
        simple = {
            "the": f"the {word}",
            "pl": entry["plural"],
            "use": entry["use"],
            "uses": english.third_person(entry["use"]),
            "using": english.gerund(entry["use"]),
            "prop": entry["property"],
            "most": english.superlative(entry["property"]),
            "part": self.parts[0],
            "part2": self.parts[1],
            "part3": self.parts[2],
            "the_part": "the " + english.strip_article(self.parts[0]),
            "bare_part": english.strip_article(self.parts[0]),
            "parts": english.join_words(self.parts),
            "they": "it" if mass else "they",
            "are": "is" if mass else "are",
            "theyre": "it's" if mass else "they're",
            "maker": "make" if word in GARDEN_THINGS else MAKERS.get(entry["category"], "make"),
        }
        if name == "a_prop":
            return self.form("a", entry["property"])
        if name not in simple:
            raise KeyError(f"unknown slot form '{name}'")
        return simple[name]


def fill(family: str, index: int, fillers: dict, rng: random.Random) -> str:
    """Pattern `index` of `family` with its slots filled by `fillers` ({"x": _Filler, "y": _Filler or None})."""
    text = _CHOICE.sub(lambda m: rng.choice(m.group(1).split("|")), PATTERNS[family][index].text)
    text = _SLOT.sub(lambda m: fillers[m.group(1)].form(m.group(2), m.group(3)), text)
    return english.capitalize_sentences(text)


def render(family: str, index: int, x: str, y: str | None, rng: random.Random) -> str:
    """Fill pattern `index` of `family` with the given words; the result passes every quality rule."""
    text = fill(family, index, {"x": _Filler(x, rng), "y": _Filler(y, rng) if y else None}, rng)
    problems = saying_problems(text)
    if problems:  # a lexicon entry that reads wrong in this pattern: a bug to fix in the data
        raise RuntimeError(f"{family}[{index}] with {x!r}, {y!r} gives {text!r}: {'; '.join(problems)}")
    return text


def compose(family: str, rng: random.Random, x: str | None = None, y: str | None = None) -> Saying | None:
    """One saying of `family`; picks whatever words are not given. None if the given words fit no pattern."""
    patterns = PATTERNS[family]
    if x is None:
        for word in rng.sample(WORDS, len(WORDS)):
            saying = compose(family, rng, word, y)
            if saying:
                return saying
        return None
    choices = []
    for index, pattern in enumerate(patterns):
        if not _fits(family, index, x, pattern.x):
            continue
        if y is None:
            if pattern.y is None or _has_partner(family, index, x):
                choices.append(index)
        elif "y" in pattern.named_roles and y in _y_candidates(family, index, x):
            choices.append(index)
    if not choices:
        return None
    index = rng.choice(choices)
    partner = None
    if patterns[index].y is not None:
        partner = y or rng.choice(_y_candidates(family, index, x))
    text = render(family, index, x, partner, rng)
    named = patterns[index].named_roles
    words = tuple(w for role, w in (("x", x), ("y", partner)) if w and role in named)
    return Saying(text, family, words, index)


# ---------------------------------------------------------------- the public API


def _word(name: str) -> str:
    word = lookup(name) if isinstance(name, str) else None
    if word is None:
        raise ValueError(f"'{name}' is not a lexicon word (see corpus/lexicon.py)")
    return word


def generate_saying(family: str, words: list[str] | None = None, seed: int | None = None) -> str:
    """One raw saying of `family`, built on `words` (main word first) or on words it picks itself.

    Raises ValueError for an unknown family, a word the lexicon lacks, or words no pattern of the
    family can use (hypocritical_complaint, for one, pairs two words that share a property).
    """
    if family not in PATTERNS:
        raise ValueError(f"unknown family '{family}'; expected one of {', '.join(FAMILIES)}")
    words = [_word(w) for w in (words or [])]
    if len(words) > 2:
        raise ValueError(f"a saying uses at most two words, got {len(words)}: {words}")
    if len(words) == 2 and words[0] == words[1]:
        raise ValueError(f"the two words must differ, got '{words[0]}' twice")
    x, y = (words + [None, None])[:2]
    saying = compose(family, random.Random(seed), x, y)
    if saying is None:
        if y is None:
            raise ValueError(f"no {family} pattern can use '{x}' ({LEXICON[x]['category']}, {LEXICON[x]['property']})")
        raise ValueError(
            f"no {family} pattern can use '{x}' with '{y}' "
            f"('{x}' is {LEXICON[x]['property']}, '{y}' is {LEXICON[y]['property']})"
        )
    return saying.text


@lru_cache(maxsize=None)
def _phrase_regex(phrases: tuple[str, ...]) -> re.Pattern:
    ordered = sorted({p.lower() for p in phrases}, key=len, reverse=True)
    return re.compile(r"(?<![\w'-])(" + "|".join(re.escape(p) for p in ordered) + r")(?![\w'-])")


def _find_phrase(text: str, phrases) -> str | None:
    """The longest of `phrases` that appears in lower-case `text` as whole words, or None."""
    found = [m.group(1) for m in _phrase_regex(tuple(phrases)).finditer(text)]
    return max(found, key=len) if found else None


@dataclass(frozen=True)
class Cues:
    """What a prompt names: a family, a persona, a category, a lexicon word (any may be None)."""

    family: str | None
    persona: str | None
    category: str | None
    word: str | None
    category_is_exact: bool


def read_prompt(prompt: str) -> Cues:
    text = " ".join(prompt.lower().split())
    family = next((f for f, d in FAMILY_DESCRIPTIONS.items() if d in text), None)
    family = family or next((f for f, keys in FAMILY_KEYWORDS.items() if any(k in text for k in keys)), None)
    persona = _find_phrase(text, PERSONAS)
    if persona:
        text = text.replace(persona, " ")  # "a bass fisherman" should not read as a word prompt
    match = _form_regex().search(text)
    word = lookup(match.group(1)) if match else None
    if match:  # "the kitchen table" names a word, not the kitchen
        text = text[: match.start()] + " " + text[match.end() :]
    exact = _find_phrase(text, CATEGORY_NAMES.values())
    category = next((c for c, name in CATEGORY_NAMES.items() if name == exact), None)
    if category is None and word is None:
        loose = _find_phrase(text, [k for keys in CATEGORY_KEYWORDS.values() for k in keys])
        category = next((c for c, keys in CATEGORY_KEYWORDS.items() if loose in keys), None)
    return Cues(family, persona, category, word, exact is not None)


def detect_input_type(prompt: str) -> str:
    """Which of INPUT_TYPES a prompt is, read from what it names (exact for the corpus's own prompts)."""
    cues = read_prompt(prompt)
    if cues.family:
        return "template_seeded"
    if cues.persona:
        return "persona_seeded"
    if cues.category and cues.category_is_exact:
        return "category_seeded"
    if cues.word:
        return "word_seeded"
    if cues.category:
        return "category_seeded"
    return "open_ended"


def respond(prompt: str, input_type: str | None = None, seed: int | None = None) -> str:
    """The engine as a baseline model: a saying that fits `prompt` as well as templates can.

    A named lexicon word is used as the main word; a named category or persona narrows the word to
    that category or to the persona's usual subjects; a family described in plain words picks the
    family, otherwise families are drawn in the corpus's shares. With input_type="open_ended" the
    prompt's content is ignored. The same prompt and seed give the same saying.
    """
    return respond_saying(prompt, input_type, seed).text


def respond_saying(prompt: str, input_type: str | None = None, seed: int | None = None) -> Saying:
    """`respond`, keeping the family and words the saying was built from."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string")
    if input_type is not None and input_type not in INPUT_TYPES:
        raise ValueError(f"unknown input_type '{input_type}'; expected one of {', '.join(INPUT_TYPES)}")
    rng = random.Random(seed)
    cues = Cues(None, None, None, None, False) if input_type == "open_ended" else read_prompt(prompt)
    if cues.word:
        pool = [cues.word]
    elif cues.category:
        pool = [w for w in WORDS if LEXICON[w]["category"] == cues.category]
    elif cues.persona:
        pool = [w for w in WORDS if LEXICON[w]["category"] in PERSONAS[cues.persona]]
    else:
        pool = list(WORDS)
    families = [cues.family] if cues.family else list(FAMILIES)
    weights = [FAMILY_SHARES[f] for f in families]
    for _ in range(50):  # a word that fits no pattern of the drawn family gets another draw
        family = rng.choices(families, weights)[0]
        saying = compose(family, rng, rng.choice(pool))
        if saying:
            return saying
    return compose(families[0], rng)  # only reachable with a fixed family that no pooled word fits


__all__ = [
    "CATEGORIES",
    "FAMILIES",
    "FAMILY_DESCRIPTIONS",
    "FAMILY_SHARES",
    "Saying",
    "compose",
    "detect_input_type",
    "generate_saying",
    "read_prompt",
    "render",
    "respond",
    "respond_saying",
]
