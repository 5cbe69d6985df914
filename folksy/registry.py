"""What `register` records about a version: its JSON registry entry (registry/<name>/v<N>.json), written
atomically. No MLflow calls of its own."""

from folksy.defaults import PRODUCTION_ALIAS, STAGING_ALIAS


def run_seconds(run) -> float | None:
    if run is None or not run.info.end_time:
        return None
    return round((run.info.end_time - run.info.start_time) / 1000, 1)


def framework_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "transformers", "trl", "peft", "mlflow", "sentence-transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def registry_entry(name, version, decision, thresholds, train, prepare, evaluate, judge) -> dict:
    import datetime
    import platform

    from folksy.gate import targets

    params = train.data.params
    return {
        "model_id": f"{name}/{version}",
        "base_model": params.get("base_model"),
        "method": params.get("method"),
        "hyperparameters": {k: v for k, v in sorted(params.items()) if not k.endswith("run_id")},
        "dataset": {
            "name": (prepare.data.params.get("corpus") if prepare else None),
            "size": (prepare.data.metrics.get("rows_total") if prepare else None),
            "hash": (prepare.data.params.get("corpus_sha256") if prepare else params.get("corpus_sha256")),
            "splits": {s: prepare.data.metrics.get(f"rows_{s}") for s in ("train", "val", "test")} if prepare else None,
        },
        "metrics": {
            "eval": dict(sorted(evaluate.data.metrics.items())) if evaluate else {},
            "judge": dict(sorted(judge.data.metrics.items())) if judge else {},
        },
        "artifacts": {"model_uri": f"models:/{name}/{version}", "source": f"runs:/{train.info.run_id}/model"},
        "training_metadata": {
            "hardware": params.get("hardware") or train.data.tags.get("folksy.hardware") or f"{platform.machine()} ({platform.processor() or 'cpu'})",
            "durations_seconds": {
                "prepare": run_seconds(prepare),
                "train": run_seconds(train),
                "evaluate": run_seconds(evaluate),
                "judge": run_seconds(judge),
            },
            "framework_versions": framework_versions(),
        },
        "run_ids": {
            "prepare": prepare.info.run_id if prepare else None,
            "train": train.info.run_id,
            "evaluate": evaluate.info.run_id if evaluate else None,
            "judge": judge.info.run_id if judge else None,
        },
        "gate": {"passed": decision.passed, "forced": decision.forced, "reason": decision.reason, "thresholds": vars(thresholds),
                 "targets_met": targets(judge.data.metrics if judge else {})},
        "status": PRODUCTION_ALIAS if decision.promote else STAGING_ALIAS,
        "registered_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_entry(entry: dict, directory):
    """Write the entry atomically: a reader never sees half a JSON file."""
    import json
    import os
    import tempfile
    from pathlib import Path

    name, version = entry["model_id"].rsplit("/", 1)
    target = Path(directory) / name / f"v{version}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(entry, out, indent=2, default=str)
        out.write("\n")
    os.replace(staging, target)
    return target


def model_description(name: str) -> str:
    """The registered model's description: what it is, how to load it, what its aliases mean."""
    return f"""Folksy proverbs: a small chat model fine-tuned to answer a request ("Tell me something about rain.")
with one short, original piece of made-up folk wisdom.

```python
import mlflow
model = mlflow.pyfunc.load_model("models:/{name}@{PRODUCTION_ALIAS}")
model.predict(["Tell me something about rain."])   # params: temperature, top_p, max_new_tokens, num_return_sequences, seed
```

Aliases: `{STAGING_ALIAS}` is the newest registered version; `{PRODUCTION_ALIAS}` moves only when a version passes
folksy's gate (judge figures checked against readers, and A/B wins against the template engine and the version
in production). Each version's description gives its gate decision and key figures; its tags hold every
judge metric, and `registry/{name}/v<N>.json` in the project holds the full entry."""


# (label, metric key in the judge run's or evaluate run's metrics, format)
KEY_FIGURES = (
    ("judge mean (1-5)", "judge", "judge_mean", "{:.2f}"),
    ("share of judge scores 1-2", "judge", "judge_low_share", "{:.0%}"),
    ("judge vs readers on real outputs (Spearman)", "judge", "judge_realistic_spearman", "{:.3f}"),
    ("A/B vs template engine: win", "judge", "ab_engine_win_rate", "{:.0%}"),
    ("A/B vs template engine: loss", "judge", "ab_engine_loss_rate", "{:.0%}"),
    ("A/B vs production: win", "judge", "ab_champion_win_rate", "{:.0%}"),
    ("A/B vs production: loss", "judge", "ab_champion_loss_rate", "{:.0%}"),
    ("perplexity on test completions", "evaluate", "model/perplexity", "{:.2f}"),
    ("distinct-2", "evaluate", "model/distinct_2", "{:.3f}"),
    ("near-copy share of training sayings", "evaluate", "model/near_copy_share", "{:.0%}"),
    ("prompt adherence", "evaluate", "model/prompt_adherence", "{:.0%}"),
)


def version_description(decision, train, evaluate, judge) -> str:
    """One version's description (Markdown, as the registry page shows it): the gate's decision and
    reason first, then what was trained and the figures a reader compares versions by."""
    if decision.forced:
        verdict = f"**Forced into {PRODUCTION_ALIAS}** (the gate said: {decision.reason})"
    elif decision.promote:
        verdict = f"**Gate passed: {PRODUCTION_ALIAS}.** {decision.reason}"
    else:
        verdict = f"**Gate failed: {STAGING_ALIAS} only.** {decision.reason}"
    params = train.data.params
    trained = (f"Fine-tuned from `{params.get('base_model', '?')}` ({params.get('method', '?')}, "
               f"{int(train.data.metrics.get('trained_steps', 0))} steps, learning rate {params.get('learning_rate', '?')}, "
               f"{params.get('train_examples', '?')} training examples, corpus `{(params.get('corpus_sha256') or '?')[:12]}`).")
    runs = {"judge": judge, "evaluate": evaluate}
    rows = [f"| {label} | {form.format(runs[step].data.metrics[key])} |" for label, step, key, form in KEY_FIGURES
            if runs[step] is not None and key in runs[step].data.metrics]
    figures = "\n".join(["| figure | value |", "|---|---|", *rows]) if rows else "No judge or evaluate run scored this model."
    ids = ", ".join(f"{step} `{run.info.run_id}`" for step, run in (("train", train), ("evaluate", evaluate), ("judge", judge)) if run is not None)
    return f"{verdict}\n\n{trained}\n\n{figures}\n\nRuns: {ids}."
