"""prepare: validate the corpus, drop duplicates, split 90/5/5 without leaks, log the splits.

Reads:  a corpus JSONL (default corpus/training_pairs.jsonl).
Writes: run artifacts splits/{train,val,test}.jsonl (conversational prompt/completion rows),
        splits/stats.json and split_families.png; datasets via mlflow.log_input;
        param corpus_sha256. `train`, `evaluate` and `judge` take this run's id as --prepare-run-id.
"""

import click

from folksy.defaults import CORPUS


@click.command(help=__doc__)
@click.option("--corpus", default=CORPUS, show_default=True, help="Corpus JSONL to read.")
@click.option("--seed", type=float, default=42, show_default=True, help="Seed for the split.")
@click.option("--train-ratio", type=float, default=0.9, show_default=True)
@click.option("--val-ratio", type=float, default=0.05, show_default=True)
@click.option("--test-ratio", type=float, default=0.05, show_default=True)
@click.option(
    "--on-error",
    type=click.Choice(["fail", "skip"]),
    default="fail",
    show_default=True,
    help="fail: stop at the first bad line; skip: drop bad lines, count and log them.",
)
def prepare(corpus, seed, train_ratio, val_ratio, test_ratio, on_error):
    import json
    import tempfile
    from pathlib import Path

    from folksy.base_models import file_sha256
    from folksy.chat import to_prompt_completion
    from folksy.data import check_ratios, dedupe, read_corpus, split_rows, split_stats
    from folksy.defaults import project_path
    from folksy.errors import FolksyError
    from folksy.jsonl import write_jsonl
    from folksy.lineage import SPLIT_CONTEXTS, split_frame
    from folksy.plots import plot_split_families
    from folksy.tracking import step_run

    corpus_path = project_path(corpus)
    try:
        ratios = check_ratios(train_ratio, val_ratio, test_ratio)
        if seed != int(seed):
            raise FolksyError(f"--seed must be a whole number, got {seed}")
    except FolksyError as error:
        raise click.BadParameter(str(error)) from None

    with step_run("prepare") as run:
        import mlflow

        corpus_sha = file_sha256(corpus_path) if corpus_path.is_file() else None
        mlflow.log_params(
            {
                "corpus": str(corpus),
                "corpus_sha256": corpus_sha,
                "seed": int(seed),
                "train_ratio": ratios[0],
                "val_ratio": ratios[1],
                "test_ratio": ratios[2],
                "on_error": on_error,
            }
        )
        rows, bad = read_corpus(corpus_path, on_error=on_error)
        rows, duplicates = dedupe(rows)
        for row in rows:
            row.setdefault("input_type", "unknown")
        splits = split_rows(rows, ratios, int(seed))
        stats = split_stats(splits)
        stats["bad_lines"], stats["duplicates_dropped"] = len(bad), duplicates

        metrics = {"bad_lines": len(bad), "duplicates_dropped": duplicates, "rows_total": len(rows)}
        for name, split in stats.items():
            if isinstance(split, dict):
                metrics[f"rows_{name}"] = split["rows"]
                metrics.update({f"rows_{name}_family_{k}": v for k, v in split["families"].items()})
                metrics.update({f"rows_{name}_input_{k}": v for k, v in split["input_types"].items()})
        mlflow.log_metrics(metrics)

        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "splits"
            out.mkdir()
            for name, split in splits.items():
                write_jsonl(out / f"{name}.jsonl", (to_prompt_completion(row) for row in split))
            (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
            if bad:
                (out / "bad_lines.txt").write_text("\n".join(bad) + "\n")
            plot_split_families(stats, Path(scratch) / "split_families.png")
            mlflow.log_artifacts(str(out), artifact_path="splits")
            mlflow.log_artifact(str(Path(scratch) / "split_families.png"))

            for name, split in splits.items():  # the same table shape train and evaluate log (lineage.split_frame)
                frame = split_frame([to_prompt_completion(row) for row in split])
                dataset = mlflow.data.from_pandas(frame, source=str(corpus_path), name=f"folksy-{name}", targets="output")
                mlflow.log_input(dataset, context=SPLIT_CONTEXTS[name])
        click.echo(
            f"prepare: {len(rows)} pairs ({duplicates} duplicates, {len(bad)} bad lines dropped) -> "
            f"train {stats['train']['rows']} / val {stats['val']['rows']} / test {stats['test']['rows']}; run {run.info.run_id}"
        )


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(prepare)
