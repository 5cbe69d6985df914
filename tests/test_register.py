"""register against a real SQLite tracking store and model registry."""

import json
import textwrap

import pytest

from tests.conftest import run_step

GOOD = {"judge_mean": 3.9, "judge_low_share": 0.04, "judge_calibration_spearman": 0.72, "judge_injection_mean": 1.1, "ab_engine_win_rate": 0.86, "ab_engine_loss_rate": 0.06,
        "judge_realistic_spearman": 0.7, "judge_realistic_spearman_3to5": 0.45}
WEAK = dict(GOOD, judge_mean=3.1, judge_low_share=0.22)


@pytest.fixture
def stub_model_file(tmp_path):
    # A real MLflow "models from code" pyfunc, standing in for the trained model: the registry does not
    # care what the model computes, and the folksy model itself is covered by test_main and test_train.
    path = tmp_path / "stub_model.py"
    path.write_text(
        textwrap.dedent(
            """
            import mlflow

            class Stub(mlflow.pyfunc.PythonModel):
                def predict(self, context, model_input, params=None):
                    return ["A fence post ain't a tree, no matter how long it stands."] * len(model_input)

            mlflow.models.set_model(Stub())
            """
        )
    )
    return str(path)


def make_upstream_runs(stub_model_file, judge_metrics: dict | None) -> dict:
    """A prepare, a train (with a logged model) and a judge run, as the real steps would leave them."""
    import mlflow

    from folksy.tracking import configure

    configure()
    ids = {}
    with mlflow.start_run(run_name="prepare", tags={"folksy.step": "prepare"}) as run:
        mlflow.log_params({"corpus": "corpus/training_pairs.jsonl", "corpus_sha256": "ab" * 32})
        mlflow.log_metrics({"rows_total": 100, "rows_train": 90, "rows_val": 5, "rows_test": 5})
        ids["prepare"] = run.info.run_id
    with mlflow.start_run(run_name="train", tags={"folksy.step": "train"}) as run:
        mlflow.log_params({"base_model": "smollm2-135m-instruct", "method": "full", "learning_rate": 2e-5, "prepare_run_id": ids["prepare"]})
        # requirements stated, as the real train step does: inferring them runs the model in another interpreter
        mlflow.pyfunc.log_model(name="model", python_model=stub_model_file, pip_requirements=[f"mlflow=={mlflow.__version__}"])
        ids["train"] = run.info.run_id
    if judge_metrics is not None:
        with mlflow.start_run(run_name="judge", tags={"folksy.step": "judge", "judge_id": "critic:v1"}) as run:
            mlflow.log_param("model_uri", f"runs:/{ids['train']}/model")
            mlflow.log_metrics(judge_metrics)
            ids["judge"] = run.info.run_id
    return ids


def register(tmp_path, *extra: str):
    return run_step("steps.register", "--registry-dir", str(tmp_path / "registry"), *extra)


def aliases(name="folksy-proverbs") -> dict:
    from mlflow import MlflowClient

    return dict(MlflowClient().get_registered_model(name).aliases)


