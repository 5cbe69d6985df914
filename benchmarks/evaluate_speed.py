"""Evaluation speed: the full evaluate step (1,000 generations) end to end, as a user runs it.

    python benchmarks/evaluate_speed.py
    python benchmarks/evaluate_speed.py --model-uri runs:/<train run>/model --tracking-uri sqlite:///mlflow.db

It runs the real commands in a subprocess: `python -m steps.prepare` on the shipped corpus (into a
throwaway tracking store, unless --tracking-uri and --prepare-run-id name existing ones), then
`python -m steps.evaluate` in full mode. The default model is the embedded SmolLM2-135M-Instruct
itself: untuned, it rambles to max_new_tokens on every prompt, so this is the worst case for a
135M model; a fine-tuned model stops after its saying and finishes sooner.

It prints the wall time of the evaluate command (the target: under 10 minutes on 2 CPU cores), its
CPU time, the 1-minute load average sampled during the run (above ~2 means other work shared the
cores), and the per-phase seconds the run logged as time/* metrics. Add --warm to run evaluate twice and
report the second, with the embedded model conversion and file caches warm. It is a benchmark, not a
test: figures go into docs/benchmarks.md.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))
PHASES = ["load_data", "generate_model", "perplexity_model", "generate_base", "perplexity_base", "generate_engine",
          "embed_corpus_and_fit_classifier", "score", "plot", "total"]


def run(args: list[str], env: dict) -> tuple[float, float, list[float], str]:
    """Run `python -m ...` from the project root.

    Returns wall seconds, CPU seconds, the 1-minute load average sampled every 5 s meanwhile, and stdout.
    """
    import threading

    loads, done = [], threading.Event()

    def sample():
        while not done.wait(5):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    sampler.start()
    result = subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    done.set()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args[:1])} failed with exit code {result.returncode}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), loads, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-uri", default="", help="Model to evaluate (default: the embedded model's directory).")
    parser.add_argument("--tracking-uri", default="", help="Existing tracking store (default: a throwaway one).")
    parser.add_argument("--prepare-run-id", default="", help="Existing prepare run (default: run prepare first).")
    parser.add_argument("--warm", action="store_true", help="Run evaluate twice and report the second run.")
    parser.add_argument("extra", nargs="*", help="Extra options for steps.evaluate, after --.")
    options = parser.parse_args()

    from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model

    model_uri = options.model_uri or resolve_base_model(EMBEDDED_DEFAULT).path
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "MLFLOW_TRACKING_URI": options.tracking_uri or f"sqlite:///{scratch}/mlflow.db", "MLFLOW_EXPERIMENT_NAME": "folksy-benchmark"}
        env.pop("MLFLOW_RUN_ID", None)
        prepare_run_id = options.prepare_run_id
        if not prepare_run_id:
            run(["steps.prepare"], env)
            os.environ.update({k: env[k] for k in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")})
            from folksy.tracking import latest_run_id

            prepare_run_id = latest_run_id("prepare")
        command = ["steps.evaluate", "--model-uri", model_uri, "--prepare-run-id", prepare_run_id, *options.extra]
        for attempt in range(2 if options.warm else 1):
            wall, cpu, loads, stdout = run(command, env)
        run_id = stdout.strip().rsplit("run ", 1)[-1]
        os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
        import mlflow

        logged = mlflow.get_run(run_id)

    print(f"model: {model_uri}")
    print(f"command: python -m {' '.join(command)}")
    print(f"evaluate wall time: {wall:.0f} s ({wall / 60:.1f} min; target < 10 min)   CPU time: {cpu:.0f} s")
    print(f"1-minute load average during the run (2 cores; above ~2 means other work shared them): mean {sum(loads) / max(len(loads), 1):.2f}, max {max(loads, default=0):.2f}")
    print("prompts: {num_prompts} (base {base_prompts}), max_new_tokens {max_new_tokens}, perplexity rows {perplexity_rows}".format(**logged.data.params))
    print("\n| phase | seconds |\n| --- | ---: |")
    phases = {name[5:].removesuffix("_s"): value for name, value in logged.data.metrics.items() if name.startswith("time/")}
    for name in sorted(phases, key=lambda name: (PHASES.index(name) if name in PHASES else len(PHASES), name)):
        print(f"| {name} | {phases[name]:.1f} |")


if __name__ == "__main__":
    main()
