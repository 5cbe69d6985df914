"""The swap-consistent A/B: each pair is judged twice with the order swapped, and a side wins only when
both orders agree. The engine's answers to the same prompts are the usual opponent."""

from folksy.evaluation.metrics import mean_words
from folksy.judging.rubric import Verdict


def ab_outcome(model_first: Verdict, engine_first: Verdict) -> str:
    """One pair judged twice, order swapped: "model", "engine", "tie", "inconsistent" or "failed".

    `model_first` showed the model's saying as A, `engine_first` showed the engine's as A. A side wins
    only when both orders agree.
    """
    first, second = model_first.winner, engine_first.winner
    if first is None or second is None:
        return "failed"
    if first == "A" and second == "B":
        return "model"
    if first == "B" and second == "A":
        return "engine"
    if first == "tie" and second == "tie":
        return "tie"
    return "inconsistent"


def ab_summary(outcomes: list[str], model_sayings: list[str], engine_sayings: list[str]) -> dict[str, float]:
    """Win, loss and tie/inconsistent rates over the pairs that were judged, and each side's mean length.

    Failed pairs are reported as a count and left out of the rates' denominator.
    """
    judged = [o for o in outcomes if o != "failed"]
    share = (lambda *kinds: sum(o in kinds for o in judged) / len(judged)) if judged else (lambda *kinds: float("nan"))
    return {
        "ab_pairs": len(outcomes),
        "ab_failures": len(outcomes) - len(judged),
        "ab_win_rate": share("model"),
        "ab_loss_rate": share("engine"),
        "ab_tie_rate": share("tie", "inconsistent"),
        "ab_inconsistent_rate": share("inconsistent"),
        "ab_model_mean_words": mean_words(model_sayings),
        "ab_engine_mean_words": mean_words(engine_sayings),
        "ab_model_mean_chars": sum(map(len, model_sayings)) / max(len(model_sayings), 1),
        "ab_engine_mean_chars": sum(map(len, engine_sayings)) / max(len(engine_sayings), 1),
    }


def engine_answers(prompts: list[str], rows: list[dict], seed: int) -> list[str]:
    """The template engine's saying for each prompt, told the row's input type where it is a known one."""
    from folksy.corpus.engine import respond
    from folksy.corpus.prompts import INPUT_TYPES

    return [
        respond(prompt, input_type=row.get("input_type") if row.get("input_type") in INPUT_TYPES else None, seed=seed + i)
        for i, (prompt, row) in enumerate(zip(prompts, rows))
    ]


def swap_consistent_ab(judge, model_side: list[str], other_side: list[str], prompts: list[str], what: str = "A/B comparisons"):
    """Each pair judged in both orders: (outcomes, verdicts with the model first, verdicts with it second)."""
    model_first = judge.compare(list(zip(model_side, other_side)), prompts, progress=True, what=what)
    other_first = judge.compare(list(zip(other_side, model_side)), prompts, progress=True, what=what)
    return [ab_outcome(a, b) for a, b in zip(model_first, other_first)], model_first, other_first
