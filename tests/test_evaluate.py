"""The evaluate entry point against a real temporary tracking store, run as MLproject runs it."""

import json

import pytest

from tests.conftest import run_step


def finished_run(step: str, params: dict | None = None) -> str:
    from folksy.tracking import configure

    mlflow = configure()  # this test's store and experiment, whatever an earlier test left active
    with mlflow.start_run(run_name=step, tags={"folksy.step": step}) as run:
        if params:
            mlflow.log_params(params)
    return run.info.run_id


def runs_of(step: str):
    import mlflow

    return mlflow.search_runs(experiment_names=["folksy-test"], filter_string=f"tags.`folksy.step` = '{step}'", output_format="list")


@pytest.fixture
def small_prepare_run(tracking_uri, tmp_path) -> str:
    """The real prepare step on a 140-saying corpus from the real engine (about 30 test rows)."""
    from folksy.corpus.generate import build_corpus, to_jsonl

    rows, _ = build_corpus(seed=5, n_sayings=140)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(to_jsonl(rows))
    result = run_step("steps.prepare", "--corpus", str(corpus))
    assert result.returncode == 0, result.stderr
    [run] = runs_of("prepare")
    return run.info.run_id


def test_help_names_what_it_reads_and_writes():
    from click.testing import CliRunner

    from steps.evaluate import evaluate

    text = CliRunner().invoke(evaluate, ["--help"]).output
    for needle in ("runs:/", "models:/", "--prepare-run-id", "splits/train.jsonl", "eval_results.json", "model/*", "docs/metrics.md"):
        assert needle in text, needle


def test_inputs_default_to_the_train_run_and_its_prepare_run(tracking_uri):
    from folksy.lineage import resolve_inputs

    older_prepare = finished_run("prepare")
    prepare = finished_run("prepare")
    train = finished_run("train", {"prepare_run_id": older_prepare, "base_model": "/models/qwen"})
    assert resolve_inputs("", "", "") == {
        "model_uri": f"runs:/{train}/model",
        "train_run_id": train,
        "prepare_run_id": older_prepare,  # the train run's own, not the newest
        "base_model": "/models/qwen",
    }
    explicit = resolve_inputs(f"runs:/{train}/model", prepare, "smollm2-135m-instruct")
    assert (explicit["prepare_run_id"], explicit["base_model"]) == (prepare, "smollm2-135m-instruct")
    # a local model directory has no train run: newest prepare run, embedded base model
    local = resolve_inputs("/some/model/dir", "", "")
    assert (local["train_run_id"], local["prepare_run_id"], local["base_model"]) == ("", prepare, "smollm2-135m-instruct")


def test_registered_model_uris_lead_back_to_their_train_run(tracking_uri):
    from mlflow import MlflowClient

    from folksy.errors import FolksyError
    from folksy.lineage import resolve_inputs

    prepare = finished_run("prepare")
    train = finished_run("train", {"prepare_run_id": prepare, "base_model": "/models/qwen"})
    client = MlflowClient()
    client.create_registered_model("folksy-proverbs")
    version = client.create_model_version("folksy-proverbs", f"runs:/{train}/model", run_id=train)
    client.set_registered_model_alias("folksy-proverbs", "production", version.version)
    logged = client.create_logged_model(client.get_run(train).info.experiment_id, name="model", source_run_id=train)
    for uri in ("models:/folksy-proverbs@production", f"models:/folksy-proverbs/{version.version}", f"models:/{logged.model_id}"):
        resolved = resolve_inputs(uri, "", "")
        assert (resolved["train_run_id"], resolved["prepare_run_id"], resolved["base_model"]) == (train, prepare, "/models/qwen")
    with pytest.raises(FolksyError, match="'models:/folksy-proverbs@nightly': no such registered or logged model"):
        resolve_inputs("models:/folksy-proverbs@nightly", "", "")


def test_without_a_train_run_it_fails_in_one_line(tracking_uri):
    result = run_step("steps.evaluate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --model-uri is empty and there is no finished train run")
    [run] = runs_of("evaluate")
    assert run.info.status == "FAILED"


def test_an_unknown_prepare_run_fails_in_one_line(tracking_uri, tmp_path):
    result = run_step("steps.evaluate", "--model-uri", str(tmp_path), "--prepare-run-id", "0123456789abcdef")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --prepare-run-id 0123456789abcdef: cannot read splits/train.jsonl")
    [run] = runs_of("evaluate")
    assert run.info.status == "FAILED"
    from mlflow import MlflowClient

    assert MlflowClient().list_artifacts(run.info.run_id) == []  # nothing half-written


