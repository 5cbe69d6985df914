"""Evaluate's work, system by system: the fine-tuned model, its base model and the template engine answer
the same prompts, and every metric is computed the same way for each. No MLflow.
"""

from dataclasses import dataclass

SYSTEMS = ("model", "base", "engine")
GENERATION_BATCH = 256  # prompts a batch when evaluate samples one saying each


@dataclass(frozen=True)
class Budget:
    prompts: int  # coverage/diversity prompts answered by model and engine
    base_prompts: int  # the base model rambles to max_new_tokens, so it answers only this many (see docs/metrics.md)
    max_new_tokens: int  # corpus sayings average 22 tokens with end-of-turn, 99.9% fit in 39: room to finish, not to ramble
    perplexity_rows: int | None  # test rows scored for perplexity (None: all)
    training_sayings: int | None  # train sayings embedded for memorization and the classifier (None: all)


FULL = Budget(prompts=1000, base_prompts=300, max_new_tokens=40, perplexity_rows=300, training_sayings=None)
# --quick: every metric on every system still runs, on 35 generated prompts (7 per input type, the template_seeded
# ones naming each family) and 5 test prompts
QUICK = Budget(prompts=40, base_prompts=40, max_new_tokens=16, perplexity_rows=16, training_sayings=1500)


class Stopwatch:
    """Seconds spent in each phase, logged as time/<phase>_s so slow phases show up in the UI."""

    def __init__(self):
        import time

        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        import time

        now = time.perf_counter()
        self.laps[f"{name}_s"] = round(now - self._last, 2)
        self._last = now


def generate_all(model_uri: str, base_path: str, dtype: str, prompts, shared: list[int], test_rows: list[dict], budget: Budget, max_new_tokens: int, seed: int, watch: Stopwatch):
    """Generations of model, base (the shared prompts only) and engine, and the two models' test perplexity.

    One model is in memory at a time, cast to `dtype` for both generation and perplexity. The engine
    sees the prompt text only, as the models do.
    """
    import math

    import torch
    from tqdm.auto import tqdm

    from folksy.corpus.engine import respond
    from folksy.chat import user_prompt
    from folksy.generation import SayingGenerator, load_generator, perplexity

    texts = [p.prompt for p in prompts]
    scored_rows = test_rows[: budget.perplexity_rows]
    ppl_prompts, ppl_sayings = [user_prompt(row) for row in scored_rows], [row["output"] for row in scored_rows]
    # up to 256 prompts a batch: stopped rows leave the batch (SayingGenerator.decode), so a wide batch carries no
    # padding; the 1,000 sayings took 98 s at 32 a batch and 66-69 s at 250 on 2 cores (docs/benchmarks.md)
    settings = dict(max_new_tokens=max_new_tokens, seed=seed, progress=True)
    generations, perplexities = {}, {}
    for system, asked in (("model", texts), ("base", [texts[i] for i in shared])):
        generator = load_generator(model_uri) if system == "model" else SayingGenerator.from_pretrained(base_path)
        generator.model.to(getattr(torch, dtype))
        batches = math.ceil(len(asked) / GENERATION_BATCH)  # evenly: 300 prompts are 2 of 150, not 256 and 44
        generations[system] = [outputs[0] for outputs in generator.generate(asked, batch_size=math.ceil(len(asked) / batches), **settings)]
        watch.lap(f"generate_{system}")
        perplexities[system] = perplexity(*generator.completion_nll(ppl_prompts, ppl_sayings))
        watch.lap(f"perplexity_{system}")
        del generator
    generations["engine"] = [respond(text, seed=seed + i) for i, text in enumerate(tqdm(texts, desc="engine", unit="prompt"))]
    watch.lap("generate_engine")
    return generations, perplexities


def train_family_classifier(splits: dict, budget: Budget, seed: int, bf16: bool = False):
    """The family classifier, its held-out report, and the training sayings with their embeddings.

    Trained on the train split's distinct sayings, checked on the test split's; the same training
    embeddings serve the near-copy metric.
    """
    import numpy as np

    from folksy.evaluation.families import classifier_report, fit_family_classifier
    from folksy.embeddings import embed

    family_of = {row["output"]: row["meta_template"] for row in splits["train"]}
    sayings = sorted(family_of)
    if budget.training_sayings and len(sayings) > budget.training_sayings:
        sayings = sorted(np.random.default_rng(seed).choice(sayings, budget.training_sayings, replace=False).tolist())
    held_out = sorted({row["output"]: row["meta_template"] for row in splits["test"]}.items())
    embeddings = embed(sayings, progress=True, bf16=bf16)
    classifier = fit_family_classifier(embeddings, [family_of[s] for s in sayings])
    report = classifier_report(classifier, embed([s for s, _ in held_out], bf16=bf16), [f for _, f in held_out])
    return classifier, report, sayings, embeddings


def score_all(generations: dict, positions: dict, prompts, shared: list[int], classifier, training_sayings, training_embeddings, families, bf16: bool = False):
    """Every metric for every system (folksy.evaluation.metrics.system_metrics), plus predicted families and nearest similarities."""
    from folksy.corpus.lexicon import plural
    from folksy.evaluation.families import predict_families
    from folksy.embeddings import embed
    from folksy.evaluation.metrics import system_metrics

    scores, predicted, nearest = {}, {}, {}
    for system in SYSTEMS:
        answered = [prompts[i] for i in positions[system]]
        local = {position: index for index, position in enumerate(positions[system])}
        embeddings = embed(generations[system], bf16=bf16)
        predicted[system], _ = predict_families(classifier, embeddings)
        scores[system], nearest[system] = system_metrics(
            generations[system],
            embeddings,
            predicted[system],
            families=families,
            training_sayings=training_sayings,
            training_embeddings=training_embeddings,
            references=[p.references for p in answered],
            seed_words=[p.seed_words or None for p in answered],
            plural=plural,
            shared=[local[i] for i in shared],
        )
    return scores, predicted, nearest


def generations_table(prompts, positions: dict, generations: dict, predicted: dict, nearest: dict):
    """One row per prompt: the prompt, and each system's saying, predicted family and nearest-neighbour similarity."""
    import pandas as pd

    def column(system, values):  # None where the system was not asked (the base beyond the shared prompts)
        by_position = dict(zip(positions[system], values))
        return [by_position.get(i) for i in range(len(prompts))]

    table = {
        "prompt": [p.prompt for p in prompts],
        "input_type": [p.input_type for p in prompts],
        "origin": [p.origin for p in prompts],
        "prompt_family": [p.family or "" for p in prompts],
        "reference": [p.references[0] if p.references else "" for p in prompts],
        **{system: column(system, generations[system]) for system in SYSTEMS},
    }
    for system in SYSTEMS:
        table[f"{system}_family"] = column(system, predicted[system])
        table[f"{system}_nn_similarity"] = column(system, [round(float(v), 4) for v in nearest[system]])
    return pd.DataFrame(table)
