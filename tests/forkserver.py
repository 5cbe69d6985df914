"""`python -m steps.<step> ...` for the tests, without paying for the imports every time.

Each step process spends 5-15 s importing mlflow, torch, transformers and sentence-transformers before it
does anything, and the suite starts about a hundred of them. A fork server imports all of that once, in
a process of its own that never runs a torch op (so no OpenMP pool exists to be broken by `fork`); each
request forks it, and the child runs the module as `python -m` would (`runpy`, `__name__ == "__main__"`,
the caller's argv, environment and working directory, stdout and stderr to files) and exits as the
interpreter would (non-daemon threads joined, atexit handlers run, streams flushed) less the teardown of
every module, which takes seconds with torch imported. Every step still runs in
a process of its own with its own exit status; what the tests no longer re-check a hundred times is that
Python can import the libraries.

A call falls back to a real `subprocess.run` when its environment differs from the server's in anything a
library reads at import time (the Hugging Face and torch settings, PYTHONPATH, HOME, ...), when it runs
elsewhere than the project root, or when the server cannot start. Tests about the process boundary itself
(signals, `mlflow run`, a fresh interpreter) start their processes directly, not through here.
"""

import atexit
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRELOAD = ("mlflow", "torch", "transformers", "datasets", "trl", "peft", "sentence_transformers", "click",
           "folksy.pipeline", "folksy.training.sft", "folksy.judging.critic", "folksy.evaluation.systems")  # fmt: skip
# Settings some library reads once, when it is imported: a request that changes one gets a real interpreter.
# Not TORCHINDUCTOR_* nor KMP_*: torch sets TORCHINDUCTOR_CACHE_DIR, and a library imported by the critic tests
# KMP_INIT_AT_FORK and KMP_DUPLICATE_LIB_OK, in a test process's own environment.
IMPORT_TIME_PREFIXES = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH_", "PYTORCH_", "OMP_", "MKL_", "PYTHON",
                        "LD_", "HOME", "XDG_", "TMPDIR", "SENTENCE_TRANSFORMERS_")  # fmt: skip


def import_time_settings(env: dict) -> dict:
    return {key: value for key, value in env.items() if key.startswith(IMPORT_TIME_PREFIXES)}


def preload(names) -> None:
    """Import (never call into) what a step will need; an import that fails is the step's to report."""
    for name in names:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 (a module some step imported may not import on its own here)
            continue


def serve(address: str) -> dict:
    """The server's loop; returns, in a forked child only, the request that child is to run.

    Each child reports the modules it ended up importing; the server imports the new ones before the
    next fork, so the second run of any step starts with everything it needs already imported."""
    preload(PRELOAD)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    Path(address).unlink(missing_ok=True)
    listener.bind(address)
    listener.listen()
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            with conn.makefile("r") as reader:
                request = json.loads(reader.readline())
            if request == "stop":
                listener.close()
                return {}
            pid = os.fork()
            if pid == 0:
                listener.close()  # the child must not hold the server's socket
                return request
            answer(conn, pid)
            _, status = os.waitpid(pid, 0)
            learnt = Path(request["modules"])
            names = learnt.read_text().split() if learnt.exists() else []
            answer(conn, os.waitstatus_to_exitcode(status))
            preload(name for name in names if name not in sys.modules and not name.startswith(("tests", "__")))
            if threading.active_count() > 1:  # a fork would copy no thread but every lock one holds: stop serving
                print(f"forkserver: Python threads after preloading ({threading.enumerate()}); stopping", file=sys.stderr, flush=True)
                listener.close()
                return {}


def answer(conn: socket.socket, value: int) -> None:
    try:
        conn.sendall(f"{value}\n".encode())
    except OSError:  # the caller gave up (a timeout) and killed the child: serve the next one
        pass


def run_request(request: dict) -> None:
    """In the forked child: become `python -m <module> <args>` and exit the way it would."""
    os.setsid()  # like start_new_session: a kill of the caller's process group leaves the server alone
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    atexit.register(lambda: Path(request["modules"]).write_text("\n".join(sorted(sys.modules))))
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    module = request["module"]
    sys.modules.pop(module, None)  # as in a fresh `python -m`: the module runs once, as __main__
    sys.argv = [module, *request["args"]]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
        if not isinstance(stop.code, int | None):
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 (what the interpreter would print and exit 1 for)
        traceback.print_exc()
        code = 1
    # The interpreter's own shutdown, less tearing down every module (seconds, with torch imported):
    threading._shutdown()  # noqa: SLF001 (joins non-daemon threads, as at exit)
    atexit._run_exitfuncs()  # noqa: SLF001
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


class ForkServer:
    """The test-side handle: `run(module, *args, env=..., timeout=...)` returns a CompletedProcess."""

    def __init__(self, workdir: Path, env: dict):
        self.address = str(workdir / "forkserver.sock")
        self.env = env
        self.log = open(workdir / "forkserver.log", "w")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.address], cwd=PROJECT_ROOT, env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )  # fmt: skip
        self.ready = self.process.stdout.readline().strip() == "ready"

    def serves(self, env: dict, cwd: Path) -> bool:
        return self.ready and self.process.poll() is None and Path(cwd) == PROJECT_ROOT and import_time_settings(env) == import_time_settings(self.env)

    def run(self, module: str, *args: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", module, *args]
        with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            conn.connect(self.address)
            with conn.makefile("rw") as stream:
                request = {"module": module, "args": list(args), "env": env, "cwd": str(PROJECT_ROOT), "stdout": str(out), "stderr": str(err),
                           "modules": str(Path(tmp) / "modules")}
                stream.write(json.dumps(request) + "\n")
                stream.flush()
                pid = int(stream.readline())
                conn.settimeout(timeout)
                try:
                    returncode = int(stream.readline())
                except TimeoutError:
                    for kill in (os.killpg, os.kill):  # the child may not have its own group yet, or may have ended
                        try:
                            kill(pid, signal.SIGKILL)
                            break
                        except ProcessLookupError:
                            continue
                    output = [path.read_text() if path.exists() else "" for path in (out, err)]
                    raise subprocess.TimeoutExpired(argv, timeout, *output) from None
            done = subprocess.CompletedProcess(argv, returncode, out.read_text(), err.read_text())
            done.forked = True
            return done

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                    conn.connect(self.address)
                    conn.sendall(b'"stop"\n')
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.process.stdout.close()
        self.log.close()


_enabled: tuple[Path, dict] | None = None
_server: ForkServer | None = None


def enable(workdir: Path) -> None:
    """Serve this session's steps; the server starts with the first step (10-15 s), so a run of tests that
    start no step never pays for it. It imports with the environment as it is now, at the session's start,
    not as the test that happens to start it first may have changed it."""
    global _enabled
    _enabled = (workdir, {**os.environ})


def server() -> ForkServer | None:
    global _server
    if _server is None and _enabled is not None:
        _server = ForkServer(*_enabled)
    return _server


def stop() -> None:
    global _server, _enabled
    if _server is not None:
        _server.close()
    _server = _enabled = None


def run_module(module: str, *args: str, env: dict | None = None, cwd: Path = PROJECT_ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m module args` with `env` (default: this process's), as `subprocess.run(..., capture_output=True,
    text=True)` would return it; through the fork server when it can give the same result."""
    env = dict(os.environ if env is None else env)
    forks = server()
    if forks is not None and forks.serves(env, cwd):
        return forks.run(module, *args, env=env, timeout=timeout)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":
    request = serve(sys.argv[1])
    if request:
        run_request(request)
