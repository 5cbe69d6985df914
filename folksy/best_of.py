"""Best-of-n: sample several sayings per prompt and keep the ones the critic rates highest.

No MLflow here. `score` is any function from a list of sayings to one number each (the critic's
expected score in practice: `critic_scores(critic)`); all candidates of all prompts are scored in
one call, so the sentence encoder sees one batch.
"""

import re
from collections.abc import Callable, Sequence


def pick_best(candidates: Sequence[Sequence[str]], score: Callable[[list[str]], Sequence[float]], keep: int = 1,
              shape: Callable[[str], str] | None = None) -> list[list[str]]:
    """For each prompt's candidates, the `keep` distinct sayings scored highest, best first.

    Ties go to the earlier sample, so best-of-1 is exactly plain sampling. With `shape` (a saying's
    pattern, e.g. `saying_shape`), the best saying of each shape comes before a second saying of a shape
    already kept, so three sayings asked for are three kinds of saying where the samples allow. A prompt
    with fewer distinct candidates than `keep` gets its repeats back in sample order after the distinct ones."""
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
        if shape is not None and keep > 1:
            best_of_shape: dict[str, str] = {}
            for saying in distinct:
                best_of_shape.setdefault(shape(saying), saying)
            first = set(best_of_shape.values())
            distinct = list(best_of_shape.values()) + [saying for saying in distinct if saying not in first]
        picked.append((distinct + repeats)[:keep])
        start += len(options)
    return picked


def saying_shape(saying: str) -> str:
    """What makes two sayings the same kind: the engine pattern it parses onto (folksy.judging.fit),
    else its first three words ("the one day you need rain..." and "the one day you need a ladder..."
    are one kind)."""
    from folksy.judging.fit import parse

    parsed = parse(saying)
    return parsed["pattern"] if parsed else " ".join(re.findall(r"[a-z']+", saying.lower())[:3])


def critic_scores(critic) -> Callable[[list[str]], list[float]]:
    """The critic's raw expected score as a `score` function for pick_best: it orders sayings as the
    calibrated 1-5 score does, without the flat steps of the isotonic map that would make ties."""
    return lambda sayings: [float(s) for s in critic.raw(sayings)]


def sample_and_pick(generator, critic, prompts: list[str], keep: int = 1, best_of: int = 1, progress: bool = False, **sampling) -> list[list[str]]:
    """`keep` sayings per prompt from `generator` (a SayingGenerator): with best_of k > 1, keep * k are
    sampled and the `keep` the critic rates highest kept, one of each shape before any repeat of a shape
    (pick_best, saying_shape). What the pyfunc's predict, judge and `folksy generate` all serve.
    `sampling`: generate's temperature, top_p, max_new_tokens, seed."""
    candidates = generator.generate(prompts, num_return_sequences=keep * best_of, progress=progress, **sampling)
    return pick_best(candidates, critic_scores(critic), keep=keep, shape=saying_shape) if best_of > 1 else candidates


def served_settings(model_dir) -> tuple[int, "object | None"]:
    """A downloaded folksy pyfunc model's default best_of and its bundled critic (None without one).

    Models logged before best_of existed have neither: they serve plain sampling (1, None)."""
    from pathlib import Path

    from folksy.generation import pyfunc_flavor
    from folksy.judging.critic import Critic

    flavor = pyfunc_flavor(model_dir) or {}
    critic = (flavor.get("artifacts") or {}).get("critic")
    best_of = int((flavor.get("config") or {}).get("best_of", 1))  # where MLflow keeps a model's model_config
    return best_of, Critic.load(Path(model_dir) / critic["path"]) if critic else None


def served_picks(model_uri: str, prompts: list[str], keep: int = 1, best_of: int | None = None, progress: bool = False, **sampling) -> tuple[list[list[str]], int]:
    """`keep` sayings per prompt as the model serves them: best-of-k with its bundled critic, k being the
    model's own best_of unless `best_of` is given (1 when sampling is greedy: temperature 0 has one
    answer), and k. A plain Hugging Face directory has no critic (k is 1). `sampling`: as sample_and_pick."""
    import tempfile
    from pathlib import Path

    from folksy.errors import FolksyError
    from folksy.generation import SayingGenerator, download_hf_dir, inference_dtype

    with tempfile.TemporaryDirectory(prefix="folksy-model-") as scratch:
        if Path(model_uri).is_dir() and (Path(model_uri) / "config.json").is_file():
            hf_dir, (served, critic) = Path(model_uri), (1, None)
        else:
            hf_dir = download_hf_dir(model_uri, scratch)
            served, critic = served_settings(hf_dir.parent.parent)  # <model>/artifacts/hf_model
        k = 1 if sampling.get("temperature") == 0 else served if best_of is None else best_of
        if k > 1 and critic is None:
            raise FolksyError(f"best_of {k}: '{model_uri}' carries no critic to pick with; use best_of 1")
        generator = SayingGenerator.from_pretrained(str(hf_dir), dtype=inference_dtype())
    return sample_and_pick(generator, critic, prompts, keep, k, progress, **sampling), k


def served_sayings(model_uri: str, prompts: list[str], seed: int | None = None, progress: bool = False) -> tuple[list[str], int]:
    """One saying per prompt, as `mlflow.pyfunc.load_model(model_uri).predict(prompts)` would answer by
    default, and the model's best_of: what judge and its A/B rate, the model users get."""
    picks, best_of = served_picks(model_uri, prompts, seed=seed, progress=progress)
    return [options[0] for options in picks], best_of
