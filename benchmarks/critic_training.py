"""How long training a critic takes, and what its solver settings change (issues 17 and 13).

    python benchmarks/critic_training.py                 # the picker critic, ~5 min on 2 cores
    python benchmarks/critic_training.py --critic default

Embeds the critic's training texts once, then trains the critic twice from those same vectors, in one
process: as before (sklearn's L-BFGS tolerance 1e-4, the BLAS library's own thread count) and as it ships
(CriticSettings: tolerance 1e-6, one BLAS thread). Prints for each: the whole training and the time in
the logistic fits, the variant cross-validation picked, and how far apart the two critics score the
realistic set and every reading's sayings (the 1-5 score, and Spearman between the two). Figures:
docs/benchmarks.md, "Training the critic".
"""

import argparse
import dataclasses
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def texts_to_compare() -> list[str]:
    from folksy.jsonl import read_jsonl

    texts = [row["text"] for row in read_jsonl(ROOT / "corpus" / "judge_realistic.jsonl")]
    for path in sorted((ROOT / "benchmarks" / "reading").glob("readings-*.jsonl")):
        texts += [row["text"] for row in read_jsonl(path)]
    return list(dict.fromkeys(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--critic", choices=("picker", "default"), default="picker")
    parser.add_argument("--corpus", default=str(ROOT / "corpus" / "training_pairs.jsonl"))
    args = parser.parse_args()

    import numpy as np
    from threadpoolctl import threadpool_info

    import folksy.judging.critic as critic_module
    from folksy.embeddings import embed
    from folksy.judging.summary import spearman

    blas = [(pool["internal_api"], pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "blas"]
    print(f"BLAS libraries (threads): {blas}")
    vectors: dict[tuple, object] = {}

    def embed_once(texts, progress=False):
        key = tuple(texts)
        if key not in vectors:
            vectors[key] = np.asarray(embed(list(texts), progress=progress), dtype=np.float32)
        return vectors[key]

    fit_seconds = [0.0]
    fit_heads = critic_module.fit_heads

    def timed_fit_heads(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fit_heads(*args, **kwargs)
        finally:
            fit_seconds[0] += time.perf_counter() - start

    critic_module.fit_heads = timed_fit_heads
    train = critic_module.train_picker_critic if args.critic == "picker" else critic_module.train_default_critic
    train(args.corpus, embed_fn=embed_once, log=lambda _: None)  # embeds the texts: neither timing below counts it
    shipped = critic_module.CriticSettings()
    before = dataclasses.replace(shipped, solver_tol=1e-4, blas_threads=None)
    critics = {}
    for name, settings in (("before (tol 1e-4, BLAS threads as the library sets)", before), ("shipped (tol 1e-6, 1 BLAS thread)", shipped)):
        fit_seconds[0] = 0.0
        start = time.perf_counter()
        critic, report = train(args.corpus, settings, embed_fn=embed_once, log=lambda _: None)
        total = time.perf_counter() - start
        picked = report["picked"]
        print(
            f"{name}: {total:.1f} s to train, {fit_seconds[0]:.1f} s of it in the logistic fits; picked features={picked['use_features']} "
            f"C={picked['strength']:g}, cross-validated Spearman {picked['cv_spearman']:.4f} (3-5: {picked['cv_spearman_3to5']:.4f})",
            flush=True,
        )
        critics[name] = (critic, fit_seconds[0])
    (old, old_fit), (new, new_fit) = critics.values()
    print(f"fits: {old_fit / new_fit:.1f}x faster")
    texts = texts_to_compare()
    old_scores = np.array([score for score, _, _ in old.score(texts)])
    new_scores = np.array([score for score, _, _ in new.score(texts)])
    gap = np.abs(old_scores - new_scores)
    print(
        f"on {len(texts)} sayings (realistic set + readings): score gap mean {gap.mean():.4f}, 99th percentile {np.quantile(gap, 0.99):.4f}, "
        f"max {gap.max():.4f}; Spearman between the two critics {spearman(old_scores.tolist(), new_scores.tolist()):.5f}"
    )


if __name__ == "__main__":
    main()
