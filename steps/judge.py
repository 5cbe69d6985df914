"""judge: rate a model's sayings on the rubric, A/B them against the template engine and the production
model, and measure the judge itself on labelled sayings, all in one MLflow run. register gates on the figures.

\b
Reads:  --model-uri       runs:/<train run>/model, models:/folksy-proverbs@<alias>, or a model directory
                          (default: the newest finished train run's model);
        --prepare-run-id  its splits/test.jsonl: 200 prompts spread over the input types, seeded
                          (default: the train run's prepare_run_id, else the newest finished prepare run);
        corpus/judge_calibration.jsonl and judge_realistic.jsonl (real outputs), held-out parts: scored every run;
        --backend critic: --critic-uri (default models:/folksy-critic@production; missing, it is trained and
                          registered in a nested `critic` run from the corpus and the calibration train part);
        --backend endpoint: any OpenAI-compatible server (--endpoint-url, --endpoint-model, or $FOLKSY_JUDGE_URL
                          and $FOLKSY_JUDGE_MODEL); the API key comes only from $FOLKSY_JUDGE_API_KEY or
                          $OPENAI_API_KEY and is never logged;
        --backend local:  --local-model scored G-Eval style (probability-weighted over 1-5); --champion-uri: the
                          version holding production now (pinned by number), A/B'd on the same prompts.
Writes: metrics judge_mean, judge_low_share (< 2.5: rounds to 1-2), judge_high_share (>= 3.5), judge_count_1..5, judge_parse_failures,
        judge_calibration_spearman/_mae, judge_injection_mean, judge_realistic_* (on real outputs), ab_engine_win_rate/_loss_rate/...,
        ab_champion_version/_pairs/_win_rate/...; tag judge_id; artifacts judge_results.jsonl, ab_results.jsonl,
        ab_champion_results.jsonl, calibration_results.jsonl, judge_summary.png.
More than --max-failure-share failed answers (unparseable, timed out, HTTP errors) fail the run.
"""

import click

from folksy.defaults import CORPUS, PRODUCTION_URI
from folksy.judging.critic_registry import DEFAULT_CRITIC_URI

SAMPLE_SIZE, QUICK_SAMPLE_SIZE, AB_SIZE, QUICK_AB_SIZE = 200, 40, 50, 10
ENDPOINT_URL_ENV, ENDPOINT_MODEL_ENV = "FOLKSY_JUDGE_URL", "FOLKSY_JUDGE_MODEL"


