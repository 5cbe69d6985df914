"""`folksy`: use the registered model from a shell.

  folksy generate "Tell me something about rain." -n 3 --temperature 0.8
  folksy status
  folksy export-gguf --type q8_0      # the production model as one GGUF file for llama.cpp / Ollama
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
@click.option("--best-of", type=click.IntRange(1, 16), default=None, help="Sample k per saying, print the one the model's critic rates highest [default: the model's own best_of].")
@click.option("--model", "model_uri", default=PRODUCTION_URI, show_default=True, help="Any MLflow model URI of a folksy model.")
def generate(prompt, num_return_sequences, temperature, top_p, max_new_tokens, seed, best_of, model_uri):
    from folksy.best_of import served_picks
    from folksy.chat import check_prompt

    prompt = check_prompt(prompt)
    [sayings], _ = served_picks(
        model_uri, [prompt], keep=num_return_sequences, best_of=best_of, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
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


@cli.command("export-gguf", help="Write a folksy model as a GGUF file (llama.cpp, Ollama), check it loads back and answers "
             "as the original does, and log it to the model's train run with a tag on the version.")
@click.option("--model", "model_uri", default=PRODUCTION_URI, show_default=True, help="Any MLflow model URI of a folksy model.")
@click.option("--type", "quantization", type=click.Choice(["f16", "q8_0"]), default="q8_0", show_default=True, help="f16: exact to half precision; q8_0: 8-bit blocks, half the size.")
@click.option("--output", default="", help="The .gguf file to write [default: exports/<model>-<version or run>.<type>.gguf].")
@click.option("--log/--no-log", default=True, show_default=True, help="Log the file as an artifact of the model's train run and tag its version.")
def export_gguf(model_uri, quantization, output, log):
    import tempfile
    from pathlib import Path

    from mlflow import MlflowClient

    from folksy.defaults import PROJECT_ROOT
    from folksy.generation import SayingGenerator, download_hf_dir
    from folksy.gguf_export import CHECK_PROMPTS, greedy_agreement, load_gguf_generator, write_gguf
    from folksy.lineage import model_version_of, source_run_id

    with tempfile.TemporaryDirectory(prefix="folksy-model-") as scratch:
        hf_dir = download_hf_dir(model_uri, scratch, option="--model")  # first: a bad URI is refused in one line
        version = model_version_of(model_uri)
        run_id = version.run_id if version else source_run_id(model_uri)
        label = f"{version.name}-v{version.version}" if version else f"run-{run_id or 'model'}"
        target = Path(output) if output else PROJECT_ROOT / "exports" / f"{label}.{quantization}.gguf"
        write_gguf(hf_dir, target, quantization)
        original = SayingGenerator.from_pretrained(str(hf_dir))
    equal, pairs = greedy_agreement(original, load_gguf_generator(target))
    agreement = f"{equal}/{len(CHECK_PROMPTS)}"
    click.echo(f"export-gguf: {target} ({target.stat().st_size / 2**20:.1f} MiB); greedy sayings equal to the original's on {agreement} prompts")
    for prompt, original, exported in pairs:
        if original != exported:
            click.echo(f"  differs on {prompt!r}: {original!r} vs {exported!r}")
    if log and run_id:
        client = MlflowClient()
        client.log_artifact(run_id, str(target), artifact_path="gguf")
        if version:
            client.set_model_version_tag(version.name, version.version, f"gguf_{quantization}", f"runs:/{run_id}/gguf/{target.name}")
            client.set_model_version_tag(version.name, version.version, f"gguf_{quantization}_greedy_agreement", agreement)
        click.echo(f"export-gguf: logged as runs:/{run_id}/gguf/{target.name}" + (f", tagged on {version.name} v{version.version}" if version else ""))


def main():
    from folksy.errors import run_command

    run_command(cli)


if __name__ == "__main__":
    main()
