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

from dataclasses import dataclass

import click

SYSTEMS = ("model", "base", "engine")


@dataclass(frozen=True)
class Budget:
    prompts: int  # coverage/diversity prompts answered by model and engine
    base_prompts: int  # the base model rambles to max_new_tokens, so it answers only this many (see docs/metrics.md)
    max_new_tokens: int  # corpus sayings average 22 tokens with end-of-turn, 99.9% fit in 39: room to finish, not to ramble
    perplexity_rows: int | None  # test rows scored for perplexity (None: all)
    training_sayings: int | None  # train sayings embedded for memorization and the classifier (None: all)


FULL = Budget(prompts=1000, base_prompts=300, max_new_tokens=40, perplexity_rows=300, training_sayings=None)
# --quick: every metric on every system still runs, on 35 generated prompts (7 per input type, the template_seeded
# ones naming each family) and 5 test prompts
QUICK = Budget(prompts=40, base_prompts=40, max_new_tokens=16, perplexity_rows=16, training_sayings=1500)


def source_run_id(model_uri: str) -> str | None:
    """The run that logged a model: the id in runs:/<id>/..., or the source run of a registered version
    (models:/<name>@<alias>, models:/<name>/<version>) or of a logged model (models:/<model id>)."""
    if model_uri.startswith("runs:/"):
        return model_uri[len("runs:/") :].split("/")[0] or None
    if not model_uri.startswith("models:/"):
        return None
    from mlflow import MlflowClient

    from steps.errors import FolksyError

    reference = model_uri[len("models:/") :].rstrip("/")
    client = MlflowClient()
    try:
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return client.get_model_version_by_alias(name, alias).run_id
        if "/" in reference:
            name, number = reference.rsplit("/", 1)
            return client.get_model_version(name, number).run_id
        return client.get_logged_model(reference).source_run_id
    except Exception as error:
        raise FolksyError(f"--model-uri '{model_uri}': no such registered or logged model ({type(error).__name__})") from None


def resolve_inputs(model_uri: str, prepare_run_id: str, base_model: str) -> dict:
    """Fill in the defaults that come from earlier runs; raise FolksyError if one cannot be found."""
    from mlflow import MlflowClient

    from steps.base_models import EMBEDDED_DEFAULT
    from steps.errors import FolksyError
    from steps.tracking import latest_run_id, step_param

    if not model_uri:
        train = latest_run_id("train")
        if train is None:
            raise FolksyError("--model-uri is empty and there is no finished train run; run `mlflow run . -e train` or pass --model-uri")
        model_uri = f"runs:/{train}/model"
    source = source_run_id(model_uri)
    params = {}
    if source:
        try:
            params = MlflowClient().get_run(source).data.params
        except Exception:
            raise FolksyError(f"--model-uri '{model_uri}': run {source} does not exist in this tracking store") from None
    prepare_run_id = prepare_run_id or step_param(params, "prepare_run_id") or latest_run_id("prepare")
    if not prepare_run_id:
        raise FolksyError("--prepare-run-id is empty and there is no finished prepare run; run `mlflow run . -e prepare` first")
    return {
        "model_uri": model_uri,
        "train_run_id": source or "",
        "prepare_run_id": prepare_run_id,
        "base_model": base_model or step_param(params, "base_model") or EMBEDDED_DEFAULT,
    }


def download_splits(prepare_run_id: str, directory) -> dict:
    """splits/train.jsonl and splits/test.jsonl of a prepare run, read and checked."""
    from pathlib import Path

    import mlflow

    from steps.coverage import read_split
    from steps.errors import FolksyError

    rows = {}
    for name in ("train", "test"):
        try:
            path = mlflow.artifacts.download_artifacts(run_id=prepare_run_id, artifact_path=f"splits/{name}.jsonl", dst_path=str(directory))
        except Exception as error:
            raise FolksyError(f"--prepare-run-id {prepare_run_id}: cannot read splits/{name}.jsonl ({type(error).__name__})") from None
        rows[name] = read_split(Path(path))
    return rows


