"""Every figure the steps log, drawn with one helper. matplotlib is imported only when a figure is drawn.

Reference lines come from the constants they show (the gate's threshold, the near-copy cut-off),
never from a copy of their value.
"""

from contextlib import contextmanager


@contextmanager
def saved_figure(path, columns: int = 1, figsize=(8, 4.5)):
    """Yield the axes of a new figure (one, or a tuple of `columns`); on exit save it to `path` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=figsize)
    try:
        yield axes
        figure.tight_layout()
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)


def plot_split_families(stats: dict, path) -> None:
    """prepare: the share of each template family in train, val and test (the split is stratified)."""
    families = sorted(stats["train"]["families"])
    with saved_figure(path, figsize=(9, 4)) as axis:
        width = 0.27
        for offset, name in enumerate(("train", "val", "test")):
            total = max(stats[name]["rows"], 1)
            shares = [100 * stats[name]["families"].get(f, 0) / total for f in families]
            axis.bar([i + (offset - 1) * width for i in range(len(families))], shares, width, label=name)
        axis.set_xticks(range(len(families)), [f.replace("_", "\n") for f in families], fontsize=8)
        axis.set_ylabel("% of rows")
        axis.set_title("Template families per split (stratified)")
        axis.legend()


def plot_loss_curve(train_points: list[tuple[int, float]], eval_points: list[tuple[int, float]], path) -> None:
    """train: train loss (per logging step) and val loss (per eval) against the optimizer step."""
    with saved_figure(path) as axis:
        if train_points:
            axis.plot(*zip(*sorted(train_points)), label="train loss", color="tab:blue", linewidth=1.2)
        if eval_points:
            axis.plot(*zip(*sorted(eval_points)), label="val loss", color="tab:orange", marker="o")
            best_step, best = min(eval_points, key=lambda point: point[1])
            axis.annotate(f"best {best:.3f}", (best_step, best), textcoords="offset points", xytext=(0, -16), ha="center")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("completion NLL (nats/token)")
        axis.set_title("train: loss on the saying and its end-of-turn token")
        axis.grid(alpha=0.3)
        axis.legend()


def plot_family_coverage(shares: dict[str, dict[str, float]], families: list[str], path) -> None:
    """evaluate: grouped bars, for each family (and "unclassified"), the share of each system's generations."""
    from folksy.evaluation.families import UNCLASSIFIED

    labels = list(families) + [UNCLASSIFIED]
    with saved_figure(path, figsize=(10, 4.2)) as axis:
        width = 0.8 / len(shares)
        for offset, (system, by_family) in enumerate(shares.items()):
            positions = [i + (offset - (len(shares) - 1) / 2) * width for i in range(len(labels))]
            axis.bar(positions, [100 * by_family.get(label, 0.0) for label in labels], width, label=system)
        axis.axhline(100 / len(families), color="grey", linestyle=":", linewidth=1, label="even spread")
        axis.set_xticks(range(len(labels)), [label.replace("_", "\n") for label in labels], fontsize=8)
        axis.set_ylabel("% of generations")
        axis.set_title("Template family of each generation (logistic regression on MiniLM embeddings)")
        axis.legend()


def plot_nn_similarity(similarities: dict[str, "object"], path) -> None:
    """evaluate: overlaid histograms of each generation's cosine similarity to its nearest training saying."""
    import numpy as np

    from folksy.evaluation.metrics import NEAR_THRESHOLD

    with saved_figure(path, figsize=(8, 4)) as axis:
        bins = np.linspace(0, 1, 41)
        for system, values in similarities.items():
            axis.hist(np.clip(values, 0, 1), bins=bins, histtype="step", linewidth=2, label=f"{system} (n={len(values)})")
        axis.axvline(NEAR_THRESHOLD, color="black", linestyle="--", linewidth=1, label=f"near-copy ({NEAR_THRESHOLD})")
        axis.set_xlabel("cosine similarity to the nearest training saying (all-MiniLM-L6-v2)")
        axis.set_ylabel("generations")
        axis.set_title("How close do generations come to the training sayings?")
        axis.legend()


