"""The judge entry point, run as MLproject runs it, against a real temporary tracking store.

The candidate model is the tiny random Qwen2 model from conftest as a model directory (load_generator
takes one): its sayings are nonsense, which is fine, since what is tested is the judging around them,
and it generates in a blink where SmolLM2 takes minutes on two shared cores. The prepare run is a real
run carrying a test split built from the real engine. The endpoint
runs talk to ScriptedJudgeServer (tests/test_judging.py), a real HTTP server on 127.0.0.1 standing in
for a 32B judge that cannot run on this machine.
"""

import json
import socket
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, run_step
from tests.test_judging import ScriptedJudgeServer, completion, rubric_answer, saying_of

REGISTER_READS = (
    "judge_mean", "judge_low_share", "judge_high_share", "judge_parse_failures", "judge_calibration_spearman",
    "judge_calibration_mae", "judge_injection_mean", "ab_engine_win_rate", "ab_engine_loss_rate", "ab_champion_version", "ab_champion_pairs",
)
TINY = ("--quick", "true", "--sample-size", "6", "--ab-size", "3")


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    from folksy.corpus.generate import build_corpus, to_jsonl

    rows, _ = build_corpus(seed=5, n_sayings=60)
    path = tmp_path_factory.mktemp("judge") / "corpus.jsonl"
    path.write_text(to_jsonl(rows))
    return path


@pytest.fixture
def prepare_run(tracking_uri, small_corpus, tmp_path) -> str:
    """A finished prepare run whose splits/test.jsonl holds 30 rows in the prepare step's format."""
    import mlflow

    from folksy.chat import to_prompt_completion

    rows = [json.loads(line) for line in small_corpus.read_text().splitlines()][:30]
    split = tmp_path / "splits" / "test.jsonl"
    split.parent.mkdir()
    split.write_text("".join(json.dumps(to_prompt_completion(row)) + "\n" for row in rows))
    mlflow.set_experiment("folksy-test")
    with mlflow.start_run(run_name="prepare", tags={"folksy.step": "prepare"}) as run:
        mlflow.log_artifacts(str(split.parent), artifact_path="splits")
    return run.info.run_id


def register_champion(model_dir: str, tmp_path) -> dict:
    """A different tiny model (weights shuffled from `model_dir`'s), logged as a folksy pyfunc and holding
    `production` as version 1; with a function giving its greedy-by-seed sayings as judge generates them."""
    import mlflow
    import torch
    from mlflow import MlflowClient
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.generation import inference_dtype, load_generator
    from folksy.pyfunc_model import model_kwargs

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    torch.manual_seed(7)
    with torch.no_grad():
        for weight in model.parameters():
            weight.add_(torch.randn_like(weight) * 0.5)
    champion_dir = tmp_path / "champion"
    model.save_pretrained(champion_dir, safe_serialization=True)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(champion_dir)
    mlflow.set_experiment("folksy-test")
    with mlflow.start_run(run_name="train", tags={"folksy.step": "train"}):
        info = mlflow.pyfunc.log_model(name="model", **model_kwargs(champion_dir, tmp_path / "scratch"))
    version = mlflow.register_model(info.model_uri, "folksy-proverbs").version
    MlflowClient().set_registered_model_alias("folksy-proverbs", "production", version)
    generator = load_generator(str(champion_dir), dtype=inference_dtype())  # as judge serves it
    return {"version": version, "sayings": lambda prompts: [o[0] for o in generator.generate(prompts, seed=42)]}


def judge_runs(status: str | None = None):
    import mlflow

    runs = mlflow.search_runs(experiment_names=["folksy-test"], filter_string="tags.`folksy.step` = 'judge'", output_format="list")
    return [run for run in runs if status is None or run.info.status == status]


def artifact_lines(run_id: str, name: str, tmp_path) -> list[dict]:
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(tmp_path / run_id))
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# fast


def test_help_names_what_it_reads_and_writes():
    from click.testing import CliRunner

    from steps.judge import judge

    text = CliRunner().invoke(judge, ["--help"]).output
    for needle in ("runs:/", "models:/folksy-critic@production", "splits/test.jsonl", "corpus/judge_calibration.jsonl",
                   "judge_results.jsonl", "judge_calibration_spearman", "ab_engine_win_rate", "ab_champion_version", "--champion-uri", "FOLKSY_JUDGE_API_KEY", "--max-failure-share"):
        assert needle in text, needle