def log_test_dataset(prepare_run_id: str, test_rows: list[dict], run_id: str) -> None:
    """Link the test split to this run as a dataset input.

    The prepare run logged it already (context "testing"); linking that very dataset keeps one name
    and digest across prepare, train and evaluate in the UI. A prepare run without one gets a new one.
    """
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput, InputTag

    from steps.coverage import user_prompt

    client = MlflowClient()
    for logged in client.get_run(prepare_run_id).inputs.dataset_inputs:
        if any(tag.key == "mlflow.data.context" and tag.value == "testing" for tag in logged.tags):
            client.log_inputs(run_id, [DatasetInput(logged.dataset, [InputTag("mlflow.data.context", "testing")])])
            return
    frame = pd.DataFrame(
        {
            "input": [user_prompt(row) for row in test_rows],
            "output": [row["output"] for row in test_rows],
            "meta_template": [row["meta_template"] for row in test_rows],
            "input_type": [row["input_type"] for row in test_rows],
        }
    )
    mlflow.log_input(mlflow.data.from_pandas(frame, name="folksy-test", targets="output"), context="testing")


def plot_family_coverage(shares: dict[str, dict[str, float]], families: list[str], path) -> None:
    """Grouped bars: for each family (and "unclassified"), the share of each system's generations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from steps.coverage import UNCLASSIFIED

    labels = list(families) + [UNCLASSIFIED]
    figure, axis = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / len(shares)
    for offset, (system, by_family) in enumerate(shares.items()):
        positions = [i + (offset - (len(shares) - 1) / 2) * width for i in range(len(labels))]
        axis.bar(positions, [100 * by_family.get(label, 0.0) for label in labels], width, label=system)
    axis.axhline(100 / len(families), color="grey", linestyle=":", linewidth=1, label="even spread")
    axis.set_xticks(range(len(labels)), [label.replace("_", "\n") for label in labels], fontsize=8)
    axis.set_ylabel("% of generations")
    axis.set_title("Template family of each generation (logistic regression on MiniLM embeddings)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_nn_similarity(similarities: dict[str, "object"], threshold: float, path) -> None:
    """Overlaid histograms of each generation's cosine similarity to its nearest training saying."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axis = plt.subplots(figsize=(8, 4))
    bins = np.linspace(0, 1, 41)
    for system, values in similarities.items():
        axis.hist(np.clip(values, 0, 1), bins=bins, histtype="step", linewidth=2, label=f"{system} (n={len(values)})")
    axis.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"near-copy ({threshold})")
    axis.set_xlabel("cosine similarity to the nearest training saying (all-MiniLM-L6-v2)")
    axis.set_ylabel("generations")
    axis.set_title("How close do generations come to the training sayings?")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


class Stopwatch:
    """Seconds spent in each phase, logged as time/<phase>_s so slow phases show up in the UI."""

    def __init__(self):
        import time

        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        import time

        now = time.perf_counter()
        self.laps[f"{name}_s"] = round(now - self._last, 2)
        self._last = now


def inference_dtype(choice: str) -> str:
    """auto: bfloat16 where the CPU has native bf16 (AVX512-BF16/AMX) or a CUDA GPU has it, else float32."""
    if choice != "auto":
        return choice
    from steps.training import bf16_supported

    return "bfloat16" if bf16_supported() else "float32"


def generate_all(model_uri: str, base_path: str, dtype: str, prompts, shared: list[int], test_rows: list[dict], budget: Budget, max_new_tokens: int, seed: int, watch: Stopwatch):
    """Generations of model, base (the shared prompts only) and engine, and the two models' test perplexity.

    One model is in memory at a time, cast to `dtype` for both generation and perplexity. The engine
    sees the prompt text only, as the models do.
    """
    import torch
    from tqdm.auto import tqdm

    from corpus.engine import respond
    from steps.coverage import user_prompt
    from steps.generation import SayingGenerator, load_generator, perplexity

    texts = [p.prompt for p in prompts]
    scored_rows = test_rows[: budget.perplexity_rows]
    ppl_prompts, ppl_sayings = [user_prompt(row) for row in scored_rows], [row["output"] for row in scored_rows]
    settings = dict(max_new_tokens=max_new_tokens, seed=seed, progress=True)
    generations, perplexities = {}, {}
    for system, asked in (("model", texts), ("base", [texts[i] for i in shared])):
        generator = load_generator(model_uri) if system == "model" else SayingGenerator.from_pretrained(base_path)
        generator.model.to(getattr(torch, dtype))
        generations[system] = [outputs[0] for outputs in generator.generate(asked, **settings)]
        watch.lap(f"generate_{system}")
        perplexities[system] = perplexity(*generator.completion_nll(ppl_prompts, ppl_sayings))
        watch.lap(f"perplexity_{system}")
        del generator
    generations["engine"] = [respond(text, seed=seed + i) for i, text in enumerate(tqdm(texts, desc="engine", unit="prompt"))]
    watch.lap("generate_engine")
    return generations, perplexities


