"""judge: rate a model's sayings on the rubric, A/B them against the template engine, and measure the
judge itself on labelled sayings, all in one MLflow run.

\b
Reads:  --model-uri       runs:/<train run>/model, models:/folksy-proverbs@<alias>, or a model directory
                          (default: the newest finished train run's model);
        --prepare-run-id  its splits/test.jsonl: 200 prompts spread over the input types, seeded
                          (default: the train run's prepare_run_id, else the newest finished prepare run);
        corpus/judge_calibration.jsonl, held-out part: scored on every run to show how far the judge agrees
                          with the labels;
        --backend critic: --critic-uri (default models:/folksy-critic@production; if that alias does not exist
                          a critic is trained and registered on the fly, in a nested `critic` run, from
                          corpus/training_pairs.jsonl and the calibration set's train part);
        --backend endpoint: any OpenAI-compatible server (--endpoint-url, --endpoint-model, or $FOLKSY_JUDGE_URL
                          and $FOLKSY_JUDGE_MODEL); the API key comes only from $FOLKSY_JUDGE_API_KEY or
                          $OPENAI_API_KEY and is never logged;
        --backend local:  --local-model scored G-Eval style (probability-weighted over 1-5).
Writes: metrics judge_mean, judge_low_share (< 2.5: rounds to 1-2), judge_high_share (>= 3.5), judge_count_1..5,
        judge_parse_failures, judge_calibration_spearman, judge_calibration_mae, judge_injection_mean,
        ab_win_rate, ab_tie_rate (tie or inconsistent), ...; tag judge_id; artifacts judge_results.jsonl,
        ab_results.jsonl, calibration_results.jsonl, judge_summary.png. `register` gates on these.
More than --max-failure-share failed answers (unparseable, timed out, HTTP errors) fail the run.
"""

import click

SAMPLE_SIZE, QUICK_SAMPLE_SIZE = 200, 40
AB_SIZE, QUICK_AB_SIZE = 50, 10
DEFAULT_CORPUS = "corpus/training_pairs.jsonl"
ENDPOINT_URL_ENV, ENDPOINT_MODEL_ENV = "FOLKSY_JUDGE_URL", "FOLKSY_JUDGE_MODEL"


def load_test_split(prepare_run_id: str, scratch: str) -> list[dict]:
    import mlflow

    from steps.coverage import read_split
    from steps.errors import FolksyError

    try:
        path = mlflow.artifacts.download_artifacts(run_id=prepare_run_id, artifact_path="splits/test.jsonl", dst_path=scratch)
    except Exception as error:
        raise FolksyError(f"--prepare-run-id {prepare_run_id}: cannot read splits/test.jsonl ({type(error).__name__})") from None
    return read_split(path)


def build_judge(backend, endpoint_url, endpoint_model, local_model, critic_uri, timeout, max_retries, concurrency, max_failure_share, corpus):
    """The judge object for --backend, and the id of the critic run trained on the fly (if any)."""
    import os

    from steps.judges import API_KEY_ENV, EndpointConfig, EndpointJudge

    if backend == "endpoint":
        api_key = next((os.environ[name] for name in API_KEY_ENV if os.environ.get(name)), None)
        config = EndpointConfig(endpoint_url, endpoint_model, api_key, timeout, max_retries, concurrency=concurrency)
        return EndpointJudge(config, max_failure_share, log=lambda m: click.echo(m, err=True)), None
    if backend == "local":
        from steps.base_models import load_model_and_tokenizer, resolve_base_model
        from steps.judges import LocalJudge

        resolved = resolve_base_model(local_model)
        model, tokenizer = load_model_and_tokenizer(resolved.path)
        return LocalJudge(model, tokenizer, f"local:{local_model}@{resolved.revision[:12]}"), None

    from steps.critic_model import DEFAULT_CRITIC_URI, critic_exists, load_critic, train_and_log_critic
    from steps.errors import FolksyError
    from steps.judges import CriticJudge

    trained_run = None
    if critic_uri.startswith("models:/") and not critic_exists(critic_uri):
        if critic_uri != DEFAULT_CRITIC_URI:
            raise FolksyError(f"--critic-uri '{critic_uri}': no such registered model version")
        click.echo(f"judge: {critic_uri} does not exist yet; training a critic now (about a minute)", err=True)
        _, trained_run = train_and_log_critic(corpus, log=lambda m: click.echo(m, err=True))
    critic, judge_id = load_critic(critic_uri)
    return CriticJudge(critic, judge_id), trained_run


