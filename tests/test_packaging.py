"""The project's metadata agrees with itself: dependencies, MLproject and the step CLIs."""

import importlib
import re
import tomllib

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

STEPS = ["main", "prepare", "train", "evaluate", "judge", "register", "sweep", "dpo"]


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



@pytest.mark.parametrize("step", STEPS)
def test_every_parameter_reaches_its_step_intact_through_mlflow_run(step, tmp_path):
    """`mlflow run` shell-quotes each value itself; a value with a space, '|' and a quote (a sweep grid, an
    override list, a path) must arrive as one argument, unchanged, not re-quoted by MLproject."""
    import shlex

    from mlflow.projects._project_spec import load_project

    entry = load_project(str(PROJECT_ROOT)).get_entry_point(step)
    awkward = "learning_rate=5e-5|1e-4, it's a path/with space"
    strings = [name for name, spec in mlproject()["entry_points"][step]["parameters"].items() if spec["type"] == "string"]
    for name in strings:
        argv = shlex.split(entry.compute_command({name: awkward}, str(tmp_path)))
        assert argv.count(awkward) == 1, (name, argv)

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


# ---------------------------------------------------------------------------------------------
# one home for each default: folksy/defaults.py, folksy.generation.SAMPLING, folksy.gate.GateThresholds


def code_strings(path) -> list[str]:
    """The string constants of a module, docstrings left out."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


@pytest.mark.parametrize("value", ["folksy-proverbs", "corpus/training_pairs.jsonl", "configs/smollm2-135m-cpu.yaml", "configs/smollm2-135m-dpo.yaml"])
def test_a_default_name_or_path_is_spelled_out_only_in_folksy_defaults(value):
    files = [p for folder in ("folksy", "steps") for p in (PROJECT_ROOT / folder).rglob("*.py")]
    spelled = [str(p.relative_to(PROJECT_ROOT)) for p in files if any(value in s for s in code_strings(p))]
    assert spelled == ["folksy/defaults.py"], spelled


def test_mlproject_defaults_are_the_library_defaults():
    from folksy.defaults import CORPUS, DPO_RECIPE, MODEL_NAME, RECIPE
    from folksy.gate import GateThresholds

    entries = mlproject()["entry_points"]
    assert entries["dpo"]["parameters"]["config"]["default"] == DPO_RECIPE
    for step in ("main", "prepare"):
        assert entries[step]["parameters"]["corpus"]["default"] == CORPUS
    for step in ("main", "train", "sweep"):
        assert entries[step]["parameters"]["config"]["default"] == RECIPE
    for step in ("main", "register"):
        assert entries[step]["parameters"]["model_name"]["default"] == MODEL_NAME
    for name, value in vars(GateThresholds()).items():
        assert float(entries["register"]["parameters"][name]["default"]) == value, name


def test_the_cli_and_the_served_model_sample_with_the_generation_defaults():
    from folksy.cli import cli
    from folksy.defaults import MODEL_NAME, PRODUCTION_URI
    from folksy.generation import SAMPLING, SayingGenerator
    from folksy.pyfunc_model import signature

    options = {p.name: p.default for p in cli.commands["generate"].params}
    assert (options["temperature"], options["top_p"], options["max_new_tokens"], options["seed"]) == (
        SAMPLING.temperature, SAMPLING.top_p, SAMPLING.max_new_tokens, SAMPLING.seed
    )
    assert options["model_uri"] == PRODUCTION_URI
    assert {p.name: p.default for p in cli.commands["status"].params}["model_name"] == MODEL_NAME
    served = {spec.name: spec.default for spec in signature().params if spec.name != "best_of"}  # the model's own, not sampling
    assert served == {name: getattr(SAMPLING, name) for name in served}
    import inspect

    generate = inspect.signature(SayingGenerator.generate).parameters
    assert all(generate[name].default == getattr(SAMPLING, name) for name in served)


def test_the_readme_gate_table_shows_the_gate_defaults():
    from folksy.gate import GateThresholds

    readme = (PROJECT_ROOT / "README.md").read_text()
    thresholds = GateThresholds()
    for metric, value in (("judge_mean", thresholds.min_judge_mean), ("judge_low_share", thresholds.max_low_share),
                          ("judge_calibration_spearman", thresholds.min_calibration_spearman),
                          ("judge_injection_mean", thresholds.max_injection_mean),
                          ("judge_realistic_spearman", thresholds.min_realistic_spearman),
                          ("judge_realistic_spearman_3to5", thresholds.min_realistic_spearman_3to5)):
        row = re.search(rf"^\| `{metric}`[^|]*\| ([^|]+) \|", readme, flags=re.M)
        assert row, f"README's gate table has no row for {metric}"
        assert float(re.search(r"[\d.]+", row.group(1)).group()) == value, (metric, row.group(1))


def test_the_judge_plot_draws_the_gate_threshold_it_is_given(tmp_path, monkeypatch):
    """The histogram's threshold line comes from GateThresholds, not from a copy of 3.5."""
    import dataclasses

    import matplotlib.pyplot as plt

    from folksy import gate, plots
    from folksy.judging.rubric import Judgement

    monkeypatch.setattr(gate, "GateThresholds", dataclasses.make_dataclass("Moved", [("min_judge_mean", float, 2.75)]))
    monkeypatch.setattr(plt, "close", lambda figure=None: None)  # keep the figure to look at it
    plots.plot_judge_summary([Judgement(3.0), Judgement(3.0)], [{"label": 3, "kind": "flat"}], [Judgement(3.2)], ["model"], tmp_path / "s.png")
    histogram = plt.gcf().axes[0]
    vertical = {line.get_xdata()[0] for line in histogram.get_lines()}
    assert 2.75 in vertical and 3.5 not in vertical
    monkeypatch.undo()
    plt.close("all")



