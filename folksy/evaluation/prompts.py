"""The evaluation prompt set. Pure: no MLflow, no model.

The prompt set is the test split's distinct prompts followed by freshly generated prompts that go
round the five input types in turn, with every template_seeded prompt naming the next of the seven
families, so that coverage is measured on every kind of request.
"""

import random
from dataclasses import dataclass, field

from folksy.chat import user_prompt
from folksy.errors import FolksyError



@dataclass
class EvalPrompt:
    prompt: str
    input_type: str
    origin: str  # "test" (a test-split prompt, scored against its references) or "generated"
    family: str | None = None  # the family a template_seeded prompt names, or the test reference's family
    seed_words: list[str] = field(default_factory=list)  # the words a word_seeded prompt asks for
    references: list[str] = field(default_factory=list)


def prompts_from_split(rows: list[dict], plural) -> list[EvalPrompt]:
    """One EvalPrompt per distinct test prompt, in first-seen order, carrying every reference saying for it.

    A word_seeded prompt asks for one of its saying's source words; the seed words are those the
    prompt names (as themselves or as `plural(word)`).
    """
    from folksy.evaluation.metrics import adheres

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
    """A new request of one input type, phrased the way the corpus phrases it (folksy.corpus.prompts).

    word_seeded prompts seed a random lexicon word; template_seeded prompts name `family` through
    its description. Returns the prompt and its seeded words.
    """
    from folksy.corpus import prompts
    from folksy.corpus.engine import FAMILY_DESCRIPTIONS
    from folksy.corpus.prompts import noun_forms  # the corpus's own {plural}/{a}/{the} forms, so prompts read alike
    from folksy.corpus.lexicon import WORDS

    if input_type == "word_seeded":
        word = rng.choice(WORDS)
        return rng.choice(prompts.WORD_PHRASINGS).format(**noun_forms(word)), [word]
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
