"""Training recipes: a YAML file in configs/ plus `key=value` overrides, checked before any model loads.

Every recipe names every key below, so each default lives in exactly one place: the recipe file.
Bad input raises FolksyError with one line naming the file:line or the override at fault.
"""

import re
from pathlib import Path

from folksy.corpus.templates import RELATIONS
from folksy.errors import FolksyError

METHODS = ("full", "lora", "qlora")
ATTENTION = ("eager", "sdpa", "flash_attention_2")

# key -> (type, check, what the check demands); a check returns True when the value is acceptable
_positive = (lambda v: v > 0, "must be > 0")
_at_least_one = (lambda v: v >= 1, "must be >= 1")
_not_negative = (lambda v: v >= 0, "must be >= 0")
_anything = (lambda v: True, "")


def _relations_known(value: str) -> bool:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return parts == ["none"] or all(part in RELATIONS for part in parts)


FIELDS = {
    "base_model": (str, (lambda v: bool(v.strip()), "must not be empty")),
    "method": (str, (lambda v: v in METHODS, f"must be one of {', '.join(METHODS)}")),
    "train_subsample": (int, _not_negative),
    "val_subsample": (int, _not_negative),
    "skip_relations": (str, (_relations_known, f"must be none or comma-separated relations from {', '.join(RELATIONS)}")),
    "min_reader_label": (int, (lambda v: 0 <= v <= 5, "must be in [0, 5] (0: train on every saying)")),
    "max_length": (int, (lambda v: v >= 16, "must be >= 16")),
    "learning_rate": (float, _positive),
    "lr_scheduler_type": (str, _anything),  # checked against transformers' list in check_recipe
    "warmup_ratio": (float, (lambda v: 0 <= v < 1, "must be in [0, 1)")),
    "weight_decay": (float, _not_negative),
    "num_train_epochs": (float, _positive),
    "max_steps": (int, (lambda v: v == -1 or v > 0, "must be -1 (use num_train_epochs) or > 0")),
    "per_device_train_batch_size": (int, _at_least_one),
    "per_device_eval_batch_size": (int, _at_least_one),
    "gradient_accumulation_steps": (int, _at_least_one),
    "max_grad_norm": (float, _positive),
    "optim": (str, _anything),  # checked against transformers' list in check_recipe
    "seed": (int, _not_negative),
    "bf16": (bool, _anything),
    "gradient_checkpointing": (bool, _anything),
    "attn_implementation": (str, (lambda v: v in ATTENTION, f"must be one of {', '.join(ATTENTION)}")),
    "group_by_length": (bool, _anything),
    "logging_steps": (int, _at_least_one),
    "eval_steps": (int, _at_least_one),
    "save_steps": (int, _at_least_one),
    "save_total_limit": (int, (lambda v: v >= 2, "must be >= 2 (the best and the latest checkpoint)")),
    "early_stopping_patience": (int, _not_negative),
    "lora_r": (int, _at_least_one),
    "lora_alpha": (float, _positive),
    "lora_dropout": (float, (lambda v: 0 <= v < 1, "must be in [0, 1)")),
    "lora_target_modules": (str, (lambda v: bool(v.strip()), "must not be empty")),
    "sample_max_new_tokens": (int, _at_least_one),
    "best_of": (int, (lambda v: 1 <= v <= 16, "must be in [1, 16]")),
}

PAIR_SOURCES = ("readings", "critic")


def _sources_known(value: str) -> bool:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return bool(parts) and all(part in PAIR_SOURCES for part in parts) and len(set(parts)) == len(parts)


# a preference recipe (configs/*-dpo.yaml) for the `dpo` step, over a finished train run's model
DPO_FIELDS = {
    "pair_sources": (str, (_sources_known, f"must be comma-separated sources from {', '.join(PAIR_SOURCES)}")),
    "min_gap": (float, _positive),
    "pairs_per_prompt": (int, _at_least_one),
    "critic_prompts": (int, _not_negative),
    "samples_per_prompt": (int, (lambda v: 2 <= v <= 32, "must be in [2, 32]")),
    "critic_margin": (float, _not_negative),
    "chosen_shape_cap": (int, _not_negative),
    "sample_max_new_tokens": FIELDS["sample_max_new_tokens"],
    "beta": (float, _positive),
    "learning_rate": FIELDS["learning_rate"],
    "lr_scheduler_type": FIELDS["lr_scheduler_type"],
    "warmup_ratio": FIELDS["warmup_ratio"],
    "num_train_epochs": FIELDS["num_train_epochs"],
    "max_steps": FIELDS["max_steps"],
    "per_device_train_batch_size": FIELDS["per_device_train_batch_size"],
    "gradient_accumulation_steps": FIELDS["gradient_accumulation_steps"],
    "max_length": FIELDS["max_length"],
    "seed": FIELDS["seed"],
    "bf16": FIELDS["bf16"],
    "logging_steps": FIELDS["logging_steps"],
}

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
# an override list is split at commas that start a new `key=`, so lora_target_modules=q_proj,v_proj works
_OVERRIDE_SPLIT = re.compile(r",(?=\s*[A-Za-z_]\w*\s*=)")


def coerce(key: str, value, where: str, fields: dict = FIELDS):
    """`value` (from YAML or an override string) as the key's type, checked; FolksyError names `where`."""
    kind, (check, demand) = fields[key]
    try:
        if kind is bool:
            text = str(value).strip().lower()
            if isinstance(value, bool):
                converted = value
            elif text in _TRUE | _FALSE:
                converted = text in _TRUE
            else:
                raise ValueError
        elif kind is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            converted = int(str(value).strip()) if not isinstance(value, float) else int(value)
        elif kind is float:
            if isinstance(value, bool):
                raise ValueError
            converted = float(str(value).strip())
        else:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            converted = str(value).strip()
    except ValueError:
        raise FolksyError(f"{where}: {key} must be {kind.__name__}, got {value!r}") from None
    if not check(converted):
        raise FolksyError(f"{where}: {key} {demand}, got {value!r}")
    return converted


