"""evaluate: score a model against the base model and the template engine, on the same prompts.

Reads:  --model-uri       runs:/<train run>/model, models:/<name>@<alias>, or a local HF model directory
                          (default: runs:/<newest finished train run>/model);
        --prepare-run-id  the prepare run whose splits/train.jsonl and splits/test.jsonl are used
                          (default: the train run's prepare_run_id param, else the newest finished prepare run);
        --base-model      the baseline before fine-tuning (default: the train run's base_model param, else
                          the embedded smollm2-135m-instruct).
Writes: metrics model/*, base/* and engine/* (perplexity, BLEU, ROUGE-1/2/L, distinct-1/2, self-BLEU,
        family shares, families present, near-copy, exact-copy and near-duplicate shares, n-gram
        novelty, prompt adherence) and family_classifier_accuracy; artifacts eval_results.json,
        generations.json (an MLflow table), family_coverage.png, nn_similarity.png; the test split
        as a dataset input. Every metric is defined in docs/metrics.md.
"""

import click

from folksy.evaluation.systems import FULL, QUICK


@click.command(help=__doc__)
@click.option("--model-uri", default="", help="Model to score (default: runs:/<newest finished train run>/model).")
@click.option("--prepare-run-id", default="", help="Prepare run with the splits (default: the train run's, else the newest).")
@click.option("--base-model", default="", help="Baseline before fine-tuning (default: the train run's base_model, else the embedded model).")
@click.option("--quick", type=bool, default=False, show_default=True, help=f"Smoke-test budget: {QUICK.prompts} prompts, {QUICK.max_new_tokens} new tokens; every metric is still computed.")
@click.option("--num-prompts", type=int, default=None, help=f"Prompts for model and engine (default {FULL.prompts}; quick {QUICK.prompts}).")
@click.option("--base-prompts", type=int, default=None, help=f"How many of them the base model answers (default {FULL.base_prompts}; quick {QUICK.base_prompts}).")
@click.option("--max-new-tokens", type=int, default=None, help=f"Generation budget per saying (default {FULL.max_new_tokens}; quick {QUICK.max_new_tokens}).")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed for the generated prompts, sampling and the engine.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="Weights for generation, perplexity and the sentence encoder. auto: bfloat16 on a CPU with native bf16 (about 2x faster here, perplexity within 0.5% of float32), else float32.",
)
def evaluate(model_uri, prepare_run_id, base_model, quick, num_prompts, base_prompts, max_new_tokens, seed, dtype):
    import json
    import tempfile
    from pathlib import Path

    from folksy.tracking import log_params_once, step_run

    budget = QUICK if quick else FULL
    num_prompts = budget.prompts if num_prompts is None else num_prompts
    base_prompts = min(num_prompts, budget.base_prompts if base_prompts is None else base_prompts)
    max_new_tokens = budget.max_new_tokens if max_new_tokens is None else max_new_tokens
    for name, value in (("--num-prompts", num_prompts), ("--base-prompts", base_prompts), ("--max-new-tokens", max_new_tokens)):
        if value < 1:
            raise click.BadParameter(f"must be at least 1, got {value}", param_hint=name)

    with step_run("evaluate") as run:
        import mlflow

        from folksy.base_models import resolve_base_model
        from folksy.corpus.engine import FAMILIES
        from folksy.corpus.lexicon import plural
        from folksy.corpus.prompts import INPUT_TYPES
        from folksy.embeddings import ENCODER_NAME
        from folksy.evaluation import families as family_classifier
        from folksy.evaluation import metrics, prompts as prompt_sets
        from folksy.evaluation.systems import (
            SYSTEMS, Stopwatch, generate_all, generations_table, score_all, train_family_classifier,
        )
        from folksy.generation import SAMPLING, inference_dtype
        from folksy.lineage import download_splits, log_metrics_for_model, log_split_datasets, resolve_inputs
        from folksy.plots import plot_family_coverage, plot_nn_similarity

        watch = Stopwatch()
        inputs = resolve_inputs(model_uri, prepare_run_id, base_model)
        families, input_types = list(FAMILIES), list(INPUT_TYPES)
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            splits = download_splits(inputs["prepare_run_id"], ("train", "test"), scratch / "downloads")
            prompts = prompt_sets.evaluation_prompts(splits["test"], num_prompts, input_types, families, prompt_sets.corpus_prompt, plural, seed)
            shared = prompt_sets.shared_positions(prompts, base_prompts, prompt_sets.full_cycle(input_types, families))
            positions = {"model": list(range(len(prompts))), "base": shared, "engine": list(range(len(prompts)))}
            dtype = inference_dtype(dtype)
            log_params_once(
                {
                    **inputs,
                    "corpus_sha256": mlflow.get_run(inputs["prepare_run_id"]).data.params.get("corpus_sha256", ""),
                    "quick": quick,
                    "num_prompts": len(prompts),
                    "test_prompts": sum(p.origin == "test" for p in prompts),
                    "base_prompts": len(shared),
                    "perplexity_rows": len(splits["test"][: budget.perplexity_rows]),
                    "max_new_tokens": max_new_tokens,
                    "temperature": SAMPLING.temperature,
                    "top_p": SAMPLING.top_p,
                    "dtype": dtype,
                    "seed": seed,
                    "encoder": ENCODER_NAME,
                    "near_threshold": metrics.NEAR_THRESHOLD,
                    "min_family_confidence": family_classifier.MIN_FAMILY_CONFIDENCE,
                }
            )
            test_dataset = log_split_datasets(inputs["prepare_run_id"], {"test": splits["test"]})["test"]
            base = resolve_base_model(inputs["base_model"])
            mlflow.log_params({"base_model_source": base.source, "base_model_revision": base.revision[:40]})
            watch.lap("load_data")

            generations, perplexities = generate_all(inputs["model_uri"], base.path, dtype, prompts, shared, splits["test"], budget, max_new_tokens, seed, watch)
            classifier, classifier_quality, training_sayings, training_embeddings = train_family_classifier(splits, budget, seed, dtype == "bfloat16")
            watch.lap("embed_corpus_and_fit_classifier")
            scores, predicted, nearest = score_all(generations, positions, prompts, shared, classifier, training_sayings, training_embeddings, families, dtype == "bfloat16")
            for system, value in perplexities.items():
                scores[system]["perplexity"] = value
            scored = [i for i in shared if prompts[i].references]
            bleu_signature = metrics.corpus_bleu([generations["model"][i] for i in scored], [prompts[i].references for i in scored])[1] if scored else ""
            watch.lap("score")

            out = scratch / "out"
            out.mkdir()
            shares = {s: {**{f: scores[s][f"family_share/{f}"] for f in families}, family_classifier.UNCLASSIFIED: scores[s]["unclassified_share"]} for s in SYSTEMS}
            plot_family_coverage(shares, families, out / "family_coverage.png")
            plot_nn_similarity(nearest, out / "nn_similarity.png")
            table = generations_table(prompts, positions, generations, predicted, nearest)
            watch.lap("plot")
            watch.laps["total_s"] = round(sum(watch.laps.values()), 2)
            results = {
                **inputs,
                "bleu_signature": bleu_signature,
                "prompts": {"total": len(prompts), "shared_with_base": len(shared), "test": sum(p.origin == "test" for p in prompts)},
                "training_sayings": len(training_sayings),
                "family_classifier": classifier_quality,
                "metrics": scores,
                "timings_s": watch.laps,
                "definitions": "docs/metrics.md",
            }
            (out / "eval_results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")

            # everything is computed: log it in one go
            logged = {f"{system}/{name}": float(value) for system in SYSTEMS for name, value in scores[system].items()}
            logged["family_classifier_accuracy"] = classifier_quality["accuracy"]
            logged["family_classifier_unclassified_share"] = classifier_quality["unclassified_share"]
            logged.update({f"time/{name}": value for name, value in watch.laps.items()})
            mlflow.log_params({"bleu_signature": bleu_signature, "training_sayings": len(training_sayings)})
            log_metrics_for_model(logged, inputs["model_uri"], lambda key: key.startswith("model/"), dataset=test_dataset)
            mlflow.log_table(table, artifact_file="generations.json")
            mlflow.log_artifacts(str(out))

        summary = "; ".join(f"{s} bleu {scores[s].get('bleu', float('nan')):.1f}, distinct-2 {scores[s]['distinct_2']:.2f}, {scores[s]['families_present']} families" for s in SYSTEMS)
        click.echo(f"evaluate: {summary}; {watch.laps['total_s']:.0f}s; run {run.info.run_id}")


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(evaluate)