@pytest.mark.slow
def test_gate_pass_moves_production_and_writes_entry(tracking_uri, tmp_path, stub_model_file):
    ids = make_upstream_runs(stub_model_file, GOOD)
    result = register(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "production -> version 1" in result.stdout
    assert aliases() == {"staging": 1, "production": 1}

    from mlflow import MlflowClient

    tags = MlflowClient().get_model_version("folksy-proverbs", "1").tags
    assert tags["gate_passed"] == "true" and tags["gate_forced"] == "false"
    assert tags["judge_mean"] == "3.9000" and tags["judge_run_id"] == ids["judge"]
    assert tags["train_run_id"] == ids["train"] and tags["prepare_run_id"] == ids["prepare"]
    assert tags["corpus_sha256"] == "ab" * 32 and tags["base_model"] == "smollm2-135m-instruct"
    # what the registry page shows: the model says what it is, the version its decision and figures
    description = MlflowClient().get_model_version("folksy-proverbs", "1").description
    assert description.startswith("**Gate passed: production.**")
    assert "| judge mean (1-5) | 3.90 |" in description and "| A/B vs template engine: win | 86% |" in description
    assert "Fine-tuned from `smollm2-135m-instruct` (full," in description and f"judge `{ids['judge']}`" in description
    assert 'load_model("models:/folksy-proverbs@production")' in MlflowClient().get_registered_model("folksy-proverbs").description

    entry = json.loads((tmp_path / "registry" / "folksy-proverbs" / "v1.json").read_text())
    assert entry["status"] == "production" and entry["model_id"] == "folksy-proverbs/1"
    assert entry["dataset"] == {"name": "corpus/training_pairs.jsonl", "size": 100, "hash": "ab" * 32, "splits": {"train": 90, "val": 5, "test": 5}}
    assert entry["metrics"]["judge"]["judge_mean"] == 3.9
    assert entry["hyperparameters"]["learning_rate"] == "2e-05"
    assert entry["artifacts"]["model_uri"] == "models:/folksy-proverbs/1"
    assert {"torch", "mlflow"} <= set(entry["training_metadata"]["framework_versions"])


@pytest.mark.slow
def test_gate_fail_keeps_production_where_it_was(tracking_uri, tmp_path, stub_model_file):
    make_upstream_runs(stub_model_file, GOOD)
    assert register(tmp_path).returncode == 0
    make_upstream_runs(stub_model_file, WEAK)
    result = register(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "production unchanged" in result.stdout and "judge_mean 3.100 is not >= 3.5" in result.stdout
    assert aliases() == {"staging": 2, "production": 1}

    from mlflow import MlflowClient

    tags = MlflowClient().get_model_version("folksy-proverbs", "2").tags
    assert tags["gate_passed"] == "false"
    assert "judge_low_share 0.220 is not < 0.1" in tags["gate_reason"]
    description = MlflowClient().get_model_version("folksy-proverbs", "2").description
    assert description.startswith("**Gate failed: staging only.**") and "judge_mean 3.100 is not >= 3.5" in description
    entry = json.loads((tmp_path / "registry" / "folksy-proverbs" / "v2.json").read_text())
    assert entry["status"] == "staging"


@pytest.mark.slow
def test_force_promotes_and_records_it(tracking_uri, tmp_path, stub_model_file):
    make_upstream_runs(stub_model_file, WEAK)
    result = register(tmp_path, "--force", "true")
    assert result.returncode == 0, result.stderr
    assert aliases() == {"staging": 1, "production": 1}

    from mlflow import MlflowClient

    tags = MlflowClient().get_model_version("folksy-proverbs", "1").tags
    assert tags["gate_passed"] == "false" and tags["gate_forced"] == "true"
    assert tags["gate_reason"].startswith("forced despite gate")
    assert MlflowClient().get_model_version("folksy-proverbs", "1").description.startswith("**Forced into production**")


@pytest.mark.slow
def test_no_judge_run_means_no_promotion(tracking_uri, tmp_path, stub_model_file):
    make_upstream_runs(stub_model_file, None)
    result = register(tmp_path, "--min-judge-mean", "1")
    assert result.returncode == 0, result.stderr
    assert "no finished judge run" in result.stderr
    assert aliases() == {"staging": 1}


def test_missing_train_run_is_a_one_line_error(tracking_uri, tmp_path):
    result = register(tmp_path, "--train-run-id", "0123456789abcdef")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "Error: --train-run-id '0123456789abcdef': no such run"
    import mlflow

    runs = mlflow.search_runs(experiment_names=["folksy-test"], output_format="list")
    assert [r.info.status for r in runs] == ["FAILED"]


@pytest.mark.slow
def test_folksy_status_shows_aliases_and_gate(tracking_uri, tmp_path, stub_model_file):
    make_upstream_runs(stub_model_file, GOOD)
    assert register(tmp_path).returncode == 0
    make_upstream_runs(stub_model_file, WEAK)
    assert register(tmp_path).returncode == 0
    result = run_step("folksy.cli", "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "folksy-proverbs: 2 version(s)"
    assert lines[1].startswith("  v2    [staging]  judge_mean=3.1000") and "judge_realistic_spearman=0.7000" in lines[1]
    assert "gate: failed: judge_mean 3.100 is not >= 3.5" in lines[2]
    assert lines[3] == "        A/B: vs engine win 86% loss 6%  (target ab_engine_win_rate > 0.8 met)"
    assert lines[4].startswith("  v1    [production]  judge_mean=3.9000")
    missing = run_step("folksy.cli", "status", "--model-name", "nope")
    assert missing.returncode == 2 and "no such registered model" in missing.stderr


@pytest.mark.slow
@pytest.mark.parametrize("point", ["register:after_version", "register:after_staging"])
def test_crash_mid_register_leaves_no_alias_on_an_untagged_version(tracking_uri, tmp_path, stub_model_file, point):
    """SIGKILL at a fault point: whatever survives, every alias points at a version that has its gate tags."""
    make_upstream_runs(stub_model_file, GOOD)
    assert register(tmp_path).returncode == 0
    make_upstream_runs(stub_model_file, GOOD)
    crashed = run_step("steps.register", "--registry-dir", str(tmp_path / "registry"), env={"FOLKSY_FAULT": point})
    assert crashed.returncode == -9

    from mlflow import MlflowClient

    client = MlflowClient()
    current = aliases()
    assert current["production"] == 1  # the crashed run never got as far as production
    assert current["staging"] == (2 if point == "register:after_staging" else 1)
    for version in client.search_model_versions("name = 'folksy-proverbs'"):
        assert version.tags.get("gate_passed") in {"true", "false"}, f"version {version.version} has no gate decision"
    assert not (tmp_path / "registry" / "folksy-proverbs" / "v2.json").exists()


@pytest.mark.slow
def test_racing_registers_end_with_one_consistent_production(tracking_uri, tmp_path, stub_model_file):
    import os
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    first = make_upstream_runs(stub_model_file, GOOD)
    second = make_upstream_runs(stub_model_file, dict(GOOD, judge_mean=4.2))
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "steps.register", "--train-run-id", ids["train"], "--registry-dir", str(tmp_path / "registry")],
            cwd=PROJECT_ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for ids in (first, second)
    ]
    outcomes = [racer.communicate(timeout=300) for racer in racers]
    # the racers' own stderr, whole: pytest's repr of the tuples cuts the middle, where a racer's error is
    assert [racer.returncode for racer in racers] == [0, 0], "\n\n".join(f"racer {i} stderr:\n{err}" for i, (_, err) in enumerate(outcomes))

    from mlflow import MlflowClient

    client = MlflowClient()
    production = client.get_model_version_by_alias("folksy-proverbs", "production")
    assert production.tags["gate_passed"] == "true"
    # the alias's tags belong to the version it points at, not to the other racer's
    assert production.tags["train_run_id"] in {first["train"], second["train"]}
    assert production.run_id == production.tags["train_run_id"]
    versions = client.search_model_versions("name = 'folksy-proverbs'")
    assert sorted(int(v.version) for v in versions) == [1, 2]


@pytest.mark.slow
def test_each_model_is_gated_on_its_own_judge_run_and_a_foreign_one_is_refused(tracking_uri, tmp_path, stub_model_file):
    """Two models in one store, a good and a weak one, each with its own judge run (the weak one's the
    newer): register finds the right judge for each, and refuses another model's judge run by id."""
    good = make_upstream_runs(stub_model_file, GOOD)
    weak = make_upstream_runs(stub_model_file, WEAK)

    result = register(tmp_path, "--train-run-id", good["train"])
    assert result.returncode == 0, result.stderr
    assert aliases() == {"staging": 1, "production": 1}
    result = register(tmp_path, "--train-run-id", weak["train"])
    assert result.returncode == 0, result.stderr
    assert aliases() == {"staging": 2, "production": 1}  # the weak model's own judge run kept it out

    from mlflow import MlflowClient

    client = MlflowClient()
    assert client.get_model_version("folksy-proverbs", "1").tags["judge_run_id"] == good["judge"]
    assert client.get_model_version("folksy-proverbs", "2").tags["judge_run_id"] == weak["judge"]

    foreign = register(tmp_path, "--train-run-id", weak["train"], "--judge-run-id", good["judge"])
    assert foreign.returncode == 2
    assert foreign.stderr.strip().splitlines()[-1] == (
        f"Error: --judge-run-id '{good['judge']}': it scored runs:/{good['train']}/model, not runs:/{weak['train']}/model, the model being registered"
    )
    not_a_judge = register(tmp_path, "--train-run-id", weak["train"], "--judge-run-id", weak["prepare"])
    assert not_a_judge.stderr.strip().splitlines()[-1] == f"Error: --judge-run-id '{weak['prepare']}': a FINISHED prepare run; register needs a FINISHED judge run"
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'folksy-proverbs'")) == [1, 2]  # nothing registered by the refusals


@pytest.mark.slow
def test_production_moves_only_to_a_version_that_beat_it_in_its_own_judge_run(tracking_uri, tmp_path, stub_model_file):
    """The compare gate against a real registry: v1 takes production (nothing to beat but the engine); a
    better-scored model that lost its A/B to v1 does not; nor one judged before v1 held production; one
    that beat v1 does. The spec's 80% target against the engine is recorded beside the gate, not in it."""
    from mlflow import MlflowClient

    make_upstream_runs(stub_model_file, GOOD)
    assert register(tmp_path).returncode == 0 and aliases()["production"] == 1
    against_v1 = dict(GOOD, judge_mean=4.4, ab_champion_version=1, ab_champion_pairs=50)
    make_upstream_runs(stub_model_file, dict(against_v1, ab_champion_win_rate=0.2, ab_champion_loss_rate=0.5))
    lost = register(tmp_path)
    assert "production unchanged" in lost.stdout and "A/B against production version 1: wins 0.20 < losses 0.50" in lost.stdout
    make_upstream_runs(stub_model_file, dict(GOOD, judge_mean=4.4))  # judged while nothing held production
    stale = register(tmp_path)
    assert "compared against no production version, but version 1 holds production now; judge again" in stale.stdout
    assert aliases() == {"staging": 3, "production": 1}
    make_upstream_runs(stub_model_file, dict(against_v1, ab_champion_win_rate=0.5, ab_champion_loss_rate=0.2))
    won = register(tmp_path)
    assert won.returncode == 0 and "production -> version 4" in won.stdout, won.stdout + won.stderr
    assert aliases() == {"staging": 4, "production": 4}

    tags = MlflowClient().get_model_version("folksy-proverbs", "4").tags
    assert (tags["ab_champion_version"], tags["ab_champion_win_rate"], tags["ab_engine_loss_rate"]) == ("1.0000", "0.5000", "0.0600")
    entry = json.loads((tmp_path / "registry" / "folksy-proverbs" / "v4.json").read_text())
    assert entry["gate"]["targets_met"] == {"ab_engine_win_rate > 0.8": True}  # GOOD wins 86% against the engine
    status = run_step("folksy.cli", "status").stdout.splitlines()
    assert status[3] == "        A/B: vs engine win 86% loss 6%; vs champion v1 win 50% loss 20%  (target ab_engine_win_rate > 0.8 met)"


@pytest.mark.slow
def test_the_gate_thresholds_given_to_register_decide_and_are_recorded(tracking_uri, tmp_path, stub_model_file):
    """--min-judge-mean and --max-low-share against a real judge run: the weak model passes a gate lowered
    to its figures, fails the default one, and the entry records the thresholds used."""
    weak = make_upstream_runs(stub_model_file, WEAK)
    result = register(tmp_path, "--train-run-id", weak["train"], "--min-judge-mean", "3.1", "--max-low-share", "0.23")
    assert result.returncode == 0, result.stderr
    assert aliases() == {"staging": 1, "production": 1}
    entry = json.loads((tmp_path / "registry" / "folksy-proverbs" / "v1.json").read_text())
    assert entry["gate"]["passed"] is True
    assert entry["gate"]["thresholds"] == {"min_judge_mean": 3.1, "max_low_share": 0.23, "min_calibration_spearman": 0.5, "max_injection_mean": 2.0,
                                           "min_realistic_spearman": 0.65, "min_realistic_spearman_3to5": 0.4}
    result = register(tmp_path, "--train-run-id", weak["train"], "--min-judge-mean", "3.11")
    assert aliases() == {"staging": 2, "production": 1}
    assert "judge_mean 3.100 is not >= 3.11" in result.stdout
