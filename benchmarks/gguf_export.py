"""GGUF export of a real model: size, time, and how often the GGUF-loaded model answers the 20 check
prompts with the same greedy saying as the original, for F16 and Q8_0, printed for docs/benchmarks.md.

    python benchmarks/gguf_export.py                       # the embedded SmolLM2-135M-Instruct
    python benchmarks/gguf_export.py --model models:/folksy-proverbs@staging

The original is loaded in float32, as `folksy generate` loads it; transformers dequantizes the GGUF
to float32 too, so any difference comes from the file's precision.
"""

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import click


def shared_words(a: str, b: str) -> int:
    """How many words two sayings share before they first differ."""
    count = 0
    for x, y in zip(a.split(), b.split()):
        if x != y:
            break
        count += 1
    return count


@click.command(help=__doc__)
@click.option("--model", "model_uri", default="", help="A folksy model URI or HF directory [default: the embedded base model].")
def main(model_uri):
    import torch

    from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model
    from folksy.generation import SayingGenerator, download_hf_dir
    from folksy.gguf_export import CHECK_PROMPTS, TYPES, greedy_agreement, load_gguf_generator, write_gguf

    if model_uri and not Path(model_uri).is_dir():
        import mlflow

        from folksy.tracking import tracking_uri

        mlflow.set_tracking_uri(tracking_uri())
        download = tempfile.TemporaryDirectory(prefix="folksy-model-")
        source = download_hf_dir(model_uri, download.name)
    else:
        download, source = None, Path(model_uri or resolve_base_model(EMBEDDED_DEFAULT).path)
    original = SayingGenerator.from_pretrained(str(source), dtype=torch.float32)
    weights = sum(p.numel() for p in original.model.parameters())
    print(f"\n### GGUF export of {model_uri or EMBEDDED_DEFAULT} ({weights / 1e6:.0f}M parameters)\n")
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}; "
          f"{len(CHECK_PROMPTS)} check prompts (folksy.gguf_export.CHECK_PROMPTS), greedy, 48 new tokens at most.\n")
    print("| type | file MiB | export s | greedy sayings equal to the original's | where they differ: words in common before the first difference (mean) |\n| --- | --- | --- | --- | --- |")
    differing = {}
    with tempfile.TemporaryDirectory() as scratch:
        for kind in TYPES:
            started = time.perf_counter()
            path = write_gguf(source, Path(scratch) / f"model.{kind}.gguf", kind)
            seconds = time.perf_counter() - started
            equal, pairs = greedy_agreement(original, load_gguf_generator(path))
            differing[kind] = [(p, a, b) for p, a, b in pairs if a != b]
            common = [shared_words(a, b) for _, a, b in differing[kind]]
            shared = f"{sum(common) / len(common):.1f} of {sum(len(a.split()) for _, a, _ in differing[kind]) / len(common):.1f}" if common else "-"
            print(f"| {kind} | {path.stat().st_size / 2**20:.1f} | {seconds:.1f} | {equal}/{len(CHECK_PROMPTS)} | {shared} |")
            path.unlink()
    if download:
        download.cleanup()
    for kind, pairs in differing.items():
        for prompt, a, b in pairs[:3]:
            print(f"\n{kind} differs on {prompt!r}:\n  original: {a!r}\n  gguf:     {b!r}")


if __name__ == "__main__":
    main()
