"""The train entry point, run as MLproject runs it, against real temporary tracking stores.

The model is a tiny random Qwen2 built locally (tests/conftest.py), so the Qwen2.5 code path runs in
seconds; prepare is the real step, run once on a slice of the shipped corpus.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, run_step

TINY = "train_subsample=32,val_subsample=8,per_device_train_batch_size=4,per_device_eval_batch_size=8,logging_steps=1,eval_steps=2,save_steps=2,sample_max_new_tokens=8"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tracking store holding one finished, real prepare run over 300 corpus lines: (uri, run id, corpus sha)."""
    root = tmp_path_factory.mktemp("train-store")
    corpus = root / "corpus.jsonl"
    corpus.write_text("".join((PROJECT_ROOT / "corpus" / "training_pairs.jsonl").open().readlines()[:300]))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": "prepare"}
    result = run_step("steps.prepare", "--corpus", str(corpus), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    import mlflow

    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["prepare"], output_format="list")
    return uri, run.info.run_id, run.data.params["corpus_sha256"]


@pytest.fixture
def store(prepared, monkeypatch, request):
    """The prepared store, with an experiment of this test's own for the train runs."""
    import mlflow

    uri, run_id, sha = prepared
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", request.node.name[:60])
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    yield run_id, sha
    while mlflow.active_run():
        mlflow.end_run()


def train_runs(experiment: str):
    import mlflow

    return mlflow.search_runs(experiment_names=[experiment], filter_string="tags.`folksy.step` = 'train'", output_format="list")


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient().get_metric_history(run_id, key))