def test_mlproject_defaults_match_the_command():
    from steps.judge import judge

    entry = yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())["entry_points"]["judge"]
    options = {param.name: param for param in judge.params}
    for name, spec in entry["parameters"].items():
        default = options[name].default
        expected = {"true": True, "false": False}.get(spec["default"], spec["default"]) if isinstance(default, bool) else spec["default"]
        assert default == expected, name
        assert f"--{name.replace('_', '-')} " in entry["command"], name


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "endpoint"], "--backend endpoint needs --endpoint-url and --endpoint-model"),
        (["--endpoint-url", "http://127.0.0.1:8000/v1"], "--endpoint-url/--endpoint-model are set but --backend is critic"),
        (["--backend", "oracle"], "Invalid value for '--backend'"),
        (["--max-failure-share", "2"], "Invalid value for '--max-failure-share'"),
    ],
)
def test_bad_options_are_one_line_errors_before_any_run(args, message, tracking_uri, monkeypatch):
    from click.testing import CliRunner

    from steps.judge import judge

    monkeypatch.delenv("FOLKSY_JUDGE_URL", raising=False)
    monkeypatch.delenv("FOLKSY_JUDGE_MODEL", raising=False)
    result = CliRunner().invoke(judge, args)
    assert result.exit_code == 2
    assert message in result.output.strip().splitlines()[-1]
    assert not Path(tracking_uri.removeprefix("sqlite:///")).exists()  # no run was opened, not even the store


# ---------------------------------------------------------------------------------------------
# slow: the real command end to end


