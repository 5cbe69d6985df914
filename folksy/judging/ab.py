"""The swap-consistent A/B: each pair is judged twice with the order swapped, and a side wins only when
both orders agree. Two opponents answer the same prompts: the template engine (`ab_engine_*`) and the
version that holds `production` now, the champion (`ab_champion_*`); the gate reads both."""

from folksy.evaluation.metrics import mean_words
from folksy.judging.rubric import Verdict


def ab_outcome(model_first: Verdict, other_first: Verdict, other: str = "engine") -> str:
    """One pair judged twice, order swapped: "model", `other` (the opponent), "tie", "inconsistent" or "failed".

    `model_first` showed the model's saying as A, `other_first` showed the opponent's as A. A side wins
    only when both orders agree.
    """
    first, second = model_first.winner, other_first.winner
    if first is None or second is None:
        return "failed"
    if first == "A" and second == "B":
        return "model"
    if first == "B" and second == "A":
        return other
    if first == "tie" and second == "tie":
        return "tie"
    return "inconsistent"


def ab_summary(outcomes: list[str], model_sayings: list[str], other_sayings: list[str], other: str = "engine") -> dict[str, float]:
    """`ab_<other>_*`: win, loss and tie/inconsistent rates over the pairs that were judged, and each
    side's mean length. Failed pairs are reported as a count and left out of the rates' denominator.
    """
    judged = [o for o in outcomes if o != "failed"]
    share = (lambda *kinds: sum(o in kinds for o in judged) / len(judged)) if judged else (lambda *kinds: float("nan"))
    return {f"ab_{other}_{name}": value for name, value in {
        "pairs": len(outcomes),
        "failures": len(outcomes) - len(judged),
        "win_rate": share("model"),
        "loss_rate": share(other),
        "tie_rate": share("tie", "inconsistent"),
        "inconsistent_rate": share("inconsistent"),
        "model_mean_words": mean_words(model_sayings),
        "opponent_mean_words": mean_words(other_sayings),
        "model_mean_chars": sum(map(len, model_sayings)) / max(len(model_sayings), 1),
        "opponent_mean_chars": sum(map(len, other_sayings)) / max(len(other_sayings), 1),
    }.items()}


def engine_answers(prompts: list[str], rows: list[dict], seed: int) -> list[str]:
    """The template engine's saying for each prompt, told the row's input type where it is a known one."""
    from folksy.corpus.engine import respond
    from folksy.corpus.prompts import INPUT_TYPES

    return [
        respond(prompt, input_type=row.get("input_type") if row.get("input_type") in INPUT_TYPES else None, seed=seed + i)
        for i, (prompt, row) in enumerate(zip(prompts, rows))
    ]


def swap_consistent_ab(judge, model_side: list[str], other_side: list[str], prompts: list[str], other: str = "engine"):
    """Each pair judged in both orders: (outcomes, verdicts with the model first, verdicts with it second)."""
    what = f"A/B comparisons against the {other}"
    model_first = judge.compare(list(zip(model_side, other_side)), prompts, progress=True, what=what)
    other_first = judge.compare(list(zip(other_side, model_side)), prompts, progress=True, what=what)
    return [ab_outcome(a, b, other) for a, b in zip(model_first, other_first)], model_first, other_first


def find_champion(champion_uri: str, model_uri: str) -> dict | None:
    """The version behind `champion_uri` (models:/<name>@<alias>) now: {"name", "version", "run_id", "uri",
    "is_candidate"}, pinned to its version number so an alias that moves meanwhile changes nothing. None when
    no version holds the alias (the first model of a registry has no champion)."""
    from folksy.errors import FolksyError
    from folksy.lineage import alias_version, source_run_id

    reference = champion_uri.removeprefix("models:/")
    if not champion_uri.startswith("models:/") or "@" not in reference:
        raise FolksyError(f"--champion-uri '{champion_uri}': expected models:/<name>@<alias>")
    name, alias = reference.split("@", 1)
    version = alias_version(name, alias)
    if version is None:
        return None
    return {"name": name, "version": int(version.version), "run_id": version.run_id, "uri": f"models:/{name}/{version.version}",
            "is_candidate": version.run_id == source_run_id(model_uri)}


def champion_ab(judge, champion_uri: str, model_uri: str, model_side: list[str], prompts: list[str], seed: int, max_failure_share: float, log=print):
    """The candidate against the champion on the A/B prompts, the champion's sayings generated as the
    candidate's were (same prompts, same seed): (metrics, per-pair rows). Without a champion, or when the
    candidate is the champion (`ab_champion_is_candidate` 1), no pair is judged: `ab_champion_pairs` is 0
    (`ab_champion_version` 0: none)."""
    from folksy.best_of import served_sayings
    from folksy.judging.summary import check_failures

    champion = find_champion(champion_uri, model_uri)
    if champion is None or champion["is_candidate"] or not model_side:
        log(f"judge: no champion A/B ({'no version holds ' + champion_uri if champion is None else 'the candidate is ' + champion['uri']})")
        return {"ab_champion_pairs": 0, "ab_champion_version": champion["version"] if champion else 0,
                "ab_champion_is_candidate": float(bool(champion and champion["is_candidate"]))}, []
    log(f"judge: A/B against the champion {champion['uri']}")
    champion_side, _ = served_sayings(champion["uri"], prompts, seed, progress=True)  # as it serves them, as the candidate's were
    outcomes, model_first, champion_first = swap_consistent_ab(judge, model_side, champion_side, prompts, other="champion")
    check_failures(model_first + champion_first, max_failure_share, "A/B comparisons against the champion")
    rows = [
        {"prompt": p, "model_saying": m, "champion_saying": c, "outcome": o, "model_first": vars(a), "champion_first": vars(b)}
        for p, m, c, o, a, b in zip(prompts, model_side, champion_side, outcomes, model_first, champion_first)
    ]
    return {**ab_summary(outcomes, model_side, champion_side, "champion"), "ab_champion_version": champion["version"], "ab_champion_is_candidate": 0.0}, rows


def ab_line(metrics: dict) -> str:
    """The A/B results in one line, for the judge's last message and `folksy status`."""
    text = f"vs engine win {metrics['ab_engine_win_rate']:.0%} loss {metrics['ab_engine_loss_rate']:.0%}"
    if metrics.get("ab_champion_pairs"):
        text += f"; vs champion v{int(metrics['ab_champion_version'])} win {metrics['ab_champion_win_rate']:.0%} loss {metrics['ab_champion_loss_rate']:.0%}"
    return text
