"""How far each judge agrees with a reader on real outputs: corpus/judge_realistic.jsonl's held-out items.

    python benchmarks/judge_realistic.py            # trains the shipped critic afresh (about 3 minutes) and scores
    python benchmarks/judge_realistic.py --split all
    python benchmarks/judge_realistic.py --compare-corpus-labels   # and the critic whose corpus positives are all labelled 4
    python benchmarks/judge_realistic.py --picker 'readings-*.jsonl,check-*.jsonl'   # and a picker critic (cached)

Judges compared, side by side on the same items:
- `critic`: the critic exactly as `judge` trains it (folksy.judging.critic.train_default_critic);
- `picker (globs)` with --picker: the picker critic trained on the judge's data plus the reading files
  matching the globs (critic_registry.picker_critic_dir; readings never include these held-out texts);
- `cooccurrence`: the corpus co-occurrence coherence alone (folksy.judging.coherence), fitted on the
  unique corpus sayings; the baseline from shared/notes/judge-baselines.md.
Prints, per judge, Spearman (all, and among items labelled 3-5), MAE where the scale is 1-5, and each
source's mean beside the label mean (folksy.judging.summary.realistic_summary).
"""

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=ROOT / "corpus" / "judge_realistic.jsonl")
    parser.add_argument("--split", choices=["heldout", "train", "all"], default="heldout")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--compare-corpus-labels", action="store_true", help="also train the critic with every corpus positive labelled 4 (its recipe before corpus/saying_labels.jsonl)")
    parser.add_argument("--picker", action="append", default=[], help="glob[,glob] of reading files: also score with the picker critic trained on them (repeatable)")
    options = parser.parse_args()

    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.jsonl import read_jsonl
    from folksy.judging.backends import CriticJudge
    from folksy.judging.critic import CriticSettings, train_default_critic
    from folksy.judging.critic_data import corpus_cooccurrence
    from folksy.judging.rubric import Judgement
    from folksy.judging.summary import realistic_summary

    items = [row for row in read_jsonl(options.set) if options.split == "all" or row["split"] == options.split]
    texts = [row["text"] for row in items]
    figures = {}

    cooccurrence = corpus_cooccurrence(PROJECT_ROOT / CORPUS)
    figures["cooccurrence"] = realistic_summary([Judgement(cooccurrence.scores(t)["coherence"]) for t in texts], items)

    critic, _ = train_default_critic(PROJECT_ROOT / CORPUS)
    figures["critic"] = realistic_summary(CriticJudge(critic, "critic").rate(texts), items)
    if options.compare_corpus_labels:  # the same critic with every corpus positive labelled 4, as before the reading
        critic, _ = train_default_critic(PROJECT_ROOT / CORPUS, CriticSettings(corpus_labels=False))
        figures["critic, corpus positives all 4"] = realistic_summary(CriticJudge(critic, "critic").rate(texts), items)

    for globs in options.picker:
        from folksy.judging.critic import Critic
        from folksy.judging.critic_registry import picker_critic_dir

        critic = Critic.load(picker_critic_dir(PROJECT_ROOT / CORPUS, patterns=tuple(globs.split(","))))
        figures[f"picker ({globs})"] = realistic_summary(CriticJudge(critic, "critic").rate(texts), items)

    for judge, summary in figures.items():
        print(f"\n{judge} on {len(items)} {options.split} items")
        for key, value in summary.items():
            print(f"  {key.removeprefix('judge_realistic_')}: {value:.3f}")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