def parse_overrides(text: str, flag: str = "--overrides", fields: dict = FIELDS) -> dict[str, str]:
    """`"max_steps=20,learning_rate=1e-4"` -> `{"max_steps": "20", "learning_rate": "1e-4"}`, keys checked;
    an error names `flag`, the option the text came from."""
    overrides = {}
    for item in _OVERRIDE_SPLIT.split(text or ""):
        item = item.strip().strip(",").strip()  # tolerate stray and trailing commas
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FolksyError(f"{flag}: '{item}' is not key=value")
        if key not in fields:
            raise FolksyError(f"{flag}: unknown key '{key}' (known: {', '.join(fields)})")
        if key in overrides:
            raise FolksyError(f"{flag}: '{key}' is given twice")
        overrides[key] = value.strip()
    return overrides


def grid_points(path, grid: str, overrides: str = "") -> list[str]:
    """A sweep's points: `"learning_rate=5e-5|1e-4,lr_scheduler_type=cosine|linear"` -> one override string
    per point of the product ("learning_rate=5e-5,lr_scheduler_type=cosine", ...). Each point, with
    `overrides` under it, is checked as a whole recipe now, so a bad value fails before anything trains."""
    from itertools import product

    choices = {}
    for key, values in parse_overrides(grid, "--grid").items():
        options = [value.strip() for value in values.split("|")]
        if not all(options) or len(set(options)) != len(options):
            raise FolksyError(f"--grid: {key}={values} needs distinct, non-empty values separated by '|'")
        if key in parse_overrides(overrides):
            raise FolksyError(f"--grid: {key} is also set in --overrides; sweep it or fix it, not both")
        choices[key] = options
    if not choices:
        raise FolksyError("--grid: give at least one key=value|value, e.g. learning_rate=5e-5|1e-4|2e-4")
    points = [",".join(f"{key}={value}" for key, value in zip(choices, values)) for values in product(*choices.values())]
    for point in points:
        try:
            load_recipe(path, ",".join(filter(None, (overrides, point))))
        except FolksyError as error:
            raise FolksyError(f"--grid point {point}: {error}") from None
    return points


def load_recipe(path, overrides: str = "", fields: dict = FIELDS, check=None) -> dict:
    """The recipe at `path` with `overrides` applied: every key of `fields` (a train recipe's by default,
    DPO_FIELDS for a preference recipe) present, typed and checked, then `check` (check_recipe by default)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FolksyError(f"--config: no such recipe file '{path}'")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise FolksyError(f"{where}: not valid YAML ({getattr(error, 'problem', None) or 'parse error'})") from None
    if not isinstance(raw, dict):
        raise FolksyError(f"{path}: a recipe is a mapping of key: value lines")

    def line_of(key):
        found = re.search(rf"^{re.escape(str(key))}\s*:", text, flags=re.MULTILINE)
        return f"{path}:{text.count(chr(10), 0, found.start()) + 1}" if found else str(path)

    unknown = [key for key in raw if key not in fields]
    if unknown:
        raise FolksyError(f"{line_of(unknown[0])}: unknown key '{unknown[0]}' (known: {', '.join(fields)})")
    missing = [key for key in fields if key not in raw]
    if missing:
        raise FolksyError(f"{path}: missing key '{missing[0]}' (every recipe names every key, so defaults live in one place)")
    recipe = {key: coerce(key, raw[key], line_of(key), fields) for key in fields}
    for key, value in parse_overrides(overrides, fields=fields).items():
        recipe[key] = coerce(key, value, f"--overrides {key}", fields)
    (check or check_recipe)(recipe)
    return recipe


def check_scheduler(recipe: dict) -> None:
    from transformers.trainer_utils import SchedulerType

    schedulers = [s.value for s in SchedulerType]
    if recipe["lr_scheduler_type"] not in schedulers:
        raise FolksyError(f"lr_scheduler_type: '{recipe['lr_scheduler_type']}' is not one of {', '.join(schedulers)}")


def check_recipe(recipe: dict) -> None:
    """Checks that involve several keys or the installed libraries; all run before any model is loaded."""
    from transformers.training_args import OptimizerNames

    check_scheduler(recipe)
    optimizers = [o.value for o in OptimizerNames]
    if recipe["optim"] not in optimizers:
        raise FolksyError(f"optim: '{recipe['optim']}' is not a transformers optimizer name (e.g. adamw_torch_fused)")
    if recipe["save_steps"] % recipe["eval_steps"]:
        raise FolksyError(
            f"save_steps: {recipe['save_steps']} must be a multiple of eval_steps ({recipe['eval_steps']}), "
            "so that the best evaluated checkpoint is one that was saved"
        )
    if recipe["method"] == "qlora":
        import importlib.util

        import torch

        if not torch.cuda.is_available():
            raise FolksyError("method: qlora needs a CUDA GPU (bitsandbytes 4-bit NF4); on a CPU use method=lora or method=full")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise FolksyError("method: qlora needs bitsandbytes; run `pip install -e .[qlora]`")


def lora_target_modules(recipe: dict):
    """peft's `target_modules`: the string 'all-linear' or a list of module names."""
    value = recipe["lora_target_modules"]
    return value if value == "all-linear" else [name.strip() for name in value.split(",") if name.strip()]