def plot_judge_summary(judgements, calibration_items, calibration_judgements, outcomes, path, metrics=None) -> None:
    """judge: the score histogram with the gate's threshold, the judge against the held-out labels, the A/B,
    and (given the run's metrics) the judge's mean per source of real outputs beside the readers'."""
    import matplotlib.pyplot as plt
    import numpy as np

    from folksy.gate import GateThresholds

    gate = GateThresholds()
    threshold = gate.min_judge_mean
    with saved_figure(path, columns=4, figsize=(20, 4.4)) as (scores_axis, calibration_axis, realistic_axis, ab_axis):
        scores = [j.score for j in judgements if j.score is not None]
        scores_axis.hist(scores, bins=np.arange(0.875, 5.2, 0.25), color="#4c72b0", edgecolor="white")
        if scores:
            scores_axis.axvline(np.mean(scores), color="black", linestyle="--", label=f"mean {np.mean(scores):.2f}")
        scores_axis.axvline(threshold, color="#c44e52", linestyle=":", label=f"gate: mean >= {threshold:g}")
        scores_axis.legend()
        scores_axis.set(title=f"Model sayings (n={len(scores)})", xlabel="judge score (1-5)", ylabel="sayings", xlim=(0.75, 5.25))

        rng = np.random.default_rng(0)
        kinds = sorted({item["kind"] for item in calibration_items})
        for kind, colour in zip(kinds, plt.cm.tab10.colors):
            pairs = [(item["label"], j.score) for item, j in zip(calibration_items, calibration_judgements) if item["kind"] == kind and j.score is not None]
            if pairs:
                labels, values = zip(*pairs)
                calibration_axis.scatter(np.array(labels) + rng.uniform(-0.15, 0.15, len(labels)), values, s=18, label=kind, color=colour)
        calibration_axis.plot([1, 5], [1, 5], color="grey", linewidth=1)
        calibration_axis.set(title="Judge vs. labels (held-out calibration items)", xlabel="label", ylabel="judge score", xlim=(0.5, 5.5), ylim=(0.75, 5.25))
        calibration_axis.legend(fontsize=7, loc="upper left")

        prefix = "judge_realistic_label_mean_"
        sources = sorted((k.removeprefix(prefix) for k in (metrics or {}) if k.startswith(prefix)), key=lambda s: -metrics[prefix + s])
        positions = np.arange(len(sources))
        realistic_axis.barh(positions + 0.2, [metrics[prefix + s] for s in sources], height=0.4, color="#8c8c8c", label="readers")
        realistic_axis.barh(positions - 0.2, [metrics[f"judge_realistic_mean_{s}"] for s in sources], height=0.4, color="#4c72b0", label="judge")
        realistic_axis.set_yticks(positions, [s.replace("calibration_", "cal. ") for s in sources], fontsize=7)
        realistic_axis.invert_yaxis()
        if sources:
            realistic_axis.set_title(
                f"Real outputs read blind: Spearman {metrics['judge_realistic_spearman']:.2f} (gate >= {gate.min_realistic_spearman:g}),\n"
                f"among labels 3-5 {metrics['judge_realistic_spearman_3to5']:.2f} (gate >= {gate.min_realistic_spearman_3to5:g})", fontsize=9,
            )
            realistic_axis.legend(fontsize=7, loc="lower right")
        realistic_axis.set(xlabel="mean score (1-5)", xlim=(1, 5))

        names = ["model", "engine", "tie", "inconsistent", "failed"]
        ab_axis.bar(names, [outcomes.count(n) for n in names], color=["#55a868", "#c44e52", "#8c8c8c", "#dd8452", "black"])
        ab_axis.set(title=f"A/B against the template engine ({len(outcomes)} pairs, both orders)", ylabel="pairs")


def plot_sweep(curves: dict[str, list[tuple[int, float]]], best: str, path) -> None:
    """sweep: every point's val loss against the step, the best point drawn bold."""
    with saved_figure(path) as axis:
        for label, points in curves.items():
            if points:
                axis.plot(*zip(*sorted(points)), marker="o", markersize=3, label=label, linewidth=2.5 if label == best else 1.2)
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("val completion NLL (nats/token)")
        axis.set_title(f"sweep: val loss per point (best: {best})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
