"""The quality rules every saying in the corpus obeys, as plain functions.

The generator refuses to write a saying that breaks one, tests run them over the whole shipped corpus,
and any later step can use them to check a model's output the same way.
"""

import re
import string

from folksy.corpus.english import article_for

MIN_WORDS, MAX_WORDS = 5, 30
_MARKUP = re.compile(r"[{}\[\]<>|_\\]|\b(None|null|nan)\b|\s{2,}|\s[,.;:?!]")
_ARTICLE = re.compile(r"\b(a|an)\s+([A-Za-z][\w'-]*)", re.IGNORECASE)


def normalize(text: str) -> str:
    """The form duplicates are judged in: lower case, no punctuation, single spaces."""
    table = str.maketrans("", "", string.punctuation + "\u2019")
    return " ".join(text.lower().translate(table).split())


def article_errors(text: str) -> list[str]:
    """Every 'a X' / 'an X' in the text whose article does not fit how X is said."""
    errors = []
    for match in _ARTICLE.finditer(text):
        article, word = match.group(1), match.group(2)
        if article.lower() != article_for(word):
            errors.append(f"'{article} {word}' should be '{article_for(word)} {word}'")
    return errors


def saying_problems(text: str) -> list[str]:
    """Everything wrong with one saying; an empty list means it passes every rule."""
    problems = []
    if not text or not text[0].isupper():
        problems.append("does not start with a capital letter")
    if not text.endswith((".", "!", "?")):
        problems.append("does not end with . ! or ?")
    words = len(text.split())
    if not MIN_WORDS <= words <= MAX_WORDS:
        problems.append(f"has {words} words; a saying has {MIN_WORDS} to {MAX_WORDS}")
    if _MARKUP.search(text):
        problems.append(f"has template markup or stray spacing near '{_MARKUP.search(text).group(0)}'")
    problems.extend(article_errors(text))
    return problems
