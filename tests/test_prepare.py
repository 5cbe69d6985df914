"""The prepare entry point, run as MLproject runs it, against a real temporary tracking store."""

import json

import pytest

from tests.conftest import run_step
from tests.test_data import FAMILIES, pair, write_lines


@pytest.fixture
def small_corpus(tmp_path):
    rows = []
    for f, family in enumerate(FAMILIES):
        for i in range(30):
            saying = f"A {family.replace('_', ' ')} number {i} ain't worth a nickel on Sunday."
            for kind in ("word_seeded", "category_seeded", "persona_seeded"):
                rows.append(pair(i, family, output=saying, input=f"{kind} prompt {f}-{i}", input_type=kind))
    rows.append(rows[0])  # one exact duplicate pair
    return write_lines(tmp_path / "corpus.jsonl", rows), len(rows)


def only_run():
    import mlflow

    [run] = mlflow.search_runs(experiment_names=["folksy-test"], output_format="list")
    return run


def test_prepare_logs_splits_datasets_and_counts(tracking_uri, small_corpus, tmp_path):
    path, n_rows = small_corpus
    result = run_step("steps.prepare", "--corpus", path, "--seed", "3")
    assert result.returncode == 0, result.stderr
    run = only_run()
    assert run.info.status == "FINISHED" and run.info.run_name == "prepare"
    assert run.data.params["seed"] == "3" and len(run.data.params["corpus_sha256"]) == 64
    metrics = run.data.metrics
    assert metrics["duplicates_dropped"] == 1 and metrics["bad_lines"] == 0
    assert metrics["rows_train"] + metrics["rows_val"] + metrics["rows_test"] == n_rows - 1
    assert metrics["rows_test"] == 7 * round(30 * 0.05) * 3  # stratified and grouped: whole sayings per family
    assert metrics["rows_test_family_deconstruction"] == round(30 * 0.05) * 3

    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="splits", dst_path=str(tmp_path / "dl"))
    rows = [json.loads(line) for line in open(f"{local}/train.jsonl")]
    assert set(rows[0]) == {"prompt", "completion", "meta_template", "input_type", "source_words", "output"}
    assert rows[0]["prompt"][0]["role"] == "system" and rows[0]["completion"][0]["content"] == rows[0]["output"]
    contexts = sorted(i.tags[0].value for i in run.inputs.dataset_inputs)
    assert contexts == ["testing", "training", "validation"]


def test_bad_corpus_fails_in_one_line_and_logs_no_splits(tracking_uri, tmp_path):
    path = write_lines(tmp_path / "corpus.jsonl", [pair(1), b"{broken\n"])
    result = run_step("steps.prepare", "--corpus", path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: {path}:2: invalid JSON")
    run = only_run()
    assert run.info.status == "FAILED"
    from mlflow import MlflowClient

    assert MlflowClient().list_artifacts(run.info.run_id) == []


def test_skip_mode_counts_and_logs_bad_lines(tracking_uri, small_corpus, tmp_path):
    path, _ = small_corpus
    with open(path, "ab") as handle:
        handle.write(b"\xff\xfe\n")
    result = run_step("steps.prepare", "--corpus", path, "--on-error", "skip")
    assert result.returncode == 0, result.stderr
    assert only_run().data.metrics["bad_lines"] == 1


@pytest.mark.parametrize(
    "args, message",
    [(["--train-ratio", "0.8"], "must sum to 1"), (["--seed", "1.5"], "whole number"), (["--on-error", "ignore"], "'ignore' is not one of")],
)
def test_bad_parameters_are_refused_before_any_run(tracking_uri, args, message):
    result = run_step("steps.prepare", *args)
    assert result.returncode == 2
    assert message in result.stderr
