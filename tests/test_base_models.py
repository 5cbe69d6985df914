import os

import pytest

from folksy.base_models import EMBEDDED_DEFAULT, embedded_gguf_path, file_sha256, resolve_base_model
from folksy.errors import FolksyError


def test_embedded_default_is_a_safetensors_directory(embedded_model_dir):
    resolved = resolve_base_model(EMBEDDED_DEFAULT)
    assert resolved.path == embedded_model_dir
    assert resolved.source == "embedded"
    assert resolved.revision == file_sha256(embedded_gguf_path(EMBEDDED_DEFAULT))
    files = set(os.listdir(resolved.path))
    assert "model.safetensors" in files and "config.json" in files and "tokenizer.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)


def test_gguf_path_reuses_the_same_conversion(embedded_model_dir):
    resolved = resolve_base_model(str(embedded_gguf_path(EMBEDDED_DEFAULT)))
    assert resolved.source == "gguf"
    assert resolved.path == embedded_model_dir


def test_embedded_model_generates_text(embedded_model_dir):
    from folksy.generation import SayingGenerator

    generator = SayingGenerator.from_pretrained(embedded_model_dir)
    [[text]] = generator.generate(["Tell me a proverb."], temperature=0, max_new_tokens=12)
    assert len(text.split()) >= 3


def test_local_qwen2_directory_loads_and_generates(tiny_qwen2_dir):
    from folksy.generation import SayingGenerator

    resolved = resolve_base_model(tiny_qwen2_dir)
    assert (resolved.source, resolved.path) == ("local", tiny_qwen2_dir)
    assert len(resolved.revision) == 64
    generator = SayingGenerator.from_pretrained(resolved.path)
    assert type(generator.model).__name__ == "Qwen2ForCausalLM"
    outputs = generator.generate(["Tell me a proverb.", "Tell me something about rain."], num_return_sequences=2, max_new_tokens=5, seed=3)
    assert [len(o) for o in outputs] == [2, 2]


def test_hub_id_offline_gives_one_line_pointing_at_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing to fall back on
    with pytest.raises(FolksyError) as caught:
        resolve_base_model("Qwen/Qwen2.5-0.5B-Instruct")
    message = str(caught.value)
    assert "cannot be reached" in message and f"base_model={EMBEDDED_DEFAULT}" in message
    assert "\n" not in message


def test_hub_id_with_unreachable_hub(monkeypatch, tmp_path):
    """The hub client really tries to connect, to a closed local port standing in for an unreachable Hub."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = "from folksy.base_models import resolve_base_model\nresolve_base_model('Qwen/Qwen2.5-0.5B-Instruct')"
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HOME": str(tmp_path), "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode != 0
    assert "the Hugging Face Hub cannot be reached" in result.stderr


@pytest.mark.parametrize("spec", ["./no/such/dir", "not a model id!", "missing.gguf"])
def test_unknown_specs_are_refused(spec):
    with pytest.raises(FolksyError, match="base_model"):
        resolve_base_model(spec)


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(FolksyError, match="no config.json"):
        resolve_base_model(str(tmp_path))