def test_a_model_uri_that_is_no_model_fails_in_one_line(tracking_uri, small_prepare_run, tmp_path):
    result = run_step("steps.evaluate", "--model-uri", str(tmp_path / "nowhere"), "--quick", "true")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: model_uri '{tmp_path / 'nowhere'}': cannot be loaded")
    [run] = runs_of("evaluate")
    assert run.info.status == "FAILED"
    from mlflow import MlflowClient

    assert MlflowClient().list_artifacts(run.info.run_id) == []


def test_too_few_prompts_is_refused_before_any_generation(tracking_uri, small_prepare_run, tmp_path):
    result = run_step("steps.evaluate", "--model-uri", str(tmp_path), "--num-prompts", "20")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "Error: --num-prompts must be at least 35 (5 input types x 7 families), got 20"


PER_SYSTEM = {
    "generations", "mean_words", "empty_share", "distinct_1", "distinct_2", "self_bleu", "near_duplicate_share",
    "near_copy_share", "nn_similarity_mean", "exact_copy_share", "ngram_novelty_4", "prompt_adherence",
    "families_present", "family_entropy", "unclassified_share", "bleu", "rouge1", "rouge2", "rougeL",
}


@pytest.mark.slow
def test_quick_evaluation_logs_every_metric_table_plot_and_dataset(tracking_uri, small_prepare_run, tiny_qwen2_dir, tmp_path):
    """Smoke test: the real command, --quick, a tiny random model as both model and base."""
    import math

    import mlflow
    from mlflow import MlflowClient

    from folksy.corpus.engine import FAMILIES

    result = run_step(
        "steps.evaluate", "--model-uri", tiny_qwen2_dir, "--base-model", tiny_qwen2_dir, "--quick", "true", "--base-prompts", "37"
    )
    assert result.returncode == 0, result.stderr
    assert "evaluate: model bleu" in result.stdout
    [run] = runs_of("evaluate")
    assert run.info.status == "FINISHED"
    params, metrics = run.data.params, run.data.metrics
    assert params["prepare_run_id"] == small_prepare_run  # the newest prepare run, as no train run names one
    assert (params["num_prompts"], params["base_prompts"], params["max_new_tokens"]) == ("40", "37", "16")
    assert "tok:13a" in params["bleu_signature"]

    family_keys = {f"family_share/{family}" for family in FAMILIES}
    for system in ("model", "base", "engine"):
        logged = {name.split("/", 1)[1] for name in metrics if name.startswith(f"{system}/")}
        assert logged == PER_SYSTEM | family_keys | ({"perplexity"} if system != "engine" else set()), system
        assert all(not math.isnan(metrics[f"{system}/{name}"]) for name in logged), system
        assert all(0 <= metrics[f"{system}/{name}"] <= 1 for name in logged if "share" in name or "distinct" in name)
    assert (metrics["model/generations"], metrics["base/generations"], metrics["engine/generations"]) == (40, 37, 40)
    # an untrained model spreads its bets over the whole vocabulary: perplexity near the vocabulary size
    assert 10_000 < metrics["model/perplexity"] < 200_000
    assert metrics["model/perplexity"] == metrics["base/perplexity"]  # the same weights
    # the engine always works the seeded word in, and its sayings are the corpus's kind
    assert metrics["engine/prompt_adherence"] == 1.0
    assert metrics["engine/nn_similarity_mean"] > metrics["model/nn_similarity_mean"]
    assert 0.5 < metrics["family_classifier_accuracy"] <= 1

    client = MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"eval_results.json", "generations.json", "family_coverage.png", "nn_similarity.png"} <= artifacts
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl"))
    for image in ("family_coverage.png", "nn_similarity.png"):
        assert open(f"{local}/{image}", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    results = json.load(open(f"{local}/eval_results.json"))
    assert results["metrics"]["engine"]["prompt_adherence"] == 1.0 and results["prompts"]["shared_with_base"] == 37
    assert set(results["family_classifier"]) >= {"accuracy", "unclassified_share", "confusion"}

    table = mlflow.load_table("generations.json", run_ids=[run.info.run_id])
    assert len(table) == 40
    assert {"prompt", "input_type", "model", "base", "engine", "model_family", "engine_nn_similarity"} <= set(table.columns)
    assert table["base"].isna().sum() == 3  # the base model answered only the 37 shared prompts
    assert set(table["input_type"]) == {"word_seeded", "category_seeded", "persona_seeded", "template_seeded", "open_ended"}
    assert set(table.loc[table["input_type"] == "template_seeded", "prompt_family"]) >= set(FAMILIES)

    prepared = client.get_run(small_prepare_run).inputs.dataset_inputs
    [linked] = run.inputs.dataset_inputs
    assert linked.dataset.digest in {d.dataset.digest for d in prepared if d.tags[0].value == "testing"}
