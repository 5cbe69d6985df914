"""configs/accelerate/: every launcher config loads in accelerate, and train runs under 2 real CPU processes."""

import re

import pytest

from tests.conftest import PROJECT_ROOT

ACCELERATE_CONFIGS = PROJECT_ROOT / "configs" / "accelerate"

EXPECTED = {  # file -> (distributed_type, num_processes, mixed_precision, extra check)
    "multi-gpu.yaml": ("MULTI_GPU", 8, "bf16", {}),
    "fsdp.yaml": ("FSDP", 8, "bf16", {"fsdp_version": 2, "fsdp_state_dict_type": "FULL_STATE_DICT"}),
    "deepspeed-zero2.yaml": ("DEEPSPEED", 8, "bf16", {"zero_stage": 2}),
    "deepspeed-zero3.yaml": ("DEEPSPEED", 8, "bf16", {"zero_stage": 3, "zero3_save_16bit_model": True}),
    "cpu-2proc.yaml": ("MULTI_GPU", 2, "no", {}),
}


def test_every_config_is_known():
    assert sorted(p.name for p in ACCELERATE_CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_loads_in_accelerate(name):
    from accelerate.commands.config.config_args import load_config_from_file

    distributed_type, num_processes, mixed_precision, extra = EXPECTED[name]
    config = load_config_from_file(str(ACCELERATE_CONFIGS / name))
    assert config.distributed_type.value == distributed_type
    assert config.num_processes == num_processes
    assert str(config.mixed_precision) == mixed_precision
    section = config.fsdp_config if name == "fsdp.yaml" else config.deepspeed_config
    for key, value in extra.items():
        assert section[key] == value, key


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_opens_with_the_command_that_runs_it(name):
    text = (ACCELERATE_CONFIGS / name).read_text()
    command = re.search(r"^#\s+(accelerate launch .*)$", text, flags=re.MULTILINE)
    assert command, f"{name} must start with a comment giving its `accelerate launch` command"
    assert f"--config_file configs/accelerate/{name} -m steps.train" in command.group(1)


TRAIN_EXAMPLES, BATCH_PER_RANK, RANKS = 32, 4, 2
# one epoch: 32 examples in batches of 4 is 8 batches; accelerate deals them out to 2 ranks, 4 steps each.
# A single process would take 8 steps, so the step count shows that the second rank did half the work.
STEPS_WITH_TWO_RANKS = TRAIN_EXAMPLES // BATCH_PER_RANK // RANKS


@pytest.mark.slow
def test_train_under_accelerate_with_two_cpu_processes(tracking_uri, tmp_path, tiny_qwen2_dir):
    import mlflow
    from mlflow import MlflowClient

    from tests.conftest import run_step
    from tests.servers import free_port

    prepared = run_step("steps.prepare")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    overrides = (
        f"base_model={tiny_qwen2_dir},train_subsample={TRAIN_EXAMPLES},val_subsample=8,num_train_epochs=1,max_steps=-1,"
        f"per_device_train_batch_size={BATCH_PER_RANK},per_device_eval_batch_size=8,logging_steps=1,eval_steps=2,save_steps=2,"
        "sample_max_new_tokens=8"
    )
    launched = run_step(
        "accelerate.commands.launch",
        "--config_file", str(ACCELERATE_CONFIGS / "cpu-2proc.yaml"),
        "--main_process_port", str(free_port()),  # not the fixed 29500: another launch may hold it
        "-m", "steps.train",
        "--overrides", overrides,
        "--output-dir", str(tmp_path / "train-output"),
        timeout=600,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stdout[-2000:] + launched.stderr[-3000:]

    client = MlflowClient()
    experiment = client.get_experiment_by_name("folksy-test")
    # only rank 0 talks to MLflow: one train run, one logged model, however many processes trained
    [run] = client.search_runs([experiment.experiment_id], filter_string="tags.`folksy.step` = 'train'")
    assert run.info.status == "FINISHED"
    assert len(client.search_logged_models([experiment.experiment_id])) == 1
    # both ranks took part: the world was 2, and each rank trained on half of the batches
    assert run.data.params["world_size"] == str(RANKS)
    assert run.data.metrics["trained_steps"] == STEPS_WITH_TWO_RANKS
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(1, STEPS_WITH_TWO_RANKS + 1))
    assert launched.stderr.count("Tokenizing train dataset: 100%") == RANKS  # each rank tokenized its own copy

    # the result loads and generates, in this process, from the logged artifact alone
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    [saying] = model.predict(["Tell me something about rain."], params={"temperature": 0.0, "max_new_tokens": 8})
    assert isinstance(saying, str)
