"""configs/accelerate/: every launcher config loads in accelerate, and train runs under 2 real CPU processes."""

import re
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
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