@click.command(help=__doc__)
@click.option("--model-uri", default="", help="The candidate model (default: the newest finished train run's model).")
@click.option("--prepare-run-id", default="", help="Prepare run whose splits/test.jsonl gives the prompts.")
@click.option("--backend", type=click.Choice(["critic", "endpoint", "local"]), default="critic", show_default=True, help="Who judges.")
@click.option("--endpoint-url", default="", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (with --backend endpoint).")
@click.option("--endpoint-model", default="", help="Model name the endpoint serves (with --backend endpoint).")
@click.option("--local-model", default="smollm2-135m-instruct", show_default=True, help="Judge model for --backend local (any base_model value).")
@click.option("--critic-uri", default=DEFAULT_CRITIC_URI, show_default=True, help="Critic for --backend critic.")
@click.option("--champion-uri", default=PRODUCTION_URI, show_default=True, help="The model to beat besides the engine.")
@click.option("--corpus", default=CORPUS, show_default=True, help="Corpus the critic is trained on when it has to be trained.")
@click.option("--sample-size", type=click.IntRange(1), default=None, help=f"Sayings to judge [default: {SAMPLE_SIZE}, {QUICK_SAMPLE_SIZE} with --quick].")
@click.option("--ab-size", type=click.IntRange(0), default=None, help=f"A/B pairs against the engine [default: {AB_SIZE}, {QUICK_AB_SIZE} with --quick].")
@click.option("--seed", type=int, default=42, show_default=True, help="Seeds the sample, the generation and the engine's answers.")
@click.option("--max-failure-share", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="Fail the run when more answers than this fail.")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True, help="Seconds per endpoint request.")
@click.option("--max-retries", type=click.IntRange(0), default=4, show_default=True, help="Retries per endpoint request (backoff 1, 2, 4... s).")
@click.option("--concurrency", type=click.IntRange(1), default=4, show_default=True, help="Endpoint requests in flight at once.")
@click.option("--quick", type=bool, default=False, show_default=True, help="A smaller sample and A/B (smoke tests).")
def judge(model_uri, prepare_run_id, backend, endpoint_url, endpoint_model, local_model, critic_uri, champion_uri, corpus, sample_size, ab_size, seed, max_failure_share, timeout, max_retries, concurrency, quick):
    import functools
    import os
    import tempfile
    from pathlib import Path

    from folksy.defaults import project_path
    from folksy.tracking import log_params_once, step_run

    endpoint_url = endpoint_url or os.environ.get(ENDPOINT_URL_ENV, "")  # how `main` (which has no endpoint params) reaches one
    endpoint_model = endpoint_model or os.environ.get(ENDPOINT_MODEL_ENV, "")
    if backend == "endpoint" and not (endpoint_url and endpoint_model):
        raise click.UsageError(f"--backend endpoint needs --endpoint-url and --endpoint-model (or ${ENDPOINT_URL_ENV} and ${ENDPOINT_MODEL_ENV})")
    if backend != "endpoint" and (endpoint_url or endpoint_model):
        raise click.UsageError(f"--endpoint-url/--endpoint-model are set but --backend is {backend}; pass --backend endpoint")
    sample_size = sample_size or (QUICK_SAMPLE_SIZE if quick else SAMPLE_SIZE)  # IntRange(1): never 0
    ab_size = ab_size if ab_size is not None else (QUICK_AB_SIZE if quick else AB_SIZE)
    ab_size = min(ab_size, sample_size)
    corpus_path = project_path(corpus)

    with step_run("judge") as run, tempfile.TemporaryDirectory() as scratch:
        import mlflow

        from folksy.base_models import file_sha256
        from folksy.chat import user_prompt
        from folksy.evaluation.metrics import mean_words
        from folksy.best_of import served_sayings
        from folksy.judging.ab import ab_summary, champion_ab, engine_answers, swap_consistent_ab
        from folksy.judging.backends import build_judge
        from folksy.judging.critic_data import CALIBRATION_PATH, REALISTIC_PATH, load_calibration, realistic_heldout
        from folksy.judging.results import write_results
        from folksy.judging.sampling import stratified_sample
        from folksy.judging.summary import calibration_summary, check_failures, describes_model, group_means, judge_line, realistic_summary, score_summary
        from folksy.lineage import download_splits, log_metrics_for_model, resolve_inputs
        from folksy.plots import plot_judge_summary
        from folksy.tracking import redact_url

        inputs = resolve_inputs(model_uri, prepare_run_id, "")  # the same defaults as evaluate, so both score one model
        model_uri, prepare_run_id = inputs["model_uri"], inputs["prepare_run_id"]
        log_params_once({
            "model_uri": model_uri, "prepare_run_id": prepare_run_id, "backend": backend,
            "endpoint_url": redact_url(endpoint_url), "endpoint_model": endpoint_model,
            "local_model": local_model if backend == "local" else "", "critic_uri": critic_uri if backend == "critic" else "", "champion_uri": champion_uri,
            "sample_size": sample_size, "ab_size": ab_size, "seed": seed, "max_failure_share": max_failure_share,
            "timeout": timeout, "max_retries": max_retries, "concurrency": concurrency, "quick": quick,
            "calibration_sha256": file_sha256(CALIBRATION_PATH), "realistic_sha256": file_sha256(REALISTIC_PATH),
        })
        heldout, realistic = [row for row in load_calibration() if row["split"] == "heldout"], realistic_heldout()
        sample = stratified_sample(download_splits(prepare_run_id, ("test",), scratch)["test"], sample_size, seed)
        prompts = [user_prompt(row) for row in sample]

        log = functools.partial(click.echo, err=True)
        the_judge, critic_run = build_judge(
            backend, endpoint_url, endpoint_model, local_model, critic_uri, timeout, max_retries, concurrency, max_failure_share, corpus_path, log)
        mlflow.set_tags({"judge_id": the_judge.judge_id, **({"critic_run_id": critic_run} if critic_run else {})})
        log(f"judge: {the_judge.judge_id} on {len(heldout)} held-out calibration items and {len(realistic)} real outputs")
        calibration = the_judge.rate([row["text"] for row in heldout], progress=True, what="calibration answers")
        real = the_judge.rate([row["text"] for row in realistic], progress=True, what="real-output answers")
        check_failures(calibration + real, max_failure_share, "calibration answers")

        log(f"judge: generating {len(prompts)} sayings with {model_uri}")
        sayings, served_best_of = served_sayings(model_uri, prompts, seed, progress=True)  # as served: best-of-k if the model picks
        judgements = the_judge.rate(sayings, prompts, progress=True)
        check_failures(judgements, max_failure_share, "ratings")

        ab_rows, model_side, ab_prompts = sample[:ab_size], sayings[:ab_size], prompts[:ab_size]
        engine_side = engine_answers(ab_prompts, ab_rows, seed)
        outcomes, model_first, engine_first = swap_consistent_ab(the_judge, model_side, engine_side, ab_prompts)
        check_failures(model_first + engine_first, max_failure_share, "A/B comparisons")
        champion_metrics, champion_rows = champion_ab(the_judge, champion_uri, model_uri, model_side, ab_prompts, seed, max_failure_share, log)

        metrics = {
            **score_summary(judgements),
            "judge_mean_words": mean_words(sayings), "judge_served_best_of": served_best_of,
            **calibration_summary(calibration, heldout),  # and on real outputs read blind, the old items among them:
            **realistic_summary(calibration + real, [{**r, "source": f"calibration-{r['kind']}"} for r in heldout] + realistic),
            **ab_summary(outcomes, model_side, engine_side), **champion_metrics,
            **group_means(judgements, [row.get("input_type", "unknown") for row in sample], "judge_mean"),
            **group_means(calibration, [row["kind"] for row in heldout], "judge_calibration_mean"),
        }

        out = Path(scratch) / "judge"
        out.mkdir()
        ab = (ab_prompts, ab_rows, model_side, engine_side, outcomes, model_first, engine_first), champion_rows
        write_results(out, the_judge.judge_id, sample, prompts, sayings, judgements, ab, heldout, calibration)
        plot_judge_summary(judgements, heldout, calibration, outcomes, out / "judge_summary.png", metrics)
        log_metrics_for_model({k: float(v) for k, v in metrics.items()}, model_uri, describes_model)
        mlflow.log_artifacts(str(out))
        mlflow.log_table({"input_type": [str(r.get("input_type")) for r in sample], "prompt": prompts, "saying": sayings,
                          "score": [round(float(j.score), 2) for j in judgements], "justification": [j.justification for j in judgements]},
                         artifact_file="judge_table.json")
        click.echo(f"judge: {judge_line(metrics)}  (run {run.info.run_id})")


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(judge)
