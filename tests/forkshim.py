"""`python` for the `mlflow run` processes of the tests: `python -m steps.<step> ...` forked from
tests/forkserver.py's server instead of a fresh interpreter; anything else execs the real one.

tests/forkserver.py writes a `python` beside it that runs this file with the real interpreter's path first
(`-S -E`: no site-packages to import, nothing read from the environment, so it starts in ~20 ms), and puts
it first on PATH only for the pipeline tests' `mlflow run` commands (`forkserver.with_shim`). The step
runs as `python -m` would, in a process of its own with this process's stdin, stdout and stderr (passed
over the socket), environment, working directory and argv; this process waits for it, passes on the
signals a parent sends (SIGTERM, SIGINT, SIGHUP) and exits as it did, by the same signal if it was killed.
If this process is killed outright, the server sees the socket close and kills the step. Only the standard
library here: this file must not import anything the server would have to.
"""

import json
import os
import signal
import socket
import sys

STEP_MODULES = ("steps.",)


def main(real_python: str, args: list[str]) -> None:
    def real_interpreter():
        os.execv(real_python, [real_python, *args])

    address = os.environ.get("FOLKSY_TEST_FORKSERVER")
    if not (address and len(args) >= 2 and args[0] == "-m" and args[1].startswith(STEP_MODULES)):
        real_interpreter()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    request = {"module": args[1], "args": args[2:], "env": dict(os.environ), "cwd": os.getcwd()}
    try:
        conn.connect(address)
        socket.send_fds(conn, [b"F"], [0, 1, 2])
        conn.sendall((json.dumps(request) + "\n").encode())
        reader = conn.makefile("r")
        first = reader.readline().strip()
    except OSError:  # the server is gone, or a standard stream is closed: a real interpreter does the same job, slower
        first = ""
    if first in ("fallback", ""):  # "fallback": an import-time setting or working directory the server cannot serve
        conn.close()
        real_interpreter()
    pid = int(first)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    line = reader.readline().strip()
    if not line:
        print(f"forkshim: the fork server went away while `python {' '.join(args)}` ran", file=sys.stderr)
        sys.exit(1)
    code = int(line)
    if code < 0:  # killed by a signal: die by the same one, so the parent sees what it would have seen
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
