"""A real `mlflow server` on a free 127.0.0.1 port, for tests that need a tracking server over HTTP.

    with mlflow_server(tmp_path) as server:
        os.environ["MLFLOW_TRACKING_URI"] = server.url
        ...

The server keeps everything under `root`: the SQLite backend store (`mlflow.db`), the artifact store
it proxies with `--serve-artifacts` (`artifacts/`), and its log (`server.log`). Clients get the
default artifact root `mlflow-artifacts:/`, so every artifact upload and download goes through the
server's HTTP API and never through the client's filesystem.

`app_name="basic-auth"` starts MLflow's basic-auth app, with its user database under `root` and
the admin user given by `admin_username` / `admin_password`.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from folksy.tracking import DEFAULT_EXPERIMENT, PARENT_RUN_ENV
from tests import forkserver

START_TIMEOUT_S = 120  # a cold start on 2 busy cores (imports + SQLite migrations) takes 15-40 s


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class MlflowServer:
    root: Path
    port: int
    process: subprocess.Popen
    app_name: str | None = None
    admin_username: str | None = None
    admin_password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifacts_destination(self) -> Path:
        return self.root / "artifacts"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with code {self.process.returncode} before /health answered:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server on {self.url} did not answer /health within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the server's process group (the CLI and its uvicorn worker), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)  # the group this server leads: nothing else is in it
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def start_mlflow_server(
    root,
    *,
    app_name: str | None = None,
    admin_username: str = "admin",
    admin_password: str | None = None,
    extra_args: tuple[str, ...] = (),
    env: dict | None = None,
    timeout: float = START_TIMEOUT_S,
) -> MlflowServer:
    """Start `mlflow server` with its stores under `root` and return once /health answers 200."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    server_env = {**os.environ, **(env or {})}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        server_env.pop(name, None)  # client settings of the calling test, not the server's
    server_env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no background job runner eating a core
    if app_name == "basic-auth":
        if not admin_password:
            raise ValueError("app_name='basic-auth' needs admin_password (MLflow ships no default)")
        import importlib.util

        if importlib.util.find_spec("flask_wtf") is None:
            raise RuntimeError("app_name='basic-auth' needs the Flask-WTF package: pip install 'mlflow[auth]'")
        auth_config = root / "basic_auth.ini"
        auth_config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
            f"admin_username = {admin_username}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        server_env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config)
        server_env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin_password  # env, not the file: kept out of root
        server_env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(16))  # CSRF key, one per server

    last_error = None
    for _ in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",  # SQLite takes one writer; one worker is also all 2 cores can spare
            *(["--app-name", app_name] if app_name else []),
            *extra_args,
        ]  # fmt: skip
        with open(root / "server.log", "ab") as log:
            process = subprocess.Popen(
                command, cwd=root, env=server_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        server = MlflowServer(root, port, process, app_name, admin_username if app_name else None, admin_password)
        try:
            server.wait_healthy(timeout)
            return server
        except RuntimeError as error:
            server.stop()
            last_error = error
            if "address already in use" not in server.log_tail().lower():
                break
    raise last_error


@contextmanager
def mlflow_server(root, **options):
    """`start_mlflow_server` as a context manager that always stops the server."""
    server = start_mlflow_server(root, **options)
    try:
        yield server
    finally:
        server.stop()


PIPELINE_TIMEOUT_S = 1500
# A few optimizer steps of the default recipe (configs/smollm2-135m-cpu.yaml) on a small subsample, in batches
# of 8 rather than 32 (a step of 32 takes 15-18 s on a 2-core machine without AMX): enough for a loss curve, a
# checkpoint to resume from, an eval and a logged model; not a model worth promoting.
QUICK_TRAIN_OVERRIDES = ("train_subsample=32,val_subsample=16,per_device_train_batch_size=8,per_device_eval_batch_size=16,"
                         "max_steps=4,eval_steps=2,save_steps=2,logging_steps=1,sample_max_new_tokens=8")  # fmt: skip


@dataclass
class ResumedPipeline:
    """The whole pipeline as a user meets it, `mlflow run . --env-manager local` against `server`, three times:
    killed during training (SIGKILL once the first checkpoint is on disk), started again (it resumes the
    training, evaluates and judges briefly, and registers), and started a third time (it reuses every step).

    run_ids maps main and each step to the runs of the second, finished pipeline (its prepare is the killed
    pipeline's, reused); `interrupted`, `first` and `second` are the three `mlflow run` processes."""

    server: MlflowServer
    env: dict
    experiment_name: str
    experiment_id: str
    run_ids: dict
    model_name: str
    interrupted: subprocess.CompletedProcess
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    first_seconds: float
    second_seconds: float

    @property
    def registry_dir(self) -> Path:
        return Path(self.env["FOLKSY_REGISTRY_DIR"])


def client_env(server: MlflowServer, experiment_name: str | None = None) -> dict:
    """The environment of a client process of `server`: tracking over HTTP, no hub, this venv on PATH."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("MLFLOW_RUN_ID", None)
    env.pop(PARENT_RUN_ENV, None)  # a leftover parent id would nest the runs under someone else's
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    env.pop("MLFLOW_EXPERIMENT_ID", None)  # exported by any mlflow.set_experiment in this process
    env.pop("FOLKSY_FAULT", None)
    env["FOLKSY_REGISTRY_DIR"] = str(server.root / "registry")  # register's JSON entries stay with the server's files
    if experiment_name:
        env["MLFLOW_EXPERIMENT_NAME"] = experiment_name
    # `mlflow run` starts each step as `python -m steps.<step>`: that must be this venv's python
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def mlflow_cli(*args: str, env: dict, timeout: float = PIPELINE_TIMEOUT_S) -> subprocess.CompletedProcess:
    """This venv's `mlflow` command line (`python -m mlflow`), run from the project root as a user would; it and
    the `python -m steps.<step>` processes it starts fork from tests/forkserver.py's server when there is one."""
    return forkserver.run_module("mlflow", *args, env=forkserver.with_shim(env), timeout=timeout)


def run_resumed_pipeline(server: MlflowServer, *, model_name: str = "folksy-proverbs", experiment_name: str = DEFAULT_EXPERIMENT) -> ResumedPipeline:
    """Kill the quick pipeline during training, start it again, then once more; see ResumedPipeline."""
    env = client_env(server, experiment_name)
    args = ["run", ".", "--env-manager", "local", "--experiment-name", experiment_name,
            "-P", f"train_overrides={QUICK_TRAIN_OVERRIDES}", "-P", "quick=true", "-P", f"model_name={model_name}"]  # fmt: skip

    def failure(what: str, done: subprocess.CompletedProcess) -> str:
        return f"`mlflow {' '.join(args)}` ({what}) exited with {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    interrupted = mlflow_cli(*args, env={**env, "FOLKSY_FAULT": "train:after_checkpoint"})
    if interrupted.returncode == 0:
        raise RuntimeError(failure("meant to be killed during training", interrupted))
    started = time.monotonic()
    first = mlflow_cli(*args, env=env)
    first_seconds = time.monotonic() - started
    if first.returncode != 0:
        raise RuntimeError(failure("started again after the kill", first))
    started = time.monotonic()
    second = mlflow_cli(*args, env=env)
    second_seconds = time.monotonic() - started
    if second.returncode != 0:
        raise RuntimeError(failure("the re-run", second))

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server.url)
    experiment = client.get_experiment_by_name(experiment_name)
    mains = client.search_runs([experiment.experiment_id], filter_string="tags.`folksy.step` = 'main'", order_by=["attributes.start_time ASC"])
    main_run = mains[1]  # killed, finished, re-run
    run_ids = {"main": main_run.info.run_id}
    for key, value in main_run.data.tags.items():
        if key.startswith("folksy.") and key.endswith("_run_id"):
            run_ids[key.removeprefix("folksy.").removesuffix("_run_id")] = value
    return ResumedPipeline(server, env, experiment_name, experiment.experiment_id, run_ids, model_name, interrupted, first, second, first_seconds, second_seconds)


@contextmanager
def resumed_pipeline_server(root, **options):
    """A live `mlflow server` under `root` whose store holds the pipeline of `run_resumed_pipeline`."""
    with mlflow_server(root) as server:
        yield run_resumed_pipeline(server, **options)
