"""`python -m steps.<step> ...` for the tests, without paying for the imports every time.

Each step process spends 5-15 s importing mlflow, torch, transformers and sentence-transformers before it
does anything, and the suite starts about a hundred of them. A fork server imports all of that once, in
a process of its own that never runs a torch op (so no OpenMP pool exists to be broken by `fork`); each
request forks it, and the child runs the module as `python -m` would (`runpy`, `__name__ == "__main__"`,
the caller's argv, environment and working directory; stdout and stderr to files, or the caller's own
streams passed over the socket by tests/forkshim.py) and exits as the
interpreter would (non-daemon threads joined, atexit handlers run, streams flushed) less the teardown of
every module, which takes seconds with torch imported. Every step still runs in
a process of its own with its own exit status; what the tests no longer re-check a hundred times is that
Python can import the libraries.

A call falls back to a real interpreter when its environment differs from the server's in anything a
library reads at import time (the Hugging Face and torch settings, PYTHONPATH, HOME, ...) or it runs
elsewhere than the project root (the server decides, and answers "fallback"), or when the server cannot
start. The pipeline tests' `mlflow run` comes through here too, its step commands by tests/forkshim.py;
tests about the process boundary itself (signals, resuming under a real `mlflow run`, a fresh
interpreter) start their processes directly.
"""

