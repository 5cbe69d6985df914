"""`mlflow models serve` under concurrent clients, with and without shared generations, in one run.

    python benchmarks/serving_load.py --model runs:/<train run>/model --tracking-uri sqlite:///mlflow.db

For each way of serving, a real `mlflow models serve` of --model on a free 127.0.0.1 port, then --clients
threads send --requests one-prompt requests in all (prompts from --prompts, in turn; the model's default
params, so its recipe's best-of), each client waiting for its answer before sending the next:
- `separate`: FOLKSY_SHARED_GENERATION=0, each request generates on its own in the server's thread for it
  (how the pyfunc served before 2026-12-07);
- `shared`: the default, folksy.batching.RequestBatcher: requests that arrive while a generation runs share
  the next one;
- `before` (with --before): another model URI served the `shared` way, e.g. the same weights logged by an
  earlier folksy: a logged model keeps the folksy code it was logged with, so this is how a change to
  generation is served side by side with the code before it.
It records requests per second, p50/p95 latency, errors, and that a request over the limits (max_new_tokens
above the pyfunc's limit, an over-long prompt) is refused with a 400 while the server is loaded.
Figures go into docs/benchmarks.md ("Serving under load").
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict, timeout: float = 600) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def serve(model: str, env: dict, port: int) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5)
            return server
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"mlflow models serve did not come up: {server.stderr.read()[-2000:] if server.poll() is not None else 'timeout'}")
            time.sleep(1)


def load(url: str, prompts: list[str], clients: int, requests: int) -> dict:
    """`clients` threads, `requests` one-prompt requests in all; latency of each, errors counted."""
    latencies, errors, lock, sent = [], [], threading.Lock(), iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                index = next(sent, None)
            if index is None:
                return
            started = time.perf_counter()
            status, answer = post(url, {"inputs": [prompts[index % len(prompts)]]})
            with lock:
                latencies.append(time.perf_counter() - started)
                if status != 200 or not answer.get("predictions") or not answer["predictions"][0].strip():
                    errors.append((status, str(answer)[:200]))

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {"requests": requests, "wall_s": round(wall, 1), "requests_per_s": round(requests / wall, 3),
            "p50_s": round(statistics.median(latencies), 2), "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
            "errors": len(errors), "first_errors": errors[:3]}  # fmt: skip


def refused_while_loaded(url: str, prompt: str) -> dict:
    """Requests over the limits, sent while clients keep the server busy: each must come back a 400 with a message."""
    from folksy.chat import MAX_PROMPT_CHARS
    from folksy.pyfunc_model import MAX_NEW_TOKENS_LIMIT

    cases = {"max_new_tokens over the limit": {"inputs": [prompt], "params": {"max_new_tokens": MAX_NEW_TOKENS_LIMIT + 1}},
             "over-long prompt": {"inputs": ["x" * (MAX_PROMPT_CHARS + 1)]}}  # fmt: skip
    answers = {}
    for name, body in cases.items():
        status, answer = post(url, body)
        answers[name] = {"status": status, "message": str(answer.get("message", answer))[-160:]}  # its end: the echoed input comes first
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model URI with a pyfunc flavor, e.g. runs:/<id>/model")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"), help="where runs:/ and models:/ URIs resolve")
    parser.add_argument("--prompts", default=str(ROOT / "benchmarks/reading/prompts-2026-12-07.jsonl"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--modes", default="separate,shared")
    parser.add_argument("--before", default="", help="a model URI to serve first, shared, as the baseline (mode `before`)")
    args = parser.parse_args()

    prompts = [json.loads(line)["prompt"] for line in Path(args.prompts).read_text().splitlines() if line.strip()]
    results = {"model": args.model, "before": args.before, "clients": args.clients, "cpu_count": os.cpu_count()}
    for mode in (["before"] if args.before else []) + args.modes.split(","):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "FOLKSY_SHARED_GENERATION": "0" if mode == "separate" else "1",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # the server runs `uvicorn`
        if args.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = args.tracking_uri
        port = free_port()
        server = serve(args.before if mode == "before" else args.model, env, port)
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            post(url, {"inputs": [prompts[0]]})  # warm: the first request loads what the server loads lazily
            busy = threading.Thread(target=lambda: load(url, prompts, args.clients, args.clients * 2))
            busy.start()
            time.sleep(2)
            refused = refused_while_loaded(url, prompts[0])
            busy.join()
            results[mode] = {**load(url, prompts, args.clients, args.requests), "refused": refused}
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)
        print(json.dumps({mode: results[mode]}), flush=True)
    if "separate" in results and "shared" in results:
        results["ratio_requests_per_s"] = round(results["shared"]["requests_per_s"] / results["separate"]["requests_per_s"], 2)
    if "before" in results and "shared" in results:
        results["ratio_to_before"] = round(results["shared"]["requests_per_s"] / results["before"]["requests_per_s"], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
