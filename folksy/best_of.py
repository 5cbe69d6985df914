"""Best-of-n: sample several sayings per prompt and keep the ones the critic rates highest.

No MLflow here. `score` is any function from a list of sayings to one number each (the critic's
expected score in practice: `critic_scores(critic)`); all candidates of all prompts are scored in
one call, so the sentence encoder sees one batch.
"""

from collections.abc import Callable, Sequence


def pick_best(candidates: Sequence[Sequence[str]], score: Callable[[list[str]], Sequence[float]], keep: int = 1) -> list[list[str]]:
    """For each prompt's candidates, the `keep` distinct sayings scored highest, best first.

    Ties go to the earlier sample, so best-of-1 is exactly plain sampling. A prompt with fewer distinct
    candidates than `keep` gets its repeats back in sample order after the distinct ones."""
    flat = [saying for options in candidates for saying in options]
    scores = list(score(flat)) if flat else []
    if len(scores) != len(flat):
        raise ValueError(f"score returned {len(scores)} numbers for {len(flat)} sayings")
    picked, start = [], 0
    for options in candidates:
        ranked = sorted(range(len(options)), key=lambda i: (-scores[start + i], i))
        distinct, repeats, seen = [], [], set()
        for i in ranked:
            (repeats if options[i] in seen else distinct).append(options[i])
            seen.add(options[i])
        picked.append((distinct + repeats)[:keep])
        start += len(options)
    return picked


def critic_scores(critic) -> Callable[[list[str]], list[float]]:
    """The critic's raw expected score as a `score` function for pick_best: it orders sayings as the
    calibrated 1-5 score does, without the flat steps of the isotonic map that would make ties."""
    return lambda sayings: [float(s) for s in critic.raw(sayings)]
