"""Do a saying's words fit its pattern? Parse it onto the engine's patterns and check against the lexicon.

Pure: no MLflow, no model. Real models fail by writing a sentence in one of the engine's patterns
with words whose parts do not fit: "a ladder's just rungs and a rooster that ain't had a fallin' out
yet" (a rooster is not a part of a ladder), "sandbag the porch with spoons ... the moon's gonna be
salty" (salty is not the moon's property, and spoons are no defence against it). A sentence
embedding barely sees that; the lexicon the engine fills its patterns from does. For every pattern of
`folksy.corpus.templates.PATTERNS` a regular expression captures the slot fills; a saying that matches
one has each fill checked:

- a naming slot ("a mule", "the mules", "a stubborn mule") must name a lexicon word, the same word
  wherever the role is named; an adjective in `a_prop` must be that word's property;
- `prop` / `most` must be its property (or the superlative), `use` / `uses` / `using` its use,
  `part` / `parts` among its parts;
- the second word must stand in the pattern's relation to the first (same property, same category,
  a related category).

`fit_features(text)` gives `fit_parsed` (1 when a pattern matched), `fit_passed` and `fit_failed`
(checks that held or failed; a name the lexicon does not know counts as failed) and `fit_share`
(passed / all checks, 0.5 when nothing was checked). A saying in none of the patterns gets
`fit_parsed` 0 and neutral values: this is evidence only where the engine's patterns are used.
"""

import re
from functools import lru_cache

from folksy.corpus import english
from folksy.corpus.engine import _CHOICE, _SLOT  # the engine's own reading of a pattern's slots
from folksy.corpus.lexicon import LEXICON, lookup
from folksy.corpus.templates import PATTERNS, RELATED_CATEGORIES

FIT_FEATURES = ("fit_parsed", "fit_passed", "fit_failed", "fit_share")
_FIXED = {"they": "they|it", "are": "are|is", "theyre": "they're|it's", "maker": "raise|grow|sell|make"}
# what a slot's fill starts with, taken greedily so that "callin' a tulip a sunrise" splits after "tulip"
_LEAD = {"a": "(?:(?:an?|some) )?", "the": "(?:the )?", "a_prop": "(?:an? )?", "the_part": "(?:the )?"}
_ARTICLE = re.compile(r"^(?:a|an|the|some|his|her|their|your|my|one)\s+")


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace('"', "")
    return re.sub(r"\s+", " ", text).strip().rstrip(".!")


@lru_cache(maxsize=1)
def _compiled() -> tuple:
    """(family, index, regex, slots): slots[k] = (role, form, adjective) of the regex's group g<k>."""
    compiled = []
    for family, patterns in PATTERNS.items():
        for index, pattern in enumerate(patterns):
            slots, pieces, position = [], [], 0
            text = _normalise(_CHOICE.sub(lambda m: "\0" + m.group(1) + "\1", pattern.text))
            for match in _SLOT.finditer(text):
                pieces.append(_literal(text[position:match.start()]))
                role, form, adjective = match.group(1), match.group(2), match.group(3)
                if form in _FIXED:
                    pieces.append(f"(?:{_FIXED[form]})")
                else:
                    pieces.append(_LEAD.get(form, "") + (f"(?:{re.escape(adjective)} )?" if adjective else "") + f"(?P<g{len(slots)}>[\\w' ,-]+?)")
                    slots.append((role, form, adjective))
                position = match.end()
            pieces.append(_literal(text[position:]))
            compiled.append((family, index, re.compile("".join(pieces)), tuple(slots)))
    return tuple(compiled)


def _literal(text: str) -> str:
    """A literal stretch of a pattern as a regex; \\0a|b\\1 marks "[a|b]" alternatives."""
    chunks = re.split(r"[\x00\x01]", text)
    return "".join(re.escape(c) if i % 2 == 0 else "(?:" + "|".join(map(re.escape, c.split("|"))) + ")" for i, c in enumerate(chunks))


def _name(phrase: str, adjective: str | None = None) -> tuple[str | None, str | None]:
    """(lexicon word, the adjective in front of it or None) for a noun phrase such as "a stubborn mule"."""
    phrase = _ARTICLE.sub("", phrase.strip())
    if adjective and phrase.startswith(adjective + " "):
        phrase = phrase[len(adjective) + 1:]
    word = lookup(phrase)
    if word:
        return word, None
    head, _, rest = phrase.partition(" ")
    return lookup(rest), head if rest else None


def _plain(phrase: str) -> str:
    """Without its article, with "-in'" spelt "-ing": "a fishin' pole" -> "fishing pole"."""
    return re.sub(r"in'(?=\s|$)", "ing", _ARTICLE.sub("", phrase.strip().lower()))


def _check(role_word: str, form: str, value: str) -> bool:
    entry = LEXICON[role_word]
    value = value.strip()
    if form == "prop":
        return value == entry["property"]
    if form == "most":
        return value in (english.superlative(entry["property"]), "most " + entry["property"])
    if form in ("use", "uses", "using"):
        forms = (entry["use"], english.third_person(entry["use"]), english.gerund(entry["use"]))
        return _plain(value) in {_plain(f) for f in forms}
    parts = {_plain(p) for p in entry["parts"]}
    if form == "parts":
        found = [_plain(p) for p in re.split(r",\s*|\s+and\s+", value) if p.strip()]
        return bool(found) and all(p in parts for p in found)
    return _plain(value) in parts  # part, part2, part3, the_part, bare_part


def _related(relation: str, x: str, y: str) -> bool:
    ex, ey = LEXICON[x], LEXICON[y]
    if relation == "same_prop":
        return ex["property"] == ey["property"]
    if relation == "same_category":
        return ex["category"] == ey["category"]
    if relation == "related":
        return ey["category"] in RELATED_CATEGORIES[ex["category"]]
    return True


def parse(text: str) -> dict | None:
    """The pattern a saying follows and its checks, or None: {"pattern", "words", "passed", "failed"}."""
    normal = _normalise(text)
    for family, index, regex, slots in _compiled():
        match = regex.fullmatch(normal)
        if match:
            return _checks(family, index, slots, match)
    return None


def _checks(family: str, index: int, slots: tuple, match) -> dict:
    words, checks, deferred = {}, [], []  # checks: one bool per check, True when it held
    for k, (role, form, adjective) in enumerate(slots):
        value = match.group(f"g{k}")
        if form in (None, "a", "the", "pl", "a_prop"):
            word, extra = _name(value, adjective)
            if word is None or (role in words and words[role] != word):
                checks.append(False)
                continue
            words[role] = word
            checks.append(extra == LEXICON[word]["property"] if form == "a_prop" else True)
        else:
            deferred.append((role, form, value))
    checks += [_check(words[role], form, value) for role, form, value in deferred if role in words]
    relation = PATTERNS[family][index].y
    if relation and "x" in words and "y" in words:
        checks.append(_related(relation, words["x"], words["y"]))
    return {"pattern": f"{family}[{index}]", "words": words, "passed": sum(checks), "failed": len(checks) - sum(checks)}


def fit_features(text: str) -> dict[str, float]:
    parsed = parse(text)
    if parsed is None:
        return {"fit_parsed": 0.0, "fit_passed": 0.0, "fit_failed": 0.0, "fit_share": 0.5}
    checks = parsed["passed"] + parsed["failed"]
    return {
        "fit_parsed": 1.0,
        "fit_passed": float(parsed["passed"]),
        "fit_failed": float(parsed["failed"]),
        "fit_share": parsed["passed"] / checks if checks else 0.5,
    }
