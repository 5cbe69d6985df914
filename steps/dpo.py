"""dpo: preference-tune a train run's model with TRL's DPOTrainer and log it as a pyfunc model.

\b
Reads:  --config        a preference recipe in configs/ (smollm2-135m-dpo.yaml), --overrides key=value,... on top
        --train-run-id  the finished train run whose model is tuned and serves as DPO's reference (default: newest);
                        its prepare run's splits/train.jsonl give the critic source's prompts
        benchmarks/reading/readings-*.jsonl, the blind readings: the readings source's pairs
\b
Writes: params          the resolved recipe, train_run_id, pairs_readings, pairs_critic, precision
        metrics         per logging step: loss, rewards/accuracies, rewards/margins, rewards/chosen, rewards/rejected, ...
        artifacts       pairs.json, the (prompt, chosen, rejected) table trained on; samples.json, fixed prompts before/after
        model           runs:/<run id>/model, a pyfunc model like train's (same best_of and picker critic), for
                        evaluate, judge and register (--train-run-id <this run>)
"""

import click

from folksy.defaults import DPO_RECIPE


@click.command(help=__doc__)
@click.option("--config", default=DPO_RECIPE, show_default=True, help="Preference recipe (YAML in configs/).")
@click.option("--train-run-id", default="", help="train run whose model to tune [default: newest finished train run].")
@click.option("--overrides", default="", help="Comma-separated key=value pairs over the recipe, e.g. max_steps=20,beta=0.2.")
def dpo(config, train_run_id, overrides):
    from folksy.defaults import project_path
    from folksy.errors import FolksyError
    from folksy.lineage import finished_step_run
    from folksy.training.recipe import DPO_FIELDS, check_scheduler, load_recipe
    from folksy.tracking import configure, git_commit, latest_run_id, step_run

    recipe = load_recipe(project_path(config), overrides, DPO_FIELDS, check_scheduler)  # every input check, before anything heavy
    mlflow = configure()
    train_run_id = train_run_id.strip() or latest_run_id("train")
    if not train_run_id:
        raise FolksyError("--train-run-id: this experiment has no finished train run; run `mlflow run . -e train` first")
    train_run = finished_step_run(mlflow.MlflowClient(), train_run_id, "train", needed_by="dpo")
    with step_run("dpo") as run:
        _dpo(mlflow, recipe, train_run, run, git_commit())


