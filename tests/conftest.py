"""Shared fixtures. Nothing here touches the network: the hub is switched off for the whole session."""

import os
import subprocess

import pytest

from tests import forkserver

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")

PROJECT_ROOT = forkserver.PROJECT_ROOT  # re-exported: tests import it from here


@pytest.fixture(autouse=True)
def no_leaked_experiment_id():
    """`mlflow.set_experiment` exports MLFLOW_EXPERIMENT_ID into os.environ; a later `mlflow run
    --experiment-name` in a child process then refuses to start ("Specify only one of ...")."""
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    yield
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch) -> str:
    """A fresh, real MLflow SQLite tracking store and registry for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "folksy-test")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


def run_step(*args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m steps.<step> ...` as MLproject runs it, from the project root, in a process of its own
    (forked from tests/forkserver.py's, which has the libraries imported already)."""
    return forkserver.run_module(*args, env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.fixture(scope="session", autouse=True)
def step_forkserver(tmp_path_factory):
    """One fork server for the session: each step process starts with mlflow, torch and transformers imported."""
    forkserver.enable(tmp_path_factory.mktemp("forkserver"))
    yield
    forkserver.stop()


@pytest.fixture(scope="session")
def embedded_model_dir() -> str:
    """The embedded SmolLM2-135M-Instruct as a safetensors directory (converted once per machine)."""
    from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model

    return resolve_base_model(EMBEDDED_DEFAULT).path


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory, embedded_model_dir) -> str:
    """A tiny randomly initialised Qwen2-architecture model, built locally (no download).

    It borrows the embedded model's tokenizer and chat template so that the Qwen2.5 code path
    (model class, config, saving and loading) runs end to end in seconds.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-qwen2")
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def pipeline_server(tmp_path_factory):
    """A real `mlflow server` (SQLite store, artifacts served over HTTP) whose store holds the whole pipeline
    as `mlflow run .` left it after a kill during training, a resumed run and a re-run (tests/servers.py).

    Shared by the pipeline, remote-tracking and browser tests so that CI runs the quick pipeline once.
    """
    from tests.servers import resumed_pipeline_server

    with resumed_pipeline_server(tmp_path_factory.mktemp("pipeline-server")) as pipeline:
        yield pipeline


# The files whose tests read the session's `pipeline_server`: under pytest-xdist they form one group, so that one
# worker runs the pipeline once. (The scheduler sees only test ids, hence names here; collection checks them.)
PIPELINE_FILES = ("tests/test_main.py", "tests/test_remote_tracking.py", "tests/test_ui_browser.py")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Two workers on two cores: one torch thread each, or two training tests oversubscribe the cores (the GGUF
    # export test took 138 s beside the pipeline with two threads each, 36 s alone). Set before torch is
    # imported, and inherited by every step process and the fork server.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    """Tests that promote the shared pipeline's model to production by force run after every test that reads
    the registry as the pipeline left it (the gate's decision, the aliases the browser shows).

    The pipeline's files run first, then the other files with slow tests, then the rest: under pytest-xdist
    (`make test`) each file is one unit of work, and the longest going first keeps both workers busy to the end."""
    promoting = [item for item in items if "production_model" in getattr(item, "fixturenames", ())]
    items[:] = [item for item in items if item not in promoting] + promoting
    for item in items:
        if "pipeline_server" in getattr(item, "fixturenames", ()) and _file_of(item.nodeid) not in PIPELINE_FILES:
            raise pytest.UsageError(f"{item.nodeid} uses pipeline_server: add its file to PIPELINE_FILES in tests/conftest.py")
    slow_files = {_file_of(item.nodeid) for item in items if item.get_closest_marker("slow")}
    rank = {path: (0 if path in PIPELINE_FILES else 1 if path in slow_files else 2) for path in {_file_of(item.nodeid) for item in items}}
    items.sort(key=lambda item: rank[_file_of(item.nodeid)])  # stable: the order within a file stays


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, less the reordering by test count, with the pipeline's files as one unit."""
    from xdist.scheduler import LoadScopeScheduling

    class PipelineAwareFileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = _file_of(nodeid)
            return "pipeline" if path in PIPELINE_FILES else path

    config.option.loadscopereorder = False
    return PipelineAwareFileScheduling(config, log)