import atexit
import importlib.util
import json
import os
import runpy
import selectors
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

    Requests are served at once, several at a time: a step may start steps of its own (`main` runs the
    others through `mlflow run`, whose `python` is tests/forkshim.py). One selector watches the listening
    socket, each caller's connection (closed early: the caller is gone, so its child is killed) and each
    child's pidfd (readable once it exits: its exit status goes back to the caller). Each child reports the
    modules it ended up importing; the server imports the new ones before the next fork, so the second run
    of any step starts with everything it needs already imported."""
    preload(PRELOAD)
    settings = import_time_settings(os.environ)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    Path(address).unlink(missing_ok=True)
    listener.bind(address)
    listener.listen(64)
    workdir = Path(address).parent
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, ("accept",))
    served = 0
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            kind, *state = key.data
            if kind == "accept":
                conn, _ = listener.accept()
                selector.register(conn, selectors.EVENT_READ, ("request",))
            elif kind == "request":
                conn = key.fileobj
                selector.unregister(conn)
                request, fds = receive(conn)
                if request == "stop" or request is None:
                    conn.close()
                    if request == "stop":
                        selector.close()
                        listener.close()
                        return {}
                    continue
                if Path(request["cwd"]) != PROJECT_ROOT or import_time_settings(request["env"]) != settings:
                    answer(conn, "fallback")  # the caller starts a real interpreter instead
                    conn.close()
                    for fd in fds:
                        os.close(fd)
                    continue
                served += 1
                request["modules"] = str(workdir / f"modules-{served}")
                pid = os.fork()
                if pid == 0:
                    for watched in list(selector.get_map().values()):  # the child holds nobody else's socket or pidfd
                        watched.fileobj.close() if hasattr(watched.fileobj, "close") else os.close(watched.fd)
                    selector.close()
                    listener.close()
                    conn.close()
                    return {**request, "fds": fds}
                for fd in fds:
                    os.close(fd)
                print(f"forkserver: {request['module']} as {pid}", file=sys.stderr, flush=True)
                answer(conn, pid)
                selector.register(conn, selectors.EVENT_READ, ("caller", pid))
                selector.register(os.pidfd_open(pid), selectors.EVENT_READ, ("child", pid, conn, request["modules"]))
            elif kind == "caller":  # the caller hung up before its child ended (killed, or gave up): end the child
                if key.fileobj.fileno() == -1:  # no: the child ended in this same batch, and its caller was answered
                    continue
                selector.unregister(key.fileobj)
                kill_session(state[0])
            elif kind == "child":
                pid, conn, modules = state
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                if conn.fileno() != -1:
                    if conn.fileno() in selector.get_map():
                        selector.unregister(conn)
                    answer(conn, os.waitstatus_to_exitcode(status))
                    conn.close()
                learnt = Path(modules)
                names = learnt.read_text().split() if learnt.exists() else []
                learnt.unlink(missing_ok=True)
                preload(name for name in names if name not in sys.modules and not name.startswith(("tests", "__")))
                if threading.active_count() > 1:  # a fork would copy no thread but every lock one holds: stop serving
                    print(f"forkserver: Python threads after preloading ({threading.enumerate()}); stopping", file=sys.stderr, flush=True)
                    selector.close()
                    listener.close()
                    return {}


def receive(conn: socket.socket) -> tuple:
    """A request: one byte, carrying the caller's stdin, stdout and stderr when it passes them (the shim
    does), then a JSON line. None when the caller hung up first."""
    try:
        head, fds, _, _ = socket.recv_fds(conn, 1, 3)
        with conn.makefile("r") as reader:
            line = reader.readline()
        return (json.loads(line), list(fds)) if head and line else (None, list(fds))
    except (OSError, ValueError):
        return None, []


def kill_session(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # the child may not have its own session yet, or may have ended
        try:
            kill(pid, signal.SIGKILL)
            return
        except (ProcessLookupError, PermissionError):
            continue


def answer(conn: socket.socket, value) -> None:
    try:
        conn.sendall(f"{value}\n".encode())
    except OSError:  # the caller gave up (a timeout) and killed the child: serve the next one
        pass


def run_request(request: dict) -> None:
    """In the forked child: become `python -m <module> <args>` and exit the way it would."""
    os.setsid()  # like start_new_session: a kill of the caller's process group leaves the server alone
    if request["fds"]:  # the shim's own stdin, stdout and stderr, passed over the socket
        for fd, passed in enumerate(request["fds"]):
            os.dup2(passed, fd)
            os.close(passed)
    else:
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
    # as in a fresh `python -m`: the module (a package's __main__) runs once, as __main__; a package stays imported
    if not hasattr(sys.modules.get(module), "__path__"):
        sys.modules.pop(module, None)
    sys.modules.pop(f"{module}.__main__", None)
    sys.argv = [module, *request["args"]]
    try:
        if importlib.util.find_spec(module) is None:  # what `python -m` says of a module that isn't there
            print(f"{sys.executable}: No module named {module}", file=sys.stderr)
            raise SystemExit(1)
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
        self.log_path = workdir / "forkserver.log"  # the server's stderr: a line for each child it forks
        self.log = open(self.log_path, "w")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", self.address], cwd=PROJECT_ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )  # fmt: skip
        self.ready = self.process.stdout.readline().strip() == "ready"
        # `python` for `mlflow run`'s step commands (with_shim): tests/forkshim.py, given the real interpreter
        self.bin = workdir / "bin"
        self.bin.mkdir(exist_ok=True)
        shim = self.bin / "python"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{PROJECT_ROOT / "tests" / "forkshim.py"}" "{sys.executable}" "$@"\n')
        shim.chmod(0o755)

    def alive(self) -> bool:
        return self.ready and self.process.poll() is None

    def run(self, module: str, *args: str, env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", module, *args]
        with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            conn.connect(self.address)
            with conn.makefile("rw") as stream:
                request = {"module": module, "args": list(args), "env": env, "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
                stream.write("J" + json.dumps(request) + "\n")
                stream.flush()
                first = stream.readline().strip()
                if first == "fallback":  # another import-time setting or working directory: a real interpreter
                    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
                pid = int(first)
                conn.settimeout(timeout)
                try:
                    returncode = int(stream.readline())
                except TimeoutError:
                    kill_session(pid)
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
                    conn.sendall(b'J"stop"\n')
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


def with_shim(env: dict) -> dict:
    """`env` for an `mlflow run` whose `python -m steps.<step>` commands fork from the server too (tests/forkshim.py);
    `env` as it is when there is no server."""
    forks = server()
    if forks is None or not forks.alive():
        return env
    return {**env, "PATH": f"{forks.bin}{os.pathsep}{env.get('PATH', '')}", "FOLKSY_TEST_FORKSERVER": forks.address}


def run_module(module: str, *args: str, env: dict | None = None, cwd: Path = PROJECT_ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m module args` with `env` (default: this process's), as `subprocess.run(..., capture_output=True,
    text=True)` would return it; through the fork server when it can give the same result."""
    env = dict(os.environ if env is None else env)
    forks = server()
    if forks is not None and forks.alive():
        return forks.run(module, *args, env=env, cwd=cwd, timeout=timeout)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


if __name__ == "__main__":
    request = serve(sys.argv[1])
    if request:
        run_request(request)
