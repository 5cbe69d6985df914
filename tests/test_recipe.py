"""Recipes in configs/ and --overrides: typed, complete, and refused in one line when wrong."""

import re

import pytest

from folksy.errors import FolksyError
from folksy.training.recipe import FIELDS, load_recipe, lora_target_modules, parse_overrides
from tests.conftest import PROJECT_ROOT

RECIPES = sorted(p for p in (PROJECT_ROOT / "configs").glob("*.yaml") if not p.name.endswith("-dpo.yaml"))  # train recipes
CPU = PROJECT_ROOT / "configs" / "smollm2-135m-cpu.yaml"
QWEN_FULL = PROJECT_ROOT / "configs" / "qwen2.5-0.5b-full.yaml"


def test_the_three_train_recipes_and_the_preference_recipe_exist():
    assert {p.name for p in RECIPES} == {"smollm2-135m-cpu.yaml", "qwen2.5-0.5b-full.yaml", "qwen2.5-0.5b-lora.yaml"}
    assert (PROJECT_ROOT / "configs" / "smollm2-135m-dpo.yaml").is_file()  # its own keys: tests/test_dpo.py


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_each_recipe_loads_and_opens_with_the_command_that_runs_it(path):
    recipe = load_recipe(path)
    assert set(recipe) == set(FIELDS)
    first = path.read_text().splitlines()[0]
    assert re.match(r"# (mlflow run \. -e train .*|accelerate launch .* -m steps\.train .*)", first), first
    assert str(path.relative_to(PROJECT_ROOT)) in first


def test_the_gpu_recipe_is_the_original_one():
    recipe = load_recipe(QWEN_FULL)
    assert recipe["method"] == "full" and recipe["base_model"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert (recipe["learning_rate"], recipe["lr_scheduler_type"], recipe["warmup_ratio"]) == (2e-5, "cosine", 0.05)
    assert (recipe["num_train_epochs"], recipe["weight_decay"], recipe["per_device_train_batch_size"]) == (3, 0.01, 32)
    assert (recipe["max_length"], recipe["bf16"], recipe["optim"]) == (128, True, "adamw_torch_fused")
    assert (recipe["eval_steps"], recipe["save_steps"]) == (100, 500)


def test_the_cpu_recipe_keeps_the_fast_settings():
    recipe = load_recipe(CPU)
    assert recipe["base_model"] == "smollm2-135m-instruct"
    assert recipe["bf16"] and not recipe["gradient_checkpointing"] and recipe["group_by_length"]
    assert recipe["train_subsample"] > 0  # the 15-minute budget holds on a stated subsample


def test_overrides_are_typed_and_applied_over_the_recipe():
    recipe = load_recipe(CPU, "max_steps=20, learning_rate=1e-4,method=lora,bf16=false,lora_target_modules=q_proj,v_proj")
    assert recipe["max_steps"] == 20 and recipe["learning_rate"] == 1e-4 and recipe["method"] == "lora"
    assert recipe["bf16"] is False
    assert lora_target_modules(recipe) == ["q_proj", "v_proj"]
    assert lora_target_modules(load_recipe(CPU)) == "all-linear"


def test_empty_overrides_change_nothing():
    assert parse_overrides("") == {} and parse_overrides(" , ") == {}
    assert load_recipe(CPU, "") == load_recipe(CPU)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ("foo=1", "--overrides: unknown key 'foo'"),
        ("learning_rate=-1e-4", "--overrides learning_rate: learning_rate must be > 0, got '-1e-4'"),
        ("num_train_epochs=0", "--overrides num_train_epochs: num_train_epochs must be > 0, got '0'"),
        ("lora_r=0", "--overrides lora_r: lora_r must be >= 1, got '0'"),
        ("max_steps=0", "--overrides max_steps: max_steps must be -1 (use num_train_epochs) or > 0, got '0'"),
        ("max_steps=2.5", "--overrides max_steps: max_steps must be int, got '2.5'"),
        ("bf16=maybe", "--overrides bf16: bf16 must be bool, got 'maybe'"),
        ("method=dora", "--overrides method: method must be one of full, lora, qlora, got 'dora'"),
        ("max_steps", "--overrides: 'max_steps' is not key=value"),
        ("max_steps=1,max_steps=2", "--overrides: 'max_steps' is given twice"),
        ("save_steps=30,eval_steps=25", "save_steps: 30 must be a multiple of eval_steps (25)"),
        ("optim=adamw_magic", "optim: 'adamw_magic' is not a transformers optimizer name"),
        ("lr_scheduler_type=zigzag", "lr_scheduler_type: 'zigzag' is not one of"),
        ("skip_relations=related,cousins", "--overrides skip_relations: skip_relations must be none or comma-separated relations from same_prop, same_category, related, any, got 'related,cousins'"),
        ("skip_relations=none,any", "--overrides skip_relations: skip_relations must be none or comma-separated"),
        ("min_reader_label=6", "--overrides min_reader_label: min_reader_label must be in [0, 5] (0: train on every saying), got '6'"),
    ],
)
def test_bad_overrides_are_refused_naming_the_parameter(overrides, message):
    with pytest.raises(FolksyError) as error:
        load_recipe(CPU, overrides)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_qlora_without_cuda_stops_before_any_work():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(FolksyError, match=r"^method: qlora needs a CUDA GPU"):
        load_recipe(CPU, "method=qlora")


def test_recipe_file_errors_name_file_and_line(tmp_path):
    text = CPU.read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(re.sub(r"(?m)^learning_rate: \S+", "learning_rate: fast", text))
    line = next(i for i, row in enumerate(broken.read_text().splitlines(), 1) if row.startswith("learning_rate:"))
    with pytest.raises(FolksyError, match=rf"^{re.escape(str(broken))}:{line}: learning_rate must be float, got 'fast'"):
        load_recipe(broken)

    broken.write_text(text + "warmup_steps: 10\n")
    with pytest.raises(FolksyError, match=rf"^{re.escape(str(broken))}:\d+: unknown key 'warmup_steps'"):
        load_recipe(broken)

    broken.write_text("\n".join(row for row in text.splitlines() if not row.startswith("lora_r:")))
    with pytest.raises(FolksyError, match=r"missing key 'lora_r'"):
        load_recipe(broken)

    with pytest.raises(FolksyError, match=r"^--config: no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