def _dpo(mlflow, recipe, train_run, run, commit) -> None:
    import random
    import tempfile
    from pathlib import Path

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.best_of import critic_scores, saying_shape, served_settings
    from folksy.errors import FolksyError
    from folksy.generation import SayingGenerator, bf16_supported, download_hf_dir, inference_dtype
    from folksy.judging.critic_data import reading_rows
    from folksy.lineage import download_splits
    from folksy.model_dir import describe_model_dir
    from folksy.pyfunc_model import model_kwargs
    from folksy.tracking import log_params_once
    from folksy.training.dpo import FolksyDPOTrainer, cap_chosen_shapes, critic_pairs, dpo_config, pairs_table, reading_pairs
    from folksy.training.sft import SAMPLE_PROMPTS, sample_sayings
    from folksy.training.trainer import MetricsCallback

    sources = [source.strip() for source in recipe["pair_sources"].split(",")]
    bf16 = recipe["bf16"] and bf16_supported()
    with tempfile.TemporaryDirectory(prefix="folksy-dpo-") as scratch:
        config = dpo_config(recipe, Path(scratch) / "out", bf16)
        sft_dir = download_hf_dir(f"runs:/{train_run.info.run_id}/model", scratch, option="--train-run-id")
        model_dir = sft_dir.parent.parent  # <model>/artifacts/hf_model
        best_of, critic = served_settings(model_dir)
        pairs = []
        if "readings" in sources:
            pairs += reading_pairs(reading_rows(), recipe["min_gap"], recipe["pairs_per_prompt"], recipe["seed"])
        if "critic" in sources and recipe["critic_prompts"]:
            if critic is None:
                raise FolksyError(f"--train-run-id {train_run.info.run_id}: its model carries no critic to rank samples; use --overrides pair_sources=readings")
            split = download_splits(train_run.data.params["prepare_run_id"], ("train",), scratch)["train"]
            inputs = sorted({row["prompt"][-1]["content"] for row in split})  # the user turn of each train conversation
            prompts = random.Random(recipe["seed"]).sample(inputs, min(recipe["critic_prompts"], len(inputs)))
            generator = SayingGenerator.from_pretrained(str(sft_dir), dtype=inference_dtype())
            click.echo(f"dpo: sampling {recipe['samples_per_prompt']} sayings for each of {len(prompts)} train prompts")
            samples = generator.generate(prompts, num_return_sequences=recipe["samples_per_prompt"], seed=recipe["seed"],
                                         max_new_tokens=recipe["sample_max_new_tokens"], progress=True)
            pairs += critic_pairs(prompts, samples, critic_scores(critic), recipe["critic_margin"])
            del generator
        pairs = cap_chosen_shapes(pairs, recipe["chosen_shape_cap"], saying_shape, recipe["seed"])
        counts = {source: sum(pair["source"] == source for pair in pairs) for source in ("readings", "critic")}
        if not pairs:
            raise FolksyError(f"--overrides: pair_sources={recipe['pair_sources']} gave no pairs; lower min_gap or critic_margin")
        inherited = {key: train_run.data.params.get(key) for key in ("prepare_run_id", "base_model")}  # evaluate and judge read them
        log_params_once({**recipe, **inherited, "train_run_id": train_run.info.run_id, "git_commit": commit, "best_of": best_of,
                         "precision": "bf16-autocast" if bf16 else "fp32", **{f"pairs_{s}": n for s, n in counts.items()}})
        mlflow.log_table(pairs_table(pairs), artifact_file="pairs.json")
        click.echo(f"dpo: {len(pairs)} pairs ({', '.join(f'{n} {s}' for s, n in counts.items())})")

        model = AutoModelForCausalLM.from_pretrained(str(sft_dir), dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(str(sft_dir))
        before = sample_sayings(SayingGenerator(model, tokenizer), recipe["sample_max_new_tokens"])
        dataset = Dataset.from_list([{key: pair[key] for key in ("prompt", "chosen", "rejected")} for pair in pairs])
        trainer = FolksyDPOTrainer(model=model, ref_model=AutoModelForCausalLM.from_pretrained(str(sft_dir), dtype="float32"), args=config, train_dataset=dataset,
                             processing_class=tokenizer, callbacks=[MetricsCallback(lambda values, step: mlflow.log_metrics(values, step=step))])
        trainer.train()

        hf_dir = Path(scratch) / "hf_model"
        trainer.model.save_pretrained(hf_dir)
        tokenizer.save_pretrained(hf_dir)
        describe_model_dir(hf_dir, {  # the directory describes itself, as train's does: template, sampling, model card
            "base_model": inherited["base_model"], "method": "full fine-tune, then DPO", "tuned from": f"runs:/{train_run.info.run_id}/model",
            "preference pairs": len(pairs), "beta": recipe["beta"], "learning_rate": recipe["learning_rate"], "steps": trainer.state.global_step,
        })
        after = sample_sayings(SayingGenerator.from_pretrained(str(hf_dir)), recipe["sample_max_new_tokens"])
        mlflow.log_table({"prompt": list(SAMPLE_PROMPTS), "before": before, "after": after}, artifact_file="samples.json")
        critic_dir = critic.save(Path(scratch) / "picker") if critic is not None else None  # the train model's, unchanged
        mlflow.pyfunc.log_model(name="model", **model_kwargs(hf_dir, scratch, critic_dir, best_of))
        click.echo(f"dpo: model at runs:/{run.info.run_id}/model")


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(dpo)
