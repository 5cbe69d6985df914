"""Template coverage: the evaluation prompt set and the family classifier. Pure: no MLflow, no model.

The prompt set is the test split's distinct prompts followed by freshly generated prompts that go
round the five input types in turn, with every template_seeded prompt naming the next of the seven
families, so that coverage is measured on every kind of request. The classifier is logistic
regression on all-MiniLM-L6-v2 embeddings of the corpus sayings; a saying whose most likely family
has probability below `MIN_FAMILY_CONFIDENCE` is "unclassified" rather than forced into a family.
"""

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from steps.errors import FolksyError

UNCLASSIFIED = "unclassified"
MIN_FAMILY_CONFIDENCE = 0.5  # off-style text (the base model's rambling) must not count as covering a family
CLASSIFIER_C = 10.0  # inverse L2 strength; embeddings are unit vectors, so the default 1.0 underfits
SPLIT_KEYS = ("prompt", "completion", "meta_template", "input_type", "source_words", "output")


@dataclass
class EvalPrompt:
    prompt: str
    input_type: str
    origin: str  # "test" (a test-split prompt, scored against its references) or "generated"
    family: str | None = None  # the family a template_seeded prompt names, or the test reference's family
    seed_words: list[str] = field(default_factory=list)  # the words a word_seeded prompt asks for
    references: list[str] = field(default_factory=list)


def read_split(path: Path) -> list[dict]:
    """Rows of a prepare split file; a malformed line raises FolksyError naming file:line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise FolksyError(f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno})") from None
            missing = [key for key in SPLIT_KEYS if not isinstance(row, dict) or key not in row]
            if missing:
                raise FolksyError(f"{path}:{number}: not a prepare split row (missing {', '.join(missing)})")
            rows.append(row)
    if not rows:
        raise FolksyError(f"{path}: the split is empty")
    return rows


def user_prompt(row: dict) -> str:
    """The user's request in a split row (the prompt is [system, user] messages)."""
    return next(message["content"] for message in reversed(row["prompt"]) if message["role"] == "user")


def prompts_from_split(rows: list[dict], plural) -> list[EvalPrompt]:
    """One EvalPrompt per distinct test prompt, in first-seen order, carrying every reference saying for it.

    A word_seeded prompt asks for one of its saying's source words; the seed words are those the
    prompt names (as themselves or as `plural(word)`).
    """
    from steps.metrics import adheres

    by_prompt: dict[str, EvalPrompt] = {}
    for row in rows:
        text = user_prompt(row).strip()
        if text not in by_prompt:
            seeds = []
            if row["input_type"] == "word_seeded":
                seeds = [word for word in row["source_words"] if adheres(text, [word], plural)]
            by_prompt[text] = EvalPrompt(text, row["input_type"], "test", row["meta_template"], seeds)
        by_prompt[text].references.append(row["output"])
    return list(by_prompt.values())


def generated_prompts(count: int, input_types, families, make_prompt, seed: int) -> list[EvalPrompt]:
    """`count` new prompts: input types in turn, each template_seeded prompt naming the next family.

    `make_prompt(input_type, family, rng)` returns `(prompt, seed_words)`; `family` is None for the
    input types that do not name one.
    """
    rng = random.Random(seed)
    prompts, template_count = [], 0
    for index in range(count):
        input_type = input_types[index % len(input_types)]
        family = None
        if input_type == "template_seeded":
            family = families[template_count % len(families)]
            template_count += 1
        text, words = make_prompt(input_type, family, rng)
        prompts.append(EvalPrompt(text, input_type, "generated", family, list(words)))
    return prompts


def corpus_prompt(input_type: str, family: str | None, rng: random.Random) -> tuple[str, list[str]]:
    """A new request of one input type, phrased the way the corpus phrases it (corpus.prompts).

    word_seeded prompts seed a random lexicon word; template_seeded prompts name `family` through
    its description. Returns the prompt and its seeded words.
    """
    from corpus import prompts
    from corpus.engine import FAMILY_DESCRIPTIONS
    from corpus.generate import _noun_forms  # the corpus's own {plural}/{a}/{the} forms, so prompts read alike
    from corpus.lexicon import WORDS

    if input_type == "word_seeded":
        word = rng.choice(WORDS)
        return rng.choice(prompts.WORD_PHRASINGS).format(**_noun_forms(word)), [word]
    if input_type == "category_seeded":
        category = rng.choice(sorted(prompts.CATEGORY_NAMES))
        return rng.choice(prompts.CATEGORY_PHRASINGS).format(category=prompts.CATEGORY_NAMES[category]), []
    if input_type == "persona_seeded":
        return rng.choice(prompts.PERSONA_PHRASINGS).format(persona=rng.choice(sorted(prompts.PERSONAS))), []
    if input_type == "template_seeded":
        return rng.choice(prompts.TEMPLATE_PHRASINGS).format(description=FAMILY_DESCRIPTIONS[family]), []
    if input_type == "open_ended":
        return rng.choice(prompts.OPEN_PHRASINGS), []
    raise FolksyError(f"unknown input type '{input_type}' (known: {', '.join(prompts.INPUT_TYPES)})")