@pytest.mark.slow
def test_default_critic_is_trained_registered_and_used_on_a_fresh_store(prepare_run, tiny_qwen2_dir, small_corpus, tmp_path):
    import mlflow

    # as `mlflow run . -e judge -P model_uri=...` does it: the run exists, its entry point parameters are
    # logged as given (an empty one as "''"), and the step gets the run's id in $MLFLOW_RUN_ID
    client = mlflow.MlflowClient()
    launched = client.create_run(mlflow.get_experiment_by_name("folksy-test").experiment_id).info.run_id
    for key, value in {"model_uri": tiny_qwen2_dir, "prepare_run_id": "''", "backend": "critic", "quick": "true"}.items():
        client.log_param(launched, key, value)
    result = run_step(
        "steps.judge", "--model-uri", tiny_qwen2_dir, "--prepare-run-id", "", "--backend", "critic", "--corpus", str(small_corpus), *TINY,
        env={"MLFLOW_RUN_ID": launched, "FOLKSY_CACHE": str(tmp_path / "cache")},  # an empty cache: the critic is trained
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = judge_runs("FINISHED")
    assert run.info.run_id == launched
    metrics, tags, params = run.data.metrics, run.data.tags, run.data.params
    for name in REGISTER_READS:
        assert name in metrics, name
    assert metrics["judge_items"] == 6 and metrics["ab_engine_pairs"] == 3 and metrics["judge_calibration_items"] == 74
    from folksy.judging.critic_data import realistic_heldout

    assert metrics["judge_realistic_items"] == 74 + len(realistic_heldout()) and len(params["realistic_sha256"]) == 64
    assert "judge_realistic_spearman_3to5" in metrics and "judge_realistic_mean_model_64" in metrics
    assert sum(metrics[f"judge_count_{n}"] for n in range(1, 6)) == 6
    assert 1.0 <= metrics["judge_mean"] <= 5.0 and metrics["judge_parse_failures"] == 0
    assert metrics["judge_injection_mean"] < 2.0  # even this small critic sees through the injections
    assert params["model_uri"] == tiny_qwen2_dir and len(params["calibration_sha256"]) == 64
    assert (params["prepare_run_id"], params["resolved_prepare_run_id"]) == ("''", prepare_run)  # found, and said so
    assert tags["judge_id"].startswith("critic:folksy-critic@production=v1:")

    critic_run = mlflow.get_run(tags["critic_run_id"])
    assert critic_run.info.status == "FINISHED" and "critic_heldout_spearman" in critic_run.data.metrics
    assert critic_run.data.tags["folksy.step"] == "critic" and critic_run.data.tags["mlflow.parentRunId"] == run.info.run_id
    version = mlflow.MlflowClient().get_model_version_by_alias("folksy-critic", "production")
    assert version.run_id == critic_run.info.run_id

    results = artifact_lines(run.info.run_id, "judge_results.jsonl", tmp_path)
    assert len(results) == 6 and {"prompt", "saying", "score", "justification", "raw", "judge_id"} <= set(results[0])
    assert len({r["input_type"] for r in results}) >= 3  # spread over the prompt types
    assert results[0]["justification"].startswith("critic raw")
    ab = artifact_lines(run.info.run_id, "ab_results.jsonl", tmp_path)
    assert len(ab) == 3 and all(row["outcome"] in ("model", "engine", "tie") for row in ab)  # the critic is never inconsistent
    assert len(artifact_lines(run.info.run_id, "calibration_results.jsonl", tmp_path)) == 74
    assert "judge_summary.png" in [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)]

    # the registered default critic is reused while what it was trained from is unchanged, and trained
    # afresh once it is not (here: its recipe tag says it came from other code or labels)
    from folksy.judging.critic_registry import critic_recipe

    assert version.tags["critic_recipe"] == critic_recipe(small_corpus)
    args = ("steps.judge", "--model-uri", tiny_qwen2_dir, "--backend", "critic", "--corpus", str(small_corpus), *TINY)
    assert run_step(*args).returncode == 0
    reused = max(judge_runs("FINISHED"), key=lambda r: r.info.start_time)
    assert reused.data.tags["judge_id"] == tags["judge_id"] and "critic_run_id" not in reused.data.tags
    client.set_model_version_tag("folksy-critic", version.version, "critic_recipe", "0123456789ab")
    result = run_step(*args, env={"FOLKSY_CACHE": str(tmp_path / "another-cache")})
    out = result.stdout + result.stderr
    assert result.returncode == 0 and "trained from another recipe" in out and "trained before from this recipe" not in out
    retrained = max(judge_runs("FINISHED"), key=lambda r: r.info.start_time)
    assert retrained.data.tags["judge_id"].startswith("critic:folksy-critic@production=v2:") and "critic_run_id" in retrained.data.tags
    # reproducible: a critic trained again from the same code and data, in another process, judges exactly alike
    scored = lambda r: {k: v for k, v in r.data.metrics.items() if k.startswith(("judge_", "ab_"))}  # noqa: E731
    assert scored(retrained) == scored(run) and retrained.data.tags["judge_id"].split(":")[-1] == tags["judge_id"].split(":")[-1]
    # ...so the machine's cache serves the next store that needs this critic, as it is, without training it
    client.set_model_version_tag("folksy-critic", "2", "critic_recipe", "0123456789ab")
    result = run_step(*args, env={"FOLKSY_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 0 and "trained before from this recipe on this machine" in result.stdout + result.stderr
    assert "critic: embedding" not in result.stdout + result.stderr  # not trained
    cached = max(judge_runs("FINISHED"), key=lambda r: r.info.start_time)
    assert cached.data.tags["judge_id"].startswith("critic:folksy-critic@production=v3:") and scored(cached) == scored(run)


@pytest.mark.slow
def test_endpoint_judge_end_to_end_never_logs_the_key(prepare_run, tiny_qwen2_dir, tmp_path):
    import mlflow

    from folksy.judging.rubric import SAYING_CLOSE, SAYING_OPEN, quote_saying

    secret = "sk-folksy-test-secret-123"
    seen = lambda text: quote_saying(text)[len(SAYING_OPEN) : -len(SAYING_CLOSE)].strip()  # the saying as the judge sees it
    scripted = lambda text: 1 + len(seen(text)) % 5  # a score the test can compute for any saying

    def by_length(body):
        if "Saying B" in body["messages"][-1]["content"]:
            return rubric_answer(body)  # pairs go to the shorter saying
        return f"Score: {scripted(saying_of(body))}\nJustification: by the rubric."

    champion = register_champion(tiny_qwen2_dir, tmp_path)  # another model holds production: the candidate meets it too
    with ScriptedJudgeServer(lambda body, n: (200, completion(by_length(body)), None, 0)) as server:
        result = run_step(
            "steps.judge", "--model-uri", tiny_qwen2_dir, "--prepare-run-id", prepare_run, "--backend", "endpoint",
            "--endpoint-url", server.url, "--endpoint-model", "judge-32b", *TINY, env={"FOLKSY_JUDGE_API_KEY": secret},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = judge_runs("FINISHED")
    assert run.data.tags["judge_id"] == "endpoint:judge-32b"
    # 74 calibration items + the real outputs held out + 6 sayings rated, 3 pairs compared twice (order swapped)
    from folksy.judging.critic_data import load_calibration, realistic_heldout

    real = realistic_heldout()
    rated = [r for r in server.requests if "Saying B" not in r["messages"][-1]["content"]]
    assert len(rated) == 80 + len(real) and len(server.requests) == 86 + 6 + len(real)  # and 3 pairs against the champion, twice
    # The scripted judge's answers make every figure exact: 1 + the saying's length mod 5 as the judge saw
    # it; a pair goes to the shorter saying, so a swap-consistent win is the strictly shorter side.
    from folksy.judging.summary import spearman

    metrics = run.data.metrics
    heldout = [row for row in load_calibration() if row["split"] == "heldout"]
    expected = [float(scripted(row["text"])) for row in heldout]
    labels = [float(row["label"]) for row in heldout]
    assert metrics["judge_calibration_mae"] == pytest.approx(sum(abs(e - l) for e, l in zip(expected, labels)) / len(heldout))
    # on real outputs: the old held-out items and the realistic ones together
    expected += [float(scripted(row["text"])) for row in real]
    labels += [float(row["label"]) for row in real]
    assert metrics["judge_realistic_spearman"] == pytest.approx(spearman(expected, labels))
    assert metrics["judge_realistic_mae"] == pytest.approx(sum(abs(e - l) for e, l in zip(expected, labels)) / len(labels))
    expected, labels = expected[: len(heldout)], labels[: len(heldout)]
    rated = artifact_lines(run.info.run_id, "judge_results.jsonl", tmp_path / "r")
    assert [r["score"] for r in rated] == [scripted(r["saying"]) for r in rated]
    assert metrics["judge_mean"] == pytest.approx(sum(scripted(r["saying"]) for r in rated) / 6)
    assert len(set(expected)) > 1 and metrics["judge_calibration_spearman"] == pytest.approx(spearman(expected, labels))
    ab = artifact_lines(run.info.run_id, "ab_results.jsonl", tmp_path / "ab")

    def shorter(row):  # by the length the scripted judge sees
        model, engine = (len(seen(row[side])) for side in ("model_saying", "engine_saying"))
        return "model" if model < engine else "engine" if engine < model else "inconsistent"

    assert [row["outcome"] for row in ab] == [shorter(row) for row in ab]
    assert metrics["ab_engine_pairs"] == 3 and metrics["ab_engine_win_rate"] == pytest.approx(sum(shorter(r) == "model" for r in ab) / 3)
    assert metrics["ab_engine_loss_rate"] == pytest.approx(sum(shorter(r) == "engine" for r in ab) / 3)
    # the champion answered the same prompts, pinned by version number, and is scored as its own opponent
    duel = artifact_lines(run.info.run_id, "ab_champion_results.jsonl", tmp_path / "duel")
    assert [row["prompt"] for row in duel] == [row["prompt"] for row in ab]
    assert [row["model_saying"] for row in duel] == [row["model_saying"] for row in ab]
    assert [row["champion_saying"] for row in duel] == champion["sayings"]([row["prompt"] for row in duel])
    outcomes = ["model" if len(seen(r["model_saying"])) < len(seen(r["champion_saying"])) else
                "champion" if len(seen(r["champion_saying"])) < len(seen(r["model_saying"])) else "inconsistent" for r in duel]
    assert [row["outcome"] for row in duel] == outcomes and set(outcomes) != {"inconsistent"}
    assert metrics["ab_champion_version"] == 1 and metrics["ab_champion_pairs"] == 3 and metrics["ab_champion_is_candidate"] == 0
    assert metrics["ab_champion_loss_rate"] == pytest.approx(outcomes.count("champion") / 3)
    assert run.data.params["champion_uri"] == "models:/folksy-proverbs@production"
    everything = json.dumps([run.data.params, run.data.tags, run.data.metrics])
    local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "all")))
    everything += "".join(p.read_text(errors="replace") for p in local.rglob("*") if p.is_file() and p.suffix != ".png")
    assert secret not in everything and secret not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_down_endpoint_fails_the_run_with_one_line_and_no_results(prepare_run, tiny_qwen2_dir):
    import mlflow

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_step(
        "steps.judge", "--model-uri", tiny_qwen2_dir, "--prepare-run-id", prepare_run, "--backend", "endpoint",
        "--endpoint-url", f"http://127.0.0.1:{port}/v1", "--endpoint-model", "judge-32b", *TINY,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: --endpoint-url 'http://127.0.0.1:{port}/v1': cannot connect (Connection refused); is the server running?"
    )
    [run] = judge_runs()
    assert run.info.status == "FAILED" and "judge_mean" not in run.data.metrics
    assert mlflow.MlflowClient().list_artifacts(run.info.run_id) == []


@pytest.mark.slow
def test_a_garbage_endpoint_fails_the_run_instead_of_scoring(prepare_run, tiny_qwen2_dir):
    with ScriptedJudgeServer(lambda body, n: (200, completion("As a language model I enjoy all sayings."), None, 0)) as server:
        result = run_step(
            "steps.judge", "--model-uri", tiny_qwen2_dir, "--prepare-run-id", prepare_run, "--backend", "endpoint",
            "--endpoint-url", server.url, "--endpoint-model", "judge-32b", "--concurrency", "1", *TINY,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: judge: 8 of 74 calibration answers failed (8 unparseable), more than the 10% allowed by --max-failure-share"
    )
    [run] = judge_runs()
    assert run.info.status == "FAILED" and not any(k.startswith(("judge_mean", "judge_calibration")) for k in run.data.metrics)
    assert len(server.requests) <= 9  # it stopped at the budget, it did not ask all 74