@pytest.mark.parametrize(
    "overrides, message, status",
    [
        ("foo=1", "Error: --overrides: unknown key 'foo'", None),
        ("method=qlora", "Error: method: qlora needs a CUDA GPU", None),
        ("base_model=/no/such/model", "Error: base_model '/no/such/model': not 'smollm2-135m-instruct', a model directory", "FAILED"),
    ],
)
def test_bad_input_fails_in_one_line(store, request, tmp_path, overrides, message, status):
    """Refused before any model loads; no run at all, or (once it is open) a FAILED run with no model.

    Every recipe and override check is pinned in tests/test_recipe.py; these are the command's ends of it.
    """
    import torch

    if "qlora" in overrides and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    prepare_run_id, _ = store
    result = run_step("steps.train", "--prepare-run-id", prepare_run_id, "--overrides", overrides, "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    runs = train_runs(os.environ["MLFLOW_EXPERIMENT_NAME"])
    assert [run.info.status for run in runs] == ([status] if status else [])
    if runs:
        from mlflow import MlflowClient

        assert [a.path for a in MlflowClient().list_artifacts(runs[0].info.run_id)] == []


def test_without_a_prepare_run_it_says_to_run_prepare_first(tracking_uri, tmp_path):
    result = run_step("steps.train", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: --prepare-run-id: experiment 'folksy-test' has no finished prepare run; run `mlflow run . -e prepare` first"
    )
    missing = run_step("steps.train", "--prepare-run-id", "0123456789abcdef", "--output-dir", str(tmp_path / "out"))
    assert missing.stderr.strip().splitlines()[-1] == "Error: --prepare-run-id '0123456789abcdef': no such run"


@pytest.mark.slow
def test_train_logs_params_metrics_samples_and_a_loadable_model(store, tiny_qwen2_dir, tmp_path):
    """The smoke test: the real command, LoRA on a tiny Qwen2, everything the issue asks to be logged."""
    import mlflow
    from mlflow import MlflowClient

    prepare_run_id, corpus_sha = store
    overrides = f"base_model={tiny_qwen2_dir},method=lora,lora_r=4,lora_alpha=8,max_steps=4,learning_rate=3e-4,{TINY}"
    result = run_step("steps.train", "--prepare-run-id", prepare_run_id, "--overrides", overrides, "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = train_runs(os.environ["MLFLOW_EXPERIMENT_NAME"])
    run_id = run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == "train"
    assert f"model at runs:/{run_id}/model" in result.stdout

    params = run.data.params
    assert (params["method"], params["max_steps"], params["lora_r"], params["learning_rate"]) == ("lora", "4", "4", "0.0003")
    assert params["base_model"] == tiny_qwen2_dir and len(params["base_model_revision"]) == 64
    assert (params["prepare_run_id"], params["corpus_sha256"]) == (prepare_run_id, corpus_sha)
    assert params["git_commit"] and params["train_examples"] == "32" and params["val_examples"] == "8"

    assert [step for step, _ in history(run_id, "loss")] == [1, 2, 3, 4]
    for key in ("learning_rate", "grad_norm", "tokens_per_second"):
        assert [step for step, _ in history(run_id, key)] == [1, 2, 3, 4], key
    assert all(value > 0 for _, value in history(run_id, "tokens_per_second"))
    eval_loss = history(run_id, "eval_loss")
    assert [step for step, _ in eval_loss] == [0, 2, 4]  # step 0 is the base model
    for (_, loss), (_, perplexity) in zip(eval_loss, history(run_id, "eval_perplexity")):
        assert perplexity == pytest.approx(math.exp(loss))
    assert run.data.metrics["best_eval_loss"] == min(loss for _, loss in eval_loss)

    client = MlflowClient()
    assert {a.path for a in client.list_artifacts(run_id)} == {"loss_curve.png", "samples.json"}
    datasets = {(d.dataset.name, {t.key: t.value for t in d.tags}["mlflow.data.context"]) for d in client.get_run(run_id).inputs.dataset_inputs}
    prepared = client.get_run(prepare_run_id).data.metrics  # the rows trained on, named for the subsample
    assert datasets == {(f"folksy-train-32-of-{prepared['rows_train']:.0f}", "training"), (f"folksy-val-8-of-{prepared['rows_val']:.0f}", "validation")}
    [logged] = client.search_logged_models([run.info.experiment_id])  # MLflow 3 keeps models beside the run
    assert logged.source_run_id == run_id and logged.name == "model"
    png = client.download_artifacts(run_id, "loss_curve.png", str(tmp_path))
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    mlflow.set_experiment(experiment_id=run.info.experiment_id)
    samples = mlflow.load_table("samples.json", run_ids=[run_id])
    assert list(samples.columns[:3]) == ["prompt", "before", "after"] and len(samples) == 6

    model_dir = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", dst_path=str(tmp_path / "model"))
    files = [os.path.relpath(os.path.join(d, f), model_dir) for d, _, names in os.walk(model_dir) for f in names]
    assert "artifacts/hf_model/model.safetensors" in files
    assert {"artifacts/critic/critic.safetensors", "artifacts/critic/critic.json"} <= set(files)  # what best_of picks with
    from folksy.judging.critic_registry import picker_critic_dir  # the picker (cached by train), not judge's own critic

    picker = picker_critic_dir(PROJECT_ROOT / "corpus" / "training_pairs.jsonl")
    assert (Path(model_dir) / "artifacts" / "critic" / "critic.safetensors").read_bytes() == (picker / "critic.safetensors").read_bytes()
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle"))]  # safetensors, no pickles
    assert not [f for f in files if "adapter" in f]  # LoRA merged into the base
    card = (Path(model_dir) / "artifacts" / "hf_model" / "README.md").read_text()  # the directory describes itself
    assert "| method | lora |" in card and "| steps | 4 |" in card and "best validation loss" in card
    generation_config = json.loads((Path(model_dir) / "artifacts" / "hf_model" / "generation_config.json").read_text())
    assert (generation_config["temperature"], generation_config["max_new_tokens"]) == (0.8, 48)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    [saying] = model.predict(["Tell me something about color."], params={"temperature": 0.0, "max_new_tokens": 6})
    assert isinstance(saying, str)
    [picked] = model.predict(["Tell me something about color."], params={"best_of": 3, "seed": 1, "max_new_tokens": 6})
    assert isinstance(picked, str)
    assert_exported_weights_are_the_best_merged_ones(run, Path(model_dir) / "artifacts" / "hf_model", tiny_qwen2_dir, prepare_run_id, overrides, tmp_path)


def assert_exported_weights_are_the_best_merged_ones(run, hf_dir, base_dir, prepare_run_id, overrides, tmp_path):
    """The exported weights are the best checkpoint's, LoRA merged in: their completion loss on the run's own
    validation rows, measured again by the trainer's evaluation, is the run's best_eval_loss, and a weight that
    LoRA targets differs from the base's (exporting the unmerged base would fail both)."""
    import torch
    from safetensors.torch import load_file

    from folksy.defaults import PROJECT_ROOT as ROOT, RECIPE
    from folksy.lineage import download_splits
    from folksy.training.recipe import load_recipe
    from folksy.training.sft import build_trainer, effective_recipe, load_base, recipe_rows, training_rows

    recipe = {**load_recipe(ROOT / RECIPE, overrides), "method": "full", "base_model": str(hf_dir)}
    recipe = effective_recipe(recipe, run.data.params["corpus_sha256"], log=lambda line: None)  # as train runs it
    bf16 = run.data.params["precision"] == "bf16-autocast"
    val_rows = training_rows(recipe_rows(download_splits(prepare_run_id, ("val",), tmp_path / "val")["val"], recipe, "val"))
    assert len(val_rows) == int(run.data.params["val_examples"])
    model, tokenizer = load_base(recipe, str(hf_dir), bf16)
    trainer = build_trainer(recipe, model, tokenizer, val_rows[:1], val_rows, tmp_path / "eval", bf16, sink=lambda *_: None)
    assert trainer.evaluate()["eval_loss"] == pytest.approx(run.data.metrics["best_eval_loss"], rel=1e-2 if bf16 else 1e-4)

    exported, base = load_file(hf_dir / "model.safetensors"), load_file(Path(base_dir) / "model.safetensors")
    name = "model.layers.0.self_attn.q_proj.weight"
    assert exported[name].shape == base[name].shape and not torch.equal(exported[name].float(), base[name].float())


DPO_TINY = "critic_prompts=4,samples_per_prompt=2,critic_margin=0,pairs_per_prompt=1,max_steps=2,per_device_train_batch_size=2,logging_steps=1,sample_max_new_tokens=8"


@pytest.mark.slow
def test_dpo_tunes_a_train_runs_model_on_reading_and_critic_pairs_and_logs_a_model_register_takes(store, tiny_qwen2_dir, tmp_path):
    """The dpo smoke test: a tiny full train run, then the real dpo command over its model."""
    import mlflow
    from mlflow import MlflowClient
    from safetensors.torch import load_file

    from folksy.judging.critic_data import reading_rows
    from folksy.training.dpo import reading_pairs

    prepare_run_id, _ = store
    result = run_step("steps.train", "--prepare-run-id", prepare_run_id, "--overrides", f"base_model={tiny_qwen2_dir},max_steps=2,{TINY}", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr[-3000:]
    [train] = train_runs(os.environ["MLFLOW_EXPERIMENT_NAME"])
    refused = run_step("steps.dpo", "--train-run-id", prepare_run_id)
    assert refused.returncode != 0 and "Error: --train-run-id '" in refused.stderr and "dpo needs a FINISHED train run" in refused.stderr

    result = run_step("steps.dpo", "--overrides", DPO_TINY)  # the newest train run by default
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = mlflow.search_runs(experiment_names=[os.environ["MLFLOW_EXPERIMENT_NAME"]], filter_string="tags.`folksy.step` = 'dpo'", output_format="list")
    assert run.info.status == "FINISHED" and run.info.run_name == "dpo"
    params = run.data.params
    assert (params["train_run_id"], params["prepare_run_id"], params["base_model"]) == (train.info.run_id, prepare_run_id, tiny_qwen2_dir)
    readings = reading_pairs(reading_rows(), 1.5, 1, 42)
    assert int(params["pairs_readings"]) == len(readings) > 100  # one per read prompt that has a Good-vs-Bad pair
    assert 0 <= int(params["pairs_critic"]) <= 4 and params["best_of"] == train.data.params["best_of"]
    assert [step for step, _ in history(run.info.run_id, "loss")] == [1, 2]
    assert [step for step, _ in history(run.info.run_id, "rewards/accuracies")] == [1, 2]
    mlflow.set_experiment(experiment_id=run.info.experiment_id)
    pairs = mlflow.load_table("pairs.json", run_ids=[run.info.run_id])
    assert len(pairs) == int(params["pairs_readings"]) + int(params["pairs_critic"])
    readings_rows, critic_rows = pairs[pairs["source"] == "readings"], pairs[pairs["source"] == "critic"]
    assert (readings_rows["chosen_score"] > readings_rows["rejected_score"]).all()
    assert (critic_rows["chosen_score"] >= critic_rows["rejected_score"]).all()  # shown to 3 decimals: a gap may round away
    assert set(readings_rows["prompt"]) == {pair["prompt"][-1]["content"] for pair in readings}

    tuned = Path(mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/model", dst_path=str(tmp_path / "dpo")))
    sft = Path(mlflow.artifacts.download_artifacts(f"runs:/{train.info.run_id}/model", dst_path=str(tmp_path / "sft")))
    name = "model.layers.0.mlp.up_proj.weight"
    weights = [load_file(d / "artifacts" / "hf_model" / "model.safetensors")[name] for d in (tuned, sft)]
    assert weights[0].shape == weights[1].shape and not weights[0].float().equal(weights[1].float())  # it moved
    card = (tuned / "artifacts" / "hf_model" / "README.md").read_text()
    assert "| method | full fine-tune, then DPO |" in card and f"| tuned from | runs:/{train.info.run_id}/model |" in card and "| steps | 2 |" in card
    critic = [(d / "artifacts" / "critic" / "critic.safetensors").read_bytes() for d in (tuned, sft)]
    assert critic[0] == critic[1]  # it picks with the train model's picker
    [saying] = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(["Tell me something about rain."], params={"best_of": 2, "seed": 1, "max_new_tokens": 6})
    assert isinstance(saying, str)

    from folksy.lineage import finished_step_run

    assert finished_step_run(MlflowClient(), run.info.run_id, "train", also=("dpo",)).info.run_id == run.info.run_id  # what register checks


# Runs steps.train, but parks the process for good right after it saves checkpoint-2, so that the test
# can SIGKILL it at a known point. The training code is the real one; only a callback is added.
PARK_AFTER_FIRST_CHECKPOINT = """
import sys, time
from transformers import TrainerCallback
import folksy.training.trainer

marker = sys.argv[1]

class Park(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        open(marker, "w").write(str(state.global_step))
        time.sleep(3600)

init = folksy.training.trainer.FolksySFTTrainer.__init__
def parked_init(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.add_callback(Park())
folksy.training.trainer.FolksySFTTrainer.__init__ = parked_init

from folksy.errors import run_command
from steps.train import train
sys.argv = ["steps.train"] + sys.argv[2:]
run_command(train)
"""


def kill_after_first_checkpoint(args: list[str], tmp_path):
    """Run steps.train with `args` until it has saved checkpoint-2, then SIGKILL it; returns the killed run."""
    marker, log = tmp_path / "saved", tmp_path / "victim.log"
    with open(log, "w") as output:  # a file, not a pipe: a full pipe would stall the child before its checkpoint
        victim = subprocess.Popen(
            [sys.executable, "-c", PARK_AFTER_FIRST_CHECKPOINT, str(marker), *args],
            cwd=PROJECT_ROOT, env=os.environ.copy(), stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.time() + 600
        while not marker.exists():
            assert victim.poll() is None, log.read_text()[-3000:]
            assert time.time() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.5)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert victim.returncode == -signal.SIGKILL and marker.read_text() == "2"
    [killed] = train_runs(os.environ["MLFLOW_EXPERIMENT_NAME"])
    assert killed.info.status == "RUNNING"  # SIGKILL: nobody could mark it
    assert [step for step, _ in history(killed.info.run_id, "loss")] == [1, 2]
    return killed


@pytest.mark.slow
def test_sigkilled_run_resumes_from_its_checkpoint_in_the_same_mlflow_run(store, tiny_qwen2_dir, tmp_path):
    prepare_run_id, _ = store
    out = tmp_path / "out"
    args = ["--prepare-run-id", prepare_run_id, "--overrides", f"base_model={tiny_qwen2_dir},{TINY},max_steps=6", "--output-dir", str(out)]
    killed = kill_after_first_checkpoint(args, tmp_path)
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()

    resumed = run_step("steps.train", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"train: resuming run {killed.info.run_id} from {out / 'checkpoint-2'}" in resumed.stdout
    [run] = train_runs(os.environ["MLFLOW_EXPERIMENT_NAME"])
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags["folksy.resumed_from"] == "checkpoint-2"
    # steps 1-2 come from the first process, 3-6 from the second: nothing trained twice, nothing skipped
    assert [step for step, _ in history(run.info.run_id, "loss")] == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in history(run.info.run_id, "eval_loss")] == [0, 2, 4, 6]
    assert run.data.metrics["trained_steps"] == 6
    assert json.loads((out / "folksy_train.json").read_text())["finished"] is True
    assert not list(out.glob("checkpoint-*"))  # the model is logged; the checkpoints went


@pytest.mark.slow
def test_a_resume_under_mlflow_run_leaves_the_model_in_the_run_mlflow_run_reports(store, tiny_qwen2_dir, tmp_path):
    """The issue's reproduction: killed after a checkpoint, the same `mlflow run . -e train` again. MLflow
    reports the run it created, so that run must hold the model and the whole loss history."""
    import re

    import mlflow

    prepare_run_id, _ = store
    out = tmp_path / "out"
    overrides = f"base_model={tiny_qwen2_dir},{TINY},max_steps=6"
    killed = kill_after_first_checkpoint(["--prepare-run-id", prepare_run_id, "--overrides", overrides, "--output-dir", str(out)], tmp_path)

    resumed = subprocess.run(
        [sys.executable, "-m", "mlflow", "run", ".", "-e", "train", "--env-manager", "local",
         "-P", f"prepare_run_id={prepare_run_id}", "-P", f"overrides={overrides}", "-P", f"output_dir={out}"],
        cwd=PROJECT_ROOT, env={**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]},
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    [reported] = re.findall(r"Run \(ID '(\w+)'\) succeeded", resumed.stderr)
    assert reported != killed.info.run_id
    run = mlflow.get_run(reported)
    assert run.info.status == "FINISHED" and run.data.tags["folksy.resumed_run_id"] == killed.info.run_id
    assert [step for step, _ in history(reported, "loss")] == [1, 2, 3, 4, 5, 6]  # the killed run's steps came along
    assert [step for step, _ in history(reported, "eval_loss")] == [0, 2, 4, 6]
    model = mlflow.pyfunc.load_model(f"runs:/{reported}/model")
    assert isinstance(model.predict(["Tell me something about color."], params={"temperature": 0.0, "max_new_tokens": 4})[0], str)
    old = mlflow.get_run(killed.info.run_id)
    assert old.info.status == "FAILED" and old.data.tags["folksy.continued_in_run_id"] == reported
    assert json.loads((out / "folksy_train.json").read_text()) == {"run_id": reported, "digest": "", "finished": True}


def test_output_dir_state(tmp_path):
    """A finished directory is cleared for a fresh run; an unfinished one resumes only the same recipe."""
    from folksy.errors import FolksyError
    from folksy.training.checkpoints import read_state, write_state

    out = tmp_path / "out"
    assert read_state(out, "digest-a") is None  # nothing there yet
    write_state(out, "run-1", "digest-a", finished=False)
    (out / "checkpoint-2").mkdir()
    assert read_state(out, "digest-a")["run_id"] == "run-1"
    with pytest.raises(FolksyError, match=r"holds unfinished run run-1 of another recipe or prepare run"):
        read_state(out, "digest-b")
    write_state(out, "run-1", "digest-a", finished=True)
    assert read_state(out, "digest-b") is None and not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FolksyError, match=r"not empty and not a train output directory"):
        read_state(out, "digest-a")


def test_runs_whose_process_died_are_marked_failed(tracking_uri):
    import socket

    import mlflow

    from folksy.training.checkpoints import fail_orphaned_runs

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = finished.stdout.strip()
    from mlflow import MlflowClient

    experiment = mlflow.set_experiment("folksy-test").experiment_id
    tags = {"folksy.step": "train", "folksy.host": socket.gethostname()}
    dead = MlflowClient().create_run(experiment, tags={**tags, "folksy.pid": dead_pid}).info.run_id
    alive = MlflowClient().create_run(experiment, tags={**tags, "folksy.pid": str(os.getpid())}).info.run_id
    fail_orphaned_runs(mlflow)
    assert mlflow.get_run(dead).info.status == "FAILED"
    assert mlflow.get_run(alive).info.status == "RUNNING"


def test_a_broken_split_line_is_named(tmp_path):
    from folksy.data import read_split
    from folksy.errors import FolksyError
    from folksy.training.sft import recipe_rows, training_rows

    split = tmp_path / "splits" / "train.jsonl"
    split.parent.mkdir()
    good = json.dumps({"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}],
                       "meta_template": "x", "input_type": "open_ended", "source_words": [], "output": "yo"})
    split.write_text(good + "\n\n" + good + "\n" + '{"prompt": []}\n')
    with pytest.raises(FolksyError, match=r"splits/train.jsonl:4: not a prepare split row \(missing completion, meta_template"):
        read_split(split)
    split.write_text((good + "\n") * 5)
    rows = read_split(split)
    recipe = {"skip_relations": "none", "train_subsample": 3, "seed": 0}
    assert len(recipe_rows(rows, recipe, "train")) == 3 and len(recipe_rows(rows, {**recipe, "train_subsample": 0}, "train")) == 5
    assert training_rows(rows)[0] == {"prompt": [{"role": "user", "content": "hi"}], "completion": [{"role": "assistant", "content": "yo"}]}


def test_skip_relations_drops_sayings_by_their_pattern_relation_before_the_subsample():
    from collections import Counter

    from folksy.training.sft import recipe_rows, relation_of

    # one saying of each kind, by hand: the relation is the one its engine pattern demands of its second word
    assert relation_of("Grandpa spent a whole summer gatherin' shawls so the chicken feed wouldn't be dusty. The chicken feed won.") == "related"
    assert relation_of("Money can't buy you happiness, but it can buy you a boat.") is None  # no engine pattern at all
    corpus = [json.loads(line) for line in (PROJECT_ROOT / "corpus" / "training_pairs.jsonl").open()][:3000]
    rows = [{"output": row["output"], "line": number} for number, row in enumerate(corpus)]
    relations = [relation_of(row["output"]) for row in rows]
    assert {"related", "same_category", "any", "same_prop", None} <= set(relations)  # the slice holds every kind
    keep = [row for row, relation in zip(rows, relations) if relation in (None, "same_prop")]

    recipe = {"skip_relations": "related, same_category,any", "train_subsample": 0, "seed": 0}
    assert recipe_rows(rows, recipe, "train") == keep  # order kept, nothing else dropped
    picked = recipe_rows(rows, {**recipe, "train_subsample": 50}, "train")
    assert len(picked) == 50 and all(row in keep for row in picked)  # the subsample is drawn from what is kept
    assert Counter(relation_of(row["output"]) for row in recipe_rows(rows, {**recipe, "skip_relations": "related"}, "train"))["related"] == 0
    assert recipe_rows(rows, {**recipe, "skip_relations": "none"}, "train") == rows


def test_min_reader_label_trains_only_on_sayings_readers_labelled_that_high(tmp_path):
    from folksy.errors import FolksyError
    from folksy.data import reader_labels
    from folksy.training.sft import recipe_rows

    labels_file = tmp_path / "labels.jsonl"
    labels_file.write_text("".join(json.dumps({"saying": s, "label": n}) + "\n" for s, n in [("a", 5), ("b", 4), ("c", 3), ("d", 1)]))
    labels = reader_labels(labels_file)
    assert labels == {"a": 5, "b": 4, "c": 3, "d": 1}
    rows = [{"output": saying, "pair": k} for k in range(2) for saying in "abcde"]  # "e" was never read
    recipe = {"skip_relations": "none", "min_reader_label": 4, "train_subsample": 0, "val_subsample": 0, "seed": 0}
    assert [row["output"] for row in recipe_rows(rows, recipe, "train", labels)] == ["a", "b", "a", "b"]  # every pair of a kept saying
    assert [row["output"] for row in recipe_rows(rows, {**recipe, "min_reader_label": 3}, "train", labels)] == ["a", "b", "c"] * 2
    assert recipe_rows(rows, recipe, "val", labels) == recipe_rows(rows, recipe, "train", labels)  # validation is filtered alike
    assert recipe_rows(rows, {**recipe, "min_reader_label": 0}, "train", labels) == rows
    picked = recipe_rows(rows, {**recipe, "train_subsample": 3}, "train", labels)
    assert len(picked) == 3 and {row["output"] for row in picked} <= {"a", "b"}  # the subsample is drawn from what is kept
    with pytest.raises(FolksyError, match="min_reader_label: no train saying is labelled 5 or more"):
        recipe_rows([row for row in rows if row["output"] != "a"], {**recipe, "min_reader_label": 5}, "train", labels)

    labels_file.write_text(json.dumps({"saying": "a", "label": 5}) + "\n" + json.dumps({"saying": "b", "label": 7}) + "\n")
    with pytest.raises(FolksyError, match=r"labels.jsonl:2: not a \{saying, label 1-5\} line"):
        reader_labels(labels_file)


def test_the_shipped_corpus_reading_labels_real_corpus_sayings_and_keys_the_checkpoints(tmp_path, monkeypatch):
    import folksy.defaults
    from folksy.training.checkpoints import recipe_digest
    from folksy.data import reader_labels

    labels = reader_labels()
    corpus = {json.loads(line)["output"] for line in (PROJECT_ROOT / "corpus" / "training_pairs.jsonl").open()}
    assert len(labels) >= 1000 and set(labels) <= corpus  # every labelled saying is one the corpus trains on
    assert {1, 2, 3, 4, 5} <= set(labels.values())

    recipe = {"min_reader_label": 4, "seed": 0}
    shipped, unfiltered = recipe_digest(recipe, "run"), recipe_digest({**recipe, "min_reader_label": 0}, "run")
    assert shipped != recipe_digest({**recipe, "min_reader_label": 3}, "run")
    relabelled = tmp_path / "labels.jsonl"  # a new reading of the corpus must not resume the old one's checkpoints
    relabelled.write_text((PROJECT_ROOT / folksy.defaults.READER_LABELS).read_text().replace('"label": 4', '"label": 3', 1))
    monkeypatch.setattr(folksy.defaults, "READER_LABELS", str(relabelled))
    assert recipe_digest(recipe, "run") != shipped
    assert recipe_digest({**recipe, "min_reader_label": 0}, "run") == unfiltered  # a recipe that does not filter ignores the file


def test_min_reader_label_applies_only_to_the_corpus_its_labels_were_read_from():
    import hashlib

    from folksy.training.sft import effective_recipe

    shipped = hashlib.sha256((PROJECT_ROOT / "corpus" / "training_pairs.jsonl").read_bytes()).hexdigest()
    recipe, said = {"min_reader_label": 4, "seed": 0}, []
    assert effective_recipe(recipe, shipped, log=said.append) is recipe and said == []
    other = effective_recipe(recipe, "ab" * 32, log=said.append)  # a slice, a regenerated corpus or the user's own
    assert other == {"min_reader_label": 0, "seed": 0} and recipe["min_reader_label"] == 4
    assert len(said) == 1 and said[0].startswith("train: min_reader_label 4 -> 0: corpus/saying_labels.jsonl labels the shipped") and "abababababab" in said[0]
    assert effective_recipe({"min_reader_label": 0}, "ab" * 32, log=said.append) == {"min_reader_label": 0} and len(said) == 1
