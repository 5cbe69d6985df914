"""The project's metadata agrees with itself: dependencies, MLproject and the step CLIs."""

import importlib
import re
import tomllib

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

STEPS = ["main", "prepare", "train", "evaluate", "judge", "register"]


def mlproject() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "MLproject").read_text())


def test_conda_pip_list_matches_pyproject():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((PROJECT_ROOT / "conda.yaml").read_text())
    pip_lists = [d["pip"] for d in conda["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert pip_lists, "conda.yaml has no pip list"
    assert pip_lists[0] == pyproject


def test_required_packages_are_declared():
    names = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    required = {"mlflow", "transformers", "trl", "datasets", "torch", "sentence-transformers", "rouge-score", "sacrebleu", "click", "peft", "gguf"}
    assert required <= names


def test_entry_points_are_the_pipeline():
    assert sorted(mlproject()["entry_points"]) == sorted(STEPS)
    for name, entry in mlproject()["entry_points"].items():
        assert f"python -m steps.{name}" in entry["command"]
        for parameter, spec in entry.get("parameters", {}).items():
            assert spec["type"] in {"string", "float", "path", "uri"}, (name, parameter)


def click_defaults(step: str) -> dict:
    module = importlib.import_module(f"steps.{step}")
    commands = [v for v in vars(module).values() if type(v).__module__.startswith("click") and hasattr(v, "params")]
    assert len(commands) == 1, f"steps/{step}.py should expose exactly one click command"
    return {opt: p.default for p in commands[0].params for opt in p.opts if opt.startswith("--")}


@pytest.mark.parametrize("step", STEPS)
def test_mlproject_defaults_match_click_defaults(step):
    """A default lives in one place: where MLproject and the click option both carry one, they agree."""
    entry = mlproject()["entry_points"][step]
    defaults = click_defaults(step)
    for option, parameter in re.findall(r"(--[\w-]+) '?\{(\w+)\}'?", entry["command"]):
        assert option in defaults, f"MLproject passes {option} but steps/{step}.py has no such option"
        declared = entry["parameters"][parameter].get("default")
        mine = defaults[option]
        if declared in (None, "") or mine in (None, ""):
            continue
        if isinstance(mine, bool):
            assert str(declared).lower() == str(mine).lower(), (step, option)
        elif isinstance(mine, (int, float)):
            assert float(declared) == float(mine), (step, option)
        else:
            assert str(declared) == str(mine), (step, option)


def test_readme_commands_and_ci_agree():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call the README's test command"
