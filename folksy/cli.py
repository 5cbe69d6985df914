"""`folksy`: use the registered model from a shell.

  folksy generate "Tell me something about rain." -n 3 --temperature 0.8
  folksy status
"""

import click

from folksy.defaults import MODEL_NAME, PRODUCTION_URI
from folksy.generation import SAMPLING


@click.group(help=__doc__)
def cli():
    from folksy.tracking import tracking_uri

    import mlflow

    mlflow.set_tracking_uri(tracking_uri())


@cli.command(help="Print sayings for a prompt from a registered (or any folksy) model.")
@click.argument("prompt")
@click.option("-n", "--num", "num_return_sequences", type=click.IntRange(1, 20), default=1, show_default=True, help="How many sayings.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=SAMPLING.temperature, show_default=True, help="0 is greedy.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=SAMPLING.top_p, show_default=True)
@click.option("--max-new-tokens", type=click.IntRange(1, 256), default=SAMPLING.max_new_tokens, show_default=True)
@click.option("--seed", type=int, default=SAMPLING.seed, help="Fix the sampling for reproducible sayings.")
@click.option("--model", "model_uri", default=PRODUCTION_URI, show_default=True, help="Any MLflow model URI of a folksy model.")
def generate(prompt, num_return_sequences, temperature, top_p, max_new_tokens, seed, model_uri):
    from folksy.chat import check_prompt
    from folksy.generation import load_generator

    prompt = check_prompt(prompt)
    generator = load_generator(model_uri)
    [sayings] = generator.generate(
        [prompt], temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, num_return_sequences=num_return_sequences, seed=seed
    )
    for saying in sayings:
        click.echo(saying)


@cli.command(help="Which version holds which alias, with its judge metrics and gate decision.")
@click.option("--model-name", default=MODEL_NAME, show_default=True)
def status(model_name):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from folksy.errors import FolksyError
    from folksy.gate import targets
    from folksy.judging.ab import ab_line

    client = MlflowClient()
    try:
        model = client.get_registered_model(model_name)
    except MlflowException:
        raise FolksyError(f"--model-name '{model_name}': no such registered model; run the pipeline first (`make run`)") from None
    holders = {}
    for alias, version in model.aliases.items():
        holders.setdefault(str(version), []).append(alias)
    versions = sorted(client.search_model_versions(f"name = '{model_name}'"), key=lambda v: int(v.version), reverse=True)
    click.echo(f"{model_name}: {len(versions)} version(s)")
    for version in versions:
        tags = version.tags
        alias_text = ", ".join(sorted(holders.get(str(version.version), []))) or "-"
        metrics = "  ".join(
            f"{name}={tags[name]}"
            for name in ("judge_mean", "judge_low_share", "judge_calibration_spearman", "judge_injection_mean", "judge_realistic_spearman")
            if name in tags
        )
        click.echo(f"  v{version.version:<4} [{alias_text}]  {metrics or 'no judge metrics'}")
        click.echo(f"        gate: {tags.get('gate_reason', 'no gate decision recorded')}")
        ab = {name: float(value) for name, value in tags.items() if name.startswith("ab_")}
        if "ab_engine_win_rate" in ab:
            met = ", ".join(f"{target} {'met' if ok else 'not met'}" for target, ok in targets(ab).items())
            click.echo(f"        A/B: {ab_line(ab)}  (target {met})")


def main():
    from folksy.errors import run_command

    run_command(cli)


if __name__ == "__main__":
    main()
