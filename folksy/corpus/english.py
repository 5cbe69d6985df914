"""Small English helpers the template engine needs: a/an, verb forms, superlatives, plurals, lists.

Pure functions over strings; the lexicon supplies the irregular cases it knows about
(explicit articles and plurals), these rules cover everything composed on the fly.
"""

import re

# Spelled with a vowel but said with a consonant sound ("a one-horse town", "a union suit").
_A_DESPITE_VOWEL = ("one", "once", "uni", "use", "usu", "uti", "eu", "ewe")
# Spelled with a consonant but said with a vowel sound ("an honest man").
_AN_DESPITE_CONSONANT = ("hour", "honest", "honor", "heir", "herb")

# Two-syllable verbs stressed on the last syllable double their final consonant (patrol -> patrolling).
_DOUBLING_VERBS = {"patrol", "control", "admit", "forget", "begin", "compel", "refer", "prefer", "occur", "regret"}
_IRREGULAR_THIRD_PERSON = {"be": "is", "have": "has", "do": "does", "go": "goes"}
_IRREGULAR_SUPERLATIVE = {
    "good": "best",
    "bad": "worst",
    "far": "farthest",
    "sly": "slyest",
    "shy": "shyest",
    "eager": "most eager",
    "fickle": "most fickle",
    "loyal": "most loyal",
    "worn": "most worn",
    "homely": "homeliest",
}
_VOWELS = "aeiou"


def article_for(phrase: str) -> str:
    """'a' or 'an' for the word that starts `phrase`, by how it is said, not just how it is spelled."""
    word = phrase.strip().lower()
    if word.startswith(_A_DESPITE_VOWEL):
        return "a"
    if word.startswith(_AN_DESPITE_CONSONANT):
        return "an"
    return "an" if word[:1] in _VOWELS else "a"


def with_article(phrase: str) -> str:
    """'a stubborn mule', 'an old hat'."""
    return f"{article_for(phrase)} {phrase}"


def _split_verb(verb_phrase: str) -> tuple[str, str]:
    verb, _, rest = verb_phrase.strip().partition(" ")
    return verb, (" " + rest if rest else "")


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    count = len(groups)
    consonant_le = re.search(r"[^aeiouy]le$", word) is not None
    if word.endswith("e") and not word.endswith(("ee", "ye")) and not consonant_le and count > 1:
        count -= 1  # a silent final e ("shape", "pale"); "settle" keeps its -le syllable
    return max(count, 1)


def _doubles_final_consonant(word: str) -> bool:
    """'get' -> 'getting', 'whip' -> 'whipping'; not 'boil', 'fix', 'draw' or 'water'."""
    if word in _DOUBLING_VERBS:
        return True
    if len(word) < 3 or _syllables(word) != 1:
        return False
    a, b, c = word[-3], word[-2], word[-1]
    return a not in _VOWELS and b in _VOWELS and c not in _VOWELS + "wxy"


def third_person(verb_phrase: str) -> str:
    """'drive nails' -> 'drives nails', 'catch mice' -> 'catches mice', 'carry water' -> 'carries water'."""
    verb, rest = _split_verb(verb_phrase)
    if verb in _IRREGULAR_THIRD_PERSON:
        return _IRREGULAR_THIRD_PERSON[verb] + rest
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es" + rest
    if verb.endswith("y") and verb[-2:-1] not in _VOWELS:
        return verb[:-1] + "ies" + rest
    return verb + "s" + rest


def gerund(verb_phrase: str, folksy: bool = True) -> str:
    """'drive nails' -> "drivin' nails" (or 'driving nails' with folksy=False)."""
    verb, rest = _split_verb(verb_phrase)
    if verb == "be":
        stem = "be"
    elif verb.endswith("ie"):
        stem = verb[:-2] + "y"
    elif verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        stem = verb[:-1]
    elif _doubles_final_consonant(verb):
        stem = verb + verb[-1]
    else:
        stem = verb
    return stem + ("in'" if folksy else "ing") + rest


def superlative(adjective: str) -> str:
    """'sharp' -> 'sharpest', 'wet' -> 'wettest', 'heavy' -> 'heaviest', 'stubborn' -> 'most stubborn'."""
    adj = adjective.lower()
    if adj in _IRREGULAR_SUPERLATIVE:
        return _IRREGULAR_SUPERLATIVE[adj]
    syllables = _syllables(adj)
    if "-" in adj or " " in adj or adj.endswith(("ed", "ful", "ing", "ous", "ish", "ic")) or syllables > 2:
        return f"most {adj}"
    if syllables == 1:
        if adj.endswith("e"):
            return adj + "st"
        if adj.endswith("y") and adj[-2] not in _VOWELS:
            return adj[:-1] + "iest"
        if _doubles_final_consonant(adj):
            return adj + adj[-1] + "est"
        return adj + "est"
    if adj.endswith("y") and adj[-2] not in _VOWELS:
        return adj[:-1] + "iest"
    if adj.endswith("le"):
        return adj + "st"
    if adj.endswith(("ow", "er")):
        return adj + "est"
    return f"most {adj}"


def plural_of(noun: str) -> str:
    """Regular English plural of the last word of `noun`; the lexicon lists the irregular ones itself."""
    head, _, last = noun.rpartition(" ")
    prefix = head + " " if head else ""
    if last.endswith(("s", "sh", "ch", "x", "z")):
        return prefix + last + "es"
    if last.endswith("y") and last[-2:-1] not in _VOWELS:
        return prefix + last[:-1] + "ies"
    return prefix + last + "s"


def join_words(items: list[str]) -> str:
    """'a, b and c' (no serial comma, the way it is said)."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def strip_article(phrase: str) -> str:
    """'a handle' -> 'handle', 'an egg' -> 'egg', 'nails' -> 'nails'."""
    for article in ("a ", "an "):
        if phrase.startswith(article):
            return phrase[len(article) :]
    return phrase


def capitalize_sentences(text: str) -> str:
    """Upper-case the first letter of the text and of every sentence after '. ', '? ' or '! '."""
    text = text[:1].upper() + text[1:]
    return re.sub(r"([.?!] +)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