def full_cycle(input_types, families) -> int:
    """The fewest generated prompts that name every family once (and so use every input type)."""
    return len(input_types) * len(families)


def evaluation_prompts(test_rows, total: int, input_types, families, make_prompt, plural, seed: int) -> list[EvalPrompt]:
    """The test split's distinct prompts, then generated ones up to `total`.

    At least one full cycle of generated prompts is always included (every input type, every family
    named), so when the test split is large its prompts are cut to make room.
    """
    cycle = full_cycle(input_types, families)
    if total < cycle:
        raise FolksyError(f"--num-prompts must be at least {cycle} (5 input types x 7 families), got {total}")
    from_test = prompts_from_split(test_rows, plural)[: total - cycle]
    return from_test + generated_prompts(total - len(from_test), input_types, families, make_prompt, seed)


def shared_positions(prompts: list[EvalPrompt], size: int, cycle: int) -> list[int]:
    """Positions of the `size` prompts that every system answers (the base model answers only these).

    Generated prompts come first up to one full cycle, so the subset still spans every input type and
    family; test prompts fill the rest, so BLEU/ROUGE use as many references as fit.
    """
    tests = [i for i, p in enumerate(prompts) if p.origin == "test"]
    generated = [i for i, p in enumerate(prompts) if p.origin != "test"]
    take_generated = min(len(generated), max(min(cycle, size), size - len(tests)))
    return sorted(tests[: max(size - take_generated, 0)] + generated[:take_generated])


def fit_family_classifier(embeddings, families: list[str]):
    """Logistic regression from saying embeddings to their meta_template family."""
    from sklearn.linear_model import LogisticRegression

    if len(set(families)) < 2:
        raise FolksyError("the family classifier needs sayings of at least two families in the train split")
    return LogisticRegression(C=CLASSIFIER_C, max_iter=2000).fit(embeddings, families)


def predict_families(classifier, embeddings, min_confidence: float = MIN_FAMILY_CONFIDENCE) -> tuple[list[str], list[float]]:
    """The most likely family of each embedding and its probability; below `min_confidence`, UNCLASSIFIED."""
    if len(embeddings) == 0:
        return [], []
    probabilities = classifier.predict_proba(embeddings)
    best = probabilities.argmax(axis=1)
    labels, confidences = [], []
    for row, column in enumerate(best):
        confidence = float(probabilities[row, column])
        labels.append(str(classifier.classes_[column]) if confidence >= min_confidence else UNCLASSIFIED)
        confidences.append(confidence)
    return labels, confidences


def classifier_report(classifier, embeddings, families: list[str], min_confidence: float = MIN_FAMILY_CONFIDENCE) -> dict:
    """Held-out quality of the classifier, so the coverage figures can be trusted.

    accuracy: argmax family equals the true family; confident_accuracy: the same among sayings above
    `min_confidence`; unclassified_share: held-out corpus sayings that fall below it; confusion: counts
    true family -> predicted label (argmax).
    """
    from collections import Counter

    predicted = [str(label) for label in classifier.predict(embeddings)]
    labels, _ = predict_families(classifier, embeddings, min_confidence)
    confident = [(label, truth) for label, truth in zip(labels, families) if label != UNCLASSIFIED]
    confusion = Counter(zip(families, predicted))
    return {
        "accuracy": sum(p == t for p, t in zip(predicted, families)) / len(families),
        "confident_accuracy": sum(p == t for p, t in confident) / len(confident) if confident else float("nan"),
        "unclassified_share": 1 - len(confident) / len(families),
        "held_out_sayings": len(families),
        "confusion": {truth: {p: n for (t, p), n in sorted(confusion.items()) if t == truth} for truth in sorted(set(families))},
    }
