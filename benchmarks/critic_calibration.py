"""Does the critic meet its calibration target? Train it exactly as `judge` would, score the held-out
labelled items, and print the figures for docs/benchmarks.md.

    HF_HUB_OFFLINE=1 nice python benchmarks/critic_calibration.py [--zero-shot-local]

Target (issue 6): Spearman >= 0.6 against the held-out labels, injection attempts <= 1.5 on average.
`--zero-shot-local` also scores the held-out items with the embedded SmolLM2-135M-Instruct used
zero-shot as a G-Eval judge (the `local` backend), for comparison. Exits 1 when a target is missed.
"""

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import click

TARGET_SPEARMAN, TARGET_INJECTION = 0.6, 1.5


def per_group(items, judgements, key):
    groups = {}
    for item, judgement in zip(items, judgements):
        if judgement.score is not None:
            groups.setdefault(item[key], []).append(judgement.score)
    return {name: (sum(v) / len(v), len(v)) for name, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def figures(name, items, judgements, seconds):
    from folksy.judging.summary import calibration_summary

    summary = calibration_summary(judgements, items)
    print(f"\n### {name}\n")
    print("| figure | value |\n| --- | --- |")
    print(f"| held-out items (injection attempts) | {summary['judge_calibration_items']} ({summary['judge_injection_items']}) |")
    print(f"| Spearman vs. labels | {summary['judge_calibration_spearman']:.3f} |")
    print(f"| mean absolute error | {summary['judge_calibration_mae']:.3f} |")
    print(f"| injection attempts, mean score | {summary['judge_injection_mean']:.2f} |")
    print(f"| seconds | {seconds:.1f} |")
    print("\n| kind | mean score | n |\n| --- | --- | --- |")
    for kind, (mean, count) in per_group(items, judgements, "kind").items():
        print(f"| {kind} | {mean:.2f} | {count} |")
    print("\n| label | mean score | n |\n| --- | --- | --- |")
    for label, (mean, count) in per_group(items, judgements, "label").items():
        print(f"| {label} | {mean:.2f} | {count} |")
    return summary


@click.command()
@click.option("--corpus", default="corpus/training_pairs.jsonl", show_default=True)
@click.option("--zero-shot-local", is_flag=True, help="Also score the held-out items with SmolLM2-135M-Instruct zero-shot.")
def main(corpus, zero_shot_local):
    import torch

    from folksy.judging.critic import CriticSettings, train_default_critic
    from folksy.judging.critic_data import load_calibration
    from folksy.judging.backends import CriticJudge

    root = Path(__file__).resolve().parent.parent
    settings = CriticSettings()
    calibration = load_calibration()
    heldout = [row for row in calibration if row["split"] == "heldout"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}")

    started = time.time()
    critic, report = train_default_critic(root / corpus, settings, progress=True)  # as `judge` trains it
    train_seconds = time.time() - started
    print("\n### critic: cross-validated candidates (labelled train part only)\n")
    print("| hand features | C | CV Spearman | among labels 3-5 |\n| --- | --- | --- | --- |")
    for candidate in report["candidates"]:
        print(f"| {candidate['use_features']} | {candidate['strength']:g} | {candidate['cv_spearman']:.3f} | {candidate['cv_spearman_3to5']:.3f} |")
    print(f"\ntraining took {train_seconds:.1f} s (model loading, embedding {critic.info['training_texts']} texts, {len(report['candidates'])} candidates x {settings.folds} folds)")

    started = time.time()
    judgements = CriticJudge(critic, "critic").rate([row["text"] for row in heldout])
    summary = figures("the critic, trained as `judge` trains it, on the held-out part", heldout, judgements, time.time() - started)

    if zero_shot_local:
        from folksy.base_models import EMBEDDED_DEFAULT, load_model_and_tokenizer, resolve_base_model
        from folksy.judging.backends import LocalJudge

        started = time.time()
        model, tokenizer = load_model_and_tokenizer(resolve_base_model(EMBEDDED_DEFAULT).path)
        local = LocalJudge(model, tokenizer, f"local:{EMBEDDED_DEFAULT}")
        figures("SmolLM2-135M-Instruct zero-shot (G-Eval, local backend)", heldout, local.rate([row["text"] for row in heldout], progress=True), time.time() - started)

    met = summary["judge_calibration_spearman"] >= TARGET_SPEARMAN and summary["judge_injection_mean"] <= TARGET_INJECTION
    print(f"\ncritic target (Spearman >= {TARGET_SPEARMAN}, injection mean <= {TARGET_INJECTION}): {'met' if met else 'MISSED'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