def train_family_classifier(splits: dict, budget: Budget, seed: int):
    """The family classifier, its held-out report, and the training sayings with their embeddings.

    Trained on the train split's distinct sayings, checked on the test split's; the same training
    embeddings serve the near-copy metric.
    """
    import numpy as np

    from steps.coverage import classifier_report, fit_family_classifier
    from steps.embeddings import embed

    family_of = {row["output"]: row["meta_template"] for row in splits["train"]}
    sayings = sorted(family_of)
    if budget.training_sayings and len(sayings) > budget.training_sayings:
        sayings = sorted(np.random.default_rng(seed).choice(sayings, budget.training_sayings, replace=False).tolist())
    held_out = sorted({row["output"]: row["meta_template"] for row in splits["test"]}.items())
    embeddings = embed(sayings, progress=True)
    classifier = fit_family_classifier(embeddings, [family_of[s] for s in sayings])
    report = classifier_report(classifier, embed([s for s, _ in held_out]), [f for _, f in held_out])
    return classifier, report, sayings, embeddings


def score_all(generations: dict, positions: dict, prompts, shared: list[int], classifier, training_sayings, training_embeddings, families):
    """Every metric for every system (steps.metrics.system_metrics), plus predicted families and nearest similarities."""
    from corpus.lexicon import plural
    from steps.coverage import predict_families
    from steps.embeddings import embed
    from steps.metrics import system_metrics

    scores, predicted, nearest = {}, {}, {}
    for system in SYSTEMS:
        answered = [prompts[i] for i in positions[system]]
        local = {position: index for index, position in enumerate(positions[system])}
        embeddings = embed(generations[system])
        predicted[system], _ = predict_families(classifier, embeddings)
        scores[system], nearest[system] = system_metrics(
            generations[system],
            embeddings,
            predicted[system],
            families=families,
            training_sayings=training_sayings,
            training_embeddings=training_embeddings,
            references=[p.references for p in answered],
            seed_words=[p.seed_words or None for p in answered],
            plural=plural,
            shared=[local[i] for i in shared],
        )
    return scores, predicted, nearest