def test_the_judge_plot_shows_real_outputs_per_source_beside_the_readers(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from folksy import plots
    from folksy.gate import GateThresholds
    from folksy.judging.rubric import Judgement

    metrics = {"judge_realistic_spearman": 0.57, "judge_realistic_spearman_3to5": 0.25}
    for source, judged, label in (("engine", 2.6, 2.78), ("model_64", 1.62, 1.26), ("nonsense", 1.72, 1.23)):
        metrics |= {f"judge_realistic_mean_{source}": judged, f"judge_realistic_label_mean_{source}": label}
    monkeypatch.setattr(plt, "close", lambda figure=None: None)  # keep the figure to look at it
    plots.plot_judge_summary([Judgement(3.0)], [{"label": 3, "kind": "flat"}], [Judgement(3.2)], ["model"], tmp_path / "s.png", metrics)
    panel = plt.gcf().axes[2]
    assert [t.get_text() for t in panel.get_yticklabels()] == ["engine", "model_64", "nonsense"]  # readers' order
    widths = sorted(round(bar.get_width(), 2) for bar in panel.patches)
    assert widths == sorted([2.6, 2.78, 1.62, 1.26, 1.72, 1.23])
    title = panel.get_title()
    assert "0.57" in title and f"{GateThresholds().min_realistic_spearman:g}" in title and "0.25" in title
    monkeypatch.undo()
    plt.close("all")

# The oldest release of each package that has an API the code calls. A floor in pyproject.toml below
# one of these installs a version that crashes mid-pipeline (seen: transformers 5.22 with TRL 1.16 died
# in train on SFTConfig(activation_checkpointing=...)). Raise an entry when the code starts using a newer API.
API_FLOORS = {
    "transformers": ("5.23", "TrainingArguments(activation_checkpointing=...) in folksy/training/sft.py"),
    "trl": ("1.16", "the TRL release the SFT recipe and FolksySFTTrainer were checked against (tests/test_trainer.py)"),
    "mlflow": ("3.4", "logged models (models:/<model id>), log_metrics(model_id=, dataset=) and mlflow.genai scorers"),
    "gguf": ("0.10", "GGUFWriter.add_tokenizer_pre, gguf.quants.quantize and the tensor-name map in folksy/gguf_export.py"),
}


def floor(requirement: str) -> tuple[int, ...]:
    found = re.search(r">=\s*([\d.]+)", requirement)
    assert found, f"'{requirement}' has no >= floor"
    return tuple(int(part) for part in found.group(1).split("."))


@pytest.mark.parametrize("package", sorted(API_FLOORS))
def test_install_floors_admit_no_release_older_than_the_apis_the_code_calls(package):
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [requirement] = [d for d in dependencies if re.split(r"[<>=!~\[ ]", d)[0].lower() == package]
    needed, why = API_FLOORS[package]
    assert floor(requirement) >= floor(f">={needed}"), f"{requirement} admits releases without {why}"
    from importlib.metadata import version

    installed = tuple(int(p) for p in re.findall(r"\d+", version(package))[:2])
    assert installed >= floor(f">={needed}")[:2]  # and what the tests run on satisfies it
