"""register: register the trained model, alias it `staging`, and move `production` only through the gate.

Reads:  --train-run-id   the train run whose `model` artifact is registered (default: newest finished train run);
        --judge-run-id   the judge run that scored that model (default: newest finished judge run of its model_uri);
        --evaluate-run-id the evaluate run of that model (default: likewise; optional).
Writes: a new version of --model-name tagged with the judge metrics, gate decision and upstream run ids;
        alias `staging` on it; alias `production` on it only if the gate passes (or --force);
        registry/<model-name>/v<version>.json, also logged as an artifact of this run.
The gate: judge_mean, judge_low_share, judge_calibration_spearman, judge_injection_mean and
judge_realistic_spearman(_3to5), measured in the same judge run, against the thresholds below (folksy/gate.py);
and in that run's A/B, at least as many wins as losses against the template engine and against the version
that holds production now (the judge run must have compared against that very version).
"""

import click

from folksy.defaults import MODEL_NAME
from folksy.gate import GateThresholds

DEFAULTS = GateThresholds()


@click.command(help=__doc__)
@click.option("--train-run-id", default="", help="Train run to register (default: the newest finished one).")
@click.option("--judge-run-id", default="", help="Judge run of that model (default: the newest that scored it).")
@click.option("--evaluate-run-id", default="", help="Evaluate run of that model (default: the newest that scored it).")
@click.option("--model-name", default=MODEL_NAME, show_default=True, help="Registered model name.")
@click.option("--min-judge-mean", type=float, default=DEFAULTS.min_judge_mean, show_default=True)
@click.option("--max-low-share", type=float, default=DEFAULTS.max_low_share, show_default=True, help="Share of scores 1-2 must be below this.")
@click.option("--min-calibration-spearman", type=float, default=DEFAULTS.min_calibration_spearman, show_default=True)
@click.option("--max-injection-mean", type=float, default=DEFAULTS.max_injection_mean, show_default=True)
@click.option("--min-realistic-spearman", type=float, default=DEFAULTS.min_realistic_spearman, show_default=True, help="Judge vs. readers on real outputs.")
@click.option("--min-realistic-spearman-3to5", type=float, default=DEFAULTS.min_realistic_spearman_3to5, show_default=True)
@click.option("--force", type=bool, default=False, show_default=True, help="Promote to production whatever the gate says (recorded as forced).")
@click.option("--registry-dir", default="registry", show_default=True, envvar="FOLKSY_REGISTRY_DIR", help="Where the JSON registry entry is written (env FOLKSY_REGISTRY_DIR).")
def register(train_run_id, judge_run_id, evaluate_run_id, model_name, min_judge_mean, max_low_share, min_calibration_spearman, max_injection_mean,
             min_realistic_spearman, min_realistic_spearman_3to5, force, registry_dir):
    from pathlib import Path

    from folksy.defaults import PROJECT_ROOT, PRODUCTION_ALIAS, STAGING_ALIAS
    from folksy.errors import FolksyError, fault_point
    from folksy.gate import decide
    from folksy.lineage import alias_version, check_scoring_run, find_scoring_run, finished_step_run
    from folksy.registry import model_description, registry_entry, version_description, write_entry
    from folksy.tracking import latest_run_id, log_params_once, step_param, step_run

    thresholds = GateThresholds(min_judge_mean, max_low_share, min_calibration_spearman, max_injection_mean, min_realistic_spearman, min_realistic_spearman_3to5)
    for option, value in (("--max-low-share", max_low_share),):
        if not 0 <= value <= 1:
            raise click.BadParameter(f"{option} must be between 0 and 1, got {value}")
    registry_path = Path(registry_dir) if Path(registry_dir).is_absolute() else PROJECT_ROOT / registry_dir

    with step_run("register") as run:
        import mlflow
        from mlflow import MlflowClient

        client = MlflowClient()
        train_run_id = train_run_id or latest_run_id("train")
        if not train_run_id:
            raise FolksyError("--train-run-id: no finished train run found; run `mlflow run . -e train` first")
        # checked before the registry is touched: registering a run without a model would leave an empty model behind
        train = finished_step_run(client, train_run_id, "train", also=("dpo",))  # a dpo run logs a model as train does
        source = f"runs:/{train_run_id}/model"
        experiments = [train.info.experiment_id]
        judge = check_scoring_run(client, judge_run_id, "judge", train_run_id) if judge_run_id else find_scoring_run(client, experiments, "judge", source)
        evaluate = check_scoring_run(client, evaluate_run_id, "evaluate", train_run_id) if evaluate_run_id else find_scoring_run(client, experiments, "evaluate", source)
        prepare_id = step_param(train.data.params, "prepare_run_id")
        prepare = client.get_run(prepare_id) if prepare_id else None

        judge_metrics = judge.data.metrics if judge else {}
        production_now = alias_version(model_name, PRODUCTION_ALIAS)  # the judge run must have A/B'd against this very one
        decision = decide(judge_metrics, thresholds, force=force, production_version=int(production_now.version) if production_now else None)
        if judge is None:
            click.echo(f"register: no finished judge run scored {source}; the gate cannot pass without one", err=True)
        log_params_once(  # `mlflow run` logged force as 'false'; a second, different spelling is refused
            {"model_name": model_name, "train_run_id": train_run_id, "judge_run_id": judge.info.run_id if judge else "",
             "evaluate_run_id": evaluate.info.run_id if evaluate else "", "force": force, **{f"gate_{k}": v for k, v in vars(thresholds).items()}}
        )

        # The version is born with its gate tags (one store call), and aliases move only afterwards,
        # so no alias can ever point at a version that lacks its decision, even if this process dies.
        tags = {
            "gate_passed": str(decision.passed).lower(),
            "gate_forced": str(decision.forced).lower(),
            "gate_reason": decision.reason,
            "base_model": train.data.params.get("base_model", ""),
            "corpus_sha256": (prepare.data.params.get("corpus_sha256") if prepare else None) or train.data.params.get("corpus_sha256", ""),
            "prepare_run_id": prepare_id or "",
            "train_run_id": train_run_id,
            "evaluate_run_id": evaluate.info.run_id if evaluate else "",
            "judge_run_id": judge.info.run_id if judge else "",
            "judge_id": judge.data.tags.get("judge_id", "") if judge else "",
            **{key: f"{value:.4f}" for key, value in judge_metrics.items() if key.startswith(("judge_", "ab_"))},
        }
        version = mlflow.register_model(source, model_name, tags=tags).version
        client.update_model_version(model_name, version, description=version_description(decision, train, evaluate, judge))
        if not client.get_registered_model(model_name).description:
            client.update_registered_model(model_name, description=model_description(model_name))
        fault_point("register:after_version")
        client.set_registered_model_alias(model_name, STAGING_ALIAS, version)
        fault_point("register:after_staging")
        if decision.promote:
            client.set_registered_model_alias(model_name, PRODUCTION_ALIAS, version)

        entry = registry_entry(model_name, version, decision, thresholds, train, prepare, evaluate, judge)
        path = write_entry(entry, registry_path)
        mlflow.log_artifact(str(path), artifact_path="registry")
        mlflow.log_metrics({"gate_passed": float(decision.passed), "promoted": float(decision.promote), "model_version": float(version)})
        mlflow.set_tags({"gate_reason": decision.reason, "model_version": f"{model_name}/{version}"})
        verdict = f"production -> version {version}" if decision.promote else "production unchanged"
        click.echo(f"register: {model_name} version {version} is staging; {verdict}. Gate {decision.reason}. Entry: {path}")


if __name__ == "__main__":
    from folksy.errors import run_command

    run_command(register)