def plot_summary(judgements, calibration_items, calibration_judgements, outcomes, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, (scores_axis, calibration_axis, ab_axis) = plt.subplots(1, 3, figsize=(15, 4.2))
    scores = [j.score for j in judgements if j.score is not None]
    scores_axis.hist(scores, bins=np.arange(0.875, 5.2, 0.25), color="#4c72b0", edgecolor="white")
    if scores:
        scores_axis.axvline(np.mean(scores), color="black", linestyle="--", label=f"mean {np.mean(scores):.2f}")
    scores_axis.axvline(3.5, color="#c44e52", linestyle=":", label="target mean 3.5")
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

    names = ["model", "engine", "tie", "inconsistent", "failed"]
    ab_axis.bar(names, [outcomes.count(n) for n in names], color=["#55a868", "#c44e52", "#8c8c8c", "#dd8452", "black"])
    ab_axis.set(title=f"A/B against the template engine ({len(outcomes)} pairs, both orders)", ylabel="pairs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _write_jsonl(path, rows) -> None:
    import json

    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


@click.command(help=__doc__)
@click.option("--model-uri", default="", help="The candidate model (default: the newest finished train run's model).")
@click.option("--prepare-run-id", default="", help="Prepare run whose splits/test.jsonl gives the prompts.")
@click.option("--backend", type=click.Choice(["critic", "endpoint", "local"]), default="critic", show_default=True, help="Who judges.")
@click.option("--endpoint-url", default="", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (with --backend endpoint).")
@click.option("--endpoint-model", default="", help="Model name the endpoint serves (with --backend endpoint).")
@click.option("--local-model", default="smollm2-135m-instruct", show_default=True, help="Judge model for --backend local (any base_model value).")
@click.option("--critic-uri", default="models:/folksy-critic@production", show_default=True, help="Critic for --backend critic.")
@click.option("--corpus", default=DEFAULT_CORPUS, show_default=True, help="Corpus the critic is trained on when it has to be trained.")
@click.option("--sample-size", type=click.IntRange(1), default=None, help=f"Sayings to judge [default: {SAMPLE_SIZE}, {QUICK_SAMPLE_SIZE} with --quick].")
@click.option("--ab-size", type=click.IntRange(0), default=None, help=f"A/B pairs against the engine [default: {AB_SIZE}, {QUICK_AB_SIZE} with --quick].")
@click.option("--seed", type=int, default=42, show_default=True, help="Seeds the sample, the generation and the engine's answers.")
@click.option("--max-failure-share", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="Fail the run when more answers than this fail.")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True, help="Seconds per endpoint request.")
@click.option("--max-retries", type=click.IntRange(0), default=4, show_default=True, help="Retries per endpoint request (backoff 1, 2, 4... s).")
@click.option("--concurrency", type=click.IntRange(1), default=4, show_default=True, help="Endpoint requests in flight at once.")
@click.option("--quick", type=bool, default=False, show_default=True, help="A smaller sample and A/B (smoke tests).")
def judge(model_uri, prepare_run_id, backend, endpoint_url, endpoint_model, local_model, critic_uri, corpus, sample_size, ab_size, seed, max_failure_share, timeout, max_retries, concurrency, quick):
    import os
    import tempfile
    from pathlib import Path

    from steps.tracking import PROJECT_ROOT

    endpoint_url = endpoint_url or os.environ.get(ENDPOINT_URL_ENV, "")  # how `main` (which has no endpoint params) reaches one
    endpoint_model = endpoint_model or os.environ.get(ENDPOINT_MODEL_ENV, "")
    if backend == "endpoint" and not (endpoint_url and endpoint_model):
        raise click.UsageError(f"--backend endpoint needs --endpoint-url and --endpoint-model (or ${ENDPOINT_URL_ENV} and ${ENDPOINT_MODEL_ENV})")
    if backend != "endpoint" and (endpoint_url or endpoint_model):
        raise click.UsageError(f"--endpoint-url/--endpoint-model are set but --backend is {backend}; pass --backend endpoint")
    if sample_size is None:
        sample_size = QUICK_SAMPLE_SIZE if quick else SAMPLE_SIZE
    if ab_size is None:
        ab_size = QUICK_AB_SIZE if quick else AB_SIZE
    ab_size = min(ab_size, sample_size)
    corpus_path = Path(corpus) if Path(corpus).is_absolute() else PROJECT_ROOT / corpus

    from steps.tracking import log_params_once, step_run

    with step_run("judge") as run, tempfile.TemporaryDirectory() as scratch:
        import mlflow

        from steps.coverage import user_prompt
        from steps.base_models import file_sha256
        from steps.critic import CALIBRATION_PATH, load_calibration
        from steps.evaluate import resolve_inputs
        from steps.generation import load_generator
        from steps.judges import (
            ab_outcome, ab_summary, calibration_summary, check_failures, group_means, mean_words, redact_url, score_summary,
            stratified_sample,
        )

        inputs = resolve_inputs(model_uri, prepare_run_id, "")  # the same defaults as evaluate, so both score one model
        model_uri, prepare_run_id = inputs["model_uri"], inputs["prepare_run_id"]
        log_params_once({
            "model_uri": model_uri, "prepare_run_id": prepare_run_id, "backend": backend,
            "endpoint_url": redact_url(endpoint_url), "endpoint_model": endpoint_model,
            "local_model": local_model if backend == "local" else "", "critic_uri": critic_uri if backend == "critic" else "",
            "sample_size": sample_size, "ab_size": ab_size, "seed": seed, "max_failure_share": max_failure_share,
            "timeout": timeout, "max_retries": max_retries, "concurrency": concurrency, "quick": quick,
            "calibration_sha256": file_sha256(CALIBRATION_PATH),
        })
        heldout = [row for row in load_calibration() if row["split"] == "heldout"]
        sample = stratified_sample(load_test_split(prepare_run_id, scratch), sample_size, seed)
        prompts = [user_prompt(row) for row in sample]

        the_judge, critic_run = build_judge(
            backend, endpoint_url, endpoint_model, local_model, critic_uri, timeout, max_retries, concurrency, max_failure_share, corpus_path
        )
        mlflow.set_tag("judge_id", the_judge.judge_id)
        if critic_run:
            mlflow.set_tag("critic_run_id", critic_run)
        click.echo(f"judge: {the_judge.judge_id} on {len(heldout)} held-out calibration items", err=True)
        calibration = the_judge.rate([row["text"] for row in heldout], progress=True, what="calibration answers")
        check_failures(calibration, max_failure_share, "calibration answers")

        click.echo(f"judge: generating {len(prompts)} sayings with {model_uri}", err=True)
        sayings = [outputs[0] for outputs in load_generator(model_uri).generate(prompts, seed=seed, progress=True)]
        judgements = the_judge.rate(sayings, prompts, progress=True)
        check_failures(judgements, max_failure_share, "ratings")

        from corpus.engine import respond
        from corpus.prompts import INPUT_TYPES

        ab_rows = sample[:ab_size]
        model_side, ab_prompts = sayings[:ab_size], prompts[:ab_size]
        engine_side = [
            respond(p, input_type=row.get("input_type") if row.get("input_type") in INPUT_TYPES else None, seed=seed + i)
            for i, (p, row) in enumerate(zip(ab_prompts, ab_rows))
        ]
        model_first = the_judge.compare(list(zip(model_side, engine_side)), ab_prompts, progress=True, what="A/B comparisons")
        engine_first = the_judge.compare(list(zip(engine_side, model_side)), ab_prompts, progress=True, what="A/B comparisons")
        outcomes = [ab_outcome(a, b) for a, b in zip(model_first, engine_first)]
        check_failures(model_first + engine_first, max_failure_share, "A/B comparisons")

        metrics = {
            **score_summary(judgements),
            "judge_mean_words": mean_words(sayings),
            **calibration_summary(calibration, heldout),
            **ab_summary(outcomes, model_side, engine_side),
            **group_means(judgements, [row.get("input_type", "unknown") for row in sample], "judge_mean"),
            **group_means(calibration, [row["kind"] for row in heldout], "judge_calibration_mean"),
        }

        out = Path(scratch) / "judge"
        out.mkdir()
        judge_id = the_judge.judge_id
        _write_jsonl(out / "judge_results.jsonl", (
            {"prompt": p, "input_type": row.get("input_type"), "saying": s, "score": j.score, "justification": j.justification,
             "raw": j.raw, "error": j.error, "judge_id": judge_id}
            for p, row, s, j in zip(prompts, sample, sayings, judgements)
        ))
        _write_jsonl(out / "ab_results.jsonl", (
            {"prompt": p, "input_type": row.get("input_type"), "model_saying": m, "engine_saying": e, "outcome": o,
             "model_first": vars(a), "engine_first": vars(b), "judge_id": judge_id}
            for p, row, m, e, o, a, b in zip(ab_prompts, ab_rows, model_side, engine_side, outcomes, model_first, engine_first)
        ))
        _write_jsonl(out / "calibration_results.jsonl", (
            {**row, "score": j.score, "justification": j.justification, "raw": j.raw, "error": j.error, "judge_id": judge_id}
            for row, j in zip(heldout, calibration)
        ))
        plot_summary(judgements, heldout, calibration, outcomes, out / "judge_summary.png")
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_artifacts(str(out))
        mlflow.log_table(
            {"input_type": [str(r.get("input_type")) for r in sample], "prompt": prompts, "saying": sayings,
             "score": [j.score for j in judgements], "justification": [j.justification for j in judgements]},
            artifact_file="judge_table.json",
        )
        click.echo(
            f"judge: mean {metrics['judge_mean']:.2f}, low share {metrics['judge_low_share']:.1%}, "
            f"parse failures {metrics['judge_parse_failures']}; calibration Spearman {metrics['judge_calibration_spearman']:.3f}, "
            f"MAE {metrics['judge_calibration_mae']:.2f}, injection mean {metrics['judge_injection_mean']:.2f}; "
            f"A/B win {metrics['ab_win_rate']:.1%}, tie/inconsistent {metrics['ab_tie_rate']:.1%}  (run {run.info.run_id})"
        )


if __name__ == "__main__":
    from steps.errors import run_command

    run_command(judge)