def generations_table(prompts, positions: dict, generations: dict, predicted: dict, nearest: dict):
    """One row per prompt: the prompt, and each system's saying, predicted family and nearest-neighbour similarity."""
    import pandas as pd

    def column(system, values):  # None where the system was not asked (the base beyond the shared prompts)
        by_position = dict(zip(positions[system], values))
        return [by_position.get(i) for i in range(len(prompts))]

    table = {
        "prompt": [p.prompt for p in prompts],
        "input_type": [p.input_type for p in prompts],
        "origin": [p.origin for p in prompts],
        "prompt_family": [p.family or "" for p in prompts],
        "reference": [p.references[0] if p.references else "" for p in prompts],
        **{system: column(system, generations[system]) for system in SYSTEMS},
    }
    for system in SYSTEMS:
        table[f"{system}_family"] = column(system, predicted[system])
        table[f"{system}_nn_similarity"] = column(system, [round(float(v), 4) for v in nearest[system]])
    return pd.DataFrame(table)


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
    help="Weights for generation and perplexity. auto: bfloat16 on a CPU with native bf16 (about 2x faster here, perplexity within 0.5% of float32), else float32.",
)
def evaluate(model_uri, prepare_run_id, base_model, quick, num_prompts, base_prompts, max_new_tokens, seed, dtype):
    import inspect
    import json
    import tempfile
    from pathlib import Path

    from steps.tracking import log_params_once, step_run

    budget = QUICK if quick else FULL
    num_prompts = budget.prompts if num_prompts is None else num_prompts
    base_prompts = min(num_prompts, budget.base_prompts if base_prompts is None else base_prompts)
    max_new_tokens = budget.max_new_tokens if max_new_tokens is None else max_new_tokens
    for name, value in (("--num-prompts", num_prompts), ("--base-prompts", base_prompts), ("--max-new-tokens", max_new_tokens)):
        if value < 1:
            raise click.BadParameter(f"must be at least 1, got {value}", param_hint=name)

    with step_run("evaluate") as run:
        import mlflow

        from corpus.engine import FAMILIES
        from corpus.lexicon import plural
        from corpus.prompts import INPUT_TYPES
        from steps import coverage, metrics
        from steps.base_models import resolve_base_model
        from steps.embeddings import ENCODER_NAME
        from steps.generation import SayingGenerator

        watch = Stopwatch()
        inputs = resolve_inputs(model_uri, prepare_run_id, base_model)
        families, input_types = list(FAMILIES), list(INPUT_TYPES)
        sampling = {k: p.default for k, p in inspect.signature(SayingGenerator.generate).parameters.items() if k in ("temperature", "top_p")}
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            splits = download_splits(inputs["prepare_run_id"], scratch / "downloads")
            prompts = coverage.evaluation_prompts(splits["test"], num_prompts, input_types, families, coverage.corpus_prompt, plural, seed)
            shared = coverage.shared_positions(prompts, base_prompts, coverage.full_cycle(input_types, families))
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
                    **sampling,
                    "dtype": dtype,
                    "seed": seed,
                    "encoder": ENCODER_NAME,
                    "near_threshold": metrics.NEAR_THRESHOLD,
                    "min_family_confidence": coverage.MIN_FAMILY_CONFIDENCE,
                }
            )
            log_test_dataset(inputs["prepare_run_id"], splits["test"], run.info.run_id)
            base = resolve_base_model(inputs["base_model"])
            mlflow.log_params({"base_model_source": base.source, "base_model_revision": base.revision[:40]})
            watch.lap("load_data")

            generations, perplexities = generate_all(inputs["model_uri"], base.path, dtype, prompts, shared, splits["test"], budget, max_new_tokens, seed, watch)
            classifier, classifier_quality, training_sayings, training_embeddings = train_family_classifier(splits, budget, seed)
            watch.lap("embed_corpus_and_fit_classifier")
            scores, predicted, nearest = score_all(generations, positions, prompts, shared, classifier, training_sayings, training_embeddings, families)
            for system, value in perplexities.items():
                scores[system]["perplexity"] = value
            scored = [i for i in shared if prompts[i].references]
            bleu_signature = metrics.corpus_bleu([generations["model"][i] for i in scored], [prompts[i].references for i in scored])[1] if scored else ""
            watch.lap("score")

            out = scratch / "out"
            out.mkdir()
            shares = {s: {**{f: scores[s][f"family_share/{f}"] for f in families}, coverage.UNCLASSIFIED: scores[s]["unclassified_share"]} for s in SYSTEMS}
            plot_family_coverage(shares, families, out / "family_coverage.png")
            plot_nn_similarity(nearest, metrics.NEAR_THRESHOLD, out / "nn_similarity.png")
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
            mlflow.log_metrics(logged)
            mlflow.log_table(table, artifact_file="generations.json")
            mlflow.log_artifacts(str(out))

        summary = "; ".join(f"{s} bleu {scores[s].get('bleu', float('nan')):.1f}, distinct-2 {scores[s]['distinct_2']:.2f}, {scores[s]['families_present']} families" for s in SYSTEMS)
        click.echo(f"evaluate: {summary}; {watch.laps['total_s']:.0f}s; run {run.info.run_id}")


if __name__ == "__main__":
    from steps.errors import run_command

    run_command(evaluate)
