"""GGUF export (folksy.gguf_export, `folksy export-gguf`): the file loads back in transformers with
`gguf_file=` and answers as the original does."""

import shutil
from pathlib import Path

import pytest

from folksy.gguf_export import CHECK_PROMPTS, greedy_agreement, load_gguf_generator, write_gguf
from tests.conftest import PROJECT_ROOT
from tests.forkserver import run_module


@pytest.fixture(scope="module")
def tiny_llama_dir(tiny_qwen2_dir, tmp_path_factory) -> str:
    """A tiny random Llama (SmolLM2's architecture, whose q/k weights GGUF stores permuted)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def half_rounded(model_dir, target) -> str:
    """The model with every weight rounded to float16 and back: what an exact F16 file must reproduce."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with torch.no_grad():
        for weight in model.parameters():
            weight.copy_(weight.half().float())
    model.save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
        if (Path(model_dir) / name).is_file():
            shutil.copy(Path(model_dir) / name, target)
    return str(target)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_f16_is_exact_and_answers_as_the_original(architecture, tiny_llama_dir, tiny_qwen2_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.chat import build_messages
    from folksy.generation import SayingGenerator

    source = {"llama": tiny_llama_dir, "qwen2": tiny_qwen2_dir}[architecture]
    path = write_gguf(source, tmp_path / "export" / "tiny.f16.gguf", "f16")
    assert path.is_file() and not list(path.parent.glob("*.partial"))  # written beside, then moved into place

    reference = half_rounded(source, tmp_path / "reference")
    original = AutoModelForCausalLM.from_pretrained(reference).state_dict()
    exported = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)  # as load_gguf_generator does
    loaded = exported.state_dict()
    assert set(original) == set(loaded)
    assert all(torch.equal(original[name], loaded[name]) for name in original)  # q/k permuted back, nothing lost

    text = AutoTokenizer.from_pretrained(source).apply_chat_template(build_messages(CHECK_PROMPTS[0]), tokenize=False, add_generation_prompt=True)
    gguf_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert gguf_tokenizer(text)["input_ids"] == AutoTokenizer.from_pretrained(source)(text)["input_ids"]
    # the model and tokenizer just loaded from the file, as load_gguf_generator builds them (reading a GGUF file
    # parses its whole vocabulary, seconds each time; the embedded-model and CLI tests call load_gguf_generator itself)
    equal, _ = greedy_agreement(SayingGenerator.from_pretrained(reference), SayingGenerator(exported, gguf_tokenizer), max_new_tokens=8)
    assert equal == len(CHECK_PROMPTS) == 20


def test_q8_0_is_half_the_size_and_within_one_quantization_step(tiny_llama_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    f16, q8 = write_gguf(tiny_llama_dir, tmp_path / "t.f16.gguf", "f16"), write_gguf(tiny_llama_dir, tmp_path / "t.q8_0.gguf", "q8_0")
    assert q8.stat().st_size < 0.65 * f16.stat().st_size
    original = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).state_dict()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=q8.name, dtype=torch.float32).state_dict()
    for name, weight in original.items():
        if weight.ndim == 2:  # blocks of 32 along a row, one scale each (max |w| / 127, itself stored as float16)
            blocks = weight.reshape(-1, 32)
            step = blocks.abs().amax(dim=1, keepdim=True) / 127
            assert ((loaded[name].reshape(-1, 32) - blocks).abs() <= step * (0.5 + 127 / 2**11) + 1e-7).all(), name  # half a step, plus the float16 scale's rounding times 127
        else:
            assert torch.equal(loaded[name], weight), name  # norms stay float32


def test_a_bad_type_or_architecture_is_one_line(tiny_qwen2_dir, tmp_path):
    from folksy.errors import FolksyError

    with pytest.raises(FolksyError, match=r"^--type: 'q4_k' is not one of f16, q8_0$"):
        write_gguf(tiny_qwen2_dir, tmp_path / "x.gguf", "q4_k")
    config = (Path(tiny_qwen2_dir) / "config.json").read_text().replace('"model_type": "qwen2"', '"model_type": "gpt2"')
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(config)
    with pytest.raises(FolksyError, match="model type 'gpt2' is not supported"):
        write_gguf(tmp_path / "other", tmp_path / "x.gguf", "f16")
    assert not list(tmp_path.glob("*.gguf*"))


@pytest.mark.slow
def test_export_gguf_writes_checks_and_logs_the_registered_version(tracking_uri, tiny_llama_dir, tmp_path):
    """The command as a user runs it, on a folksy pyfunc registered in a real SQLite registry."""
    import mlflow
    from mlflow import MlflowClient

    from folksy.pyfunc_model import model_kwargs
    from folksy.tracking import configure

    configure()
    with mlflow.start_run(run_name="train", tags={"folksy.step": "train"}) as train:
        info = mlflow.pyfunc.log_model(name="model", **model_kwargs(tiny_llama_dir, tmp_path / "scratch"))
    version = mlflow.register_model(info.model_uri, "folksy-proverbs").version
    MlflowClient().set_registered_model_alias("folksy-proverbs", "production", version)

    target = tmp_path / "out" / "folksy.f16.gguf"
    result = run_module("folksy.cli", "export-gguf", "--type", "f16", "--output", str(target), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # against the float32 original, half precision may flip a greedy choice of a random model; the count is reported
    assert f"{target} (" in result.stdout and "greedy sayings equal to the original's on " in result.stdout
    assert [a.path for a in MlflowClient().list_artifacts(train.info.run_id, "gguf")] == ["gguf/folksy.f16.gguf"]
    tags = MlflowClient().get_model_version("folksy-proverbs", version).tags
    assert tags["gguf_f16"] == f"runs:/{train.info.run_id}/gguf/folksy.f16.gguf"
    assert tags["gguf_f16_greedy_agreement"].endswith("/20")

    missing = run_module("folksy.cli", "export-gguf", "--model", "models:/folksy-proverbs/9", timeout=300)
    assert missing.returncode != 0 and missing.stderr.strip().splitlines()[-1].startswith("Error: --model 'models:/folksy-proverbs/9': cannot be loaded")


@pytest.mark.slow
def test_the_embedded_model_exports_exactly_in_f16(embedded_model_dir, tmp_path):
    """SmolLM2-135M-Instruct, the real architecture and tokenizer: the F16 file answers all 20 check
    prompts as the float16-rounded original does (benchmarks/gguf_export.py compares with float32)."""
    import torch

    from folksy.generation import SayingGenerator

    path = write_gguf(embedded_model_dir, tmp_path / "embedded.f16.gguf", "f16")
    reference = SayingGenerator.from_pretrained(half_rounded(embedded_model_dir, tmp_path / "reference"), dtype=torch.float32)
    equal, pairs = greedy_agreement(reference, load_gguf_generator(path))
    assert equal == len(CHECK_PROMPTS), [pair for pair in pairs if pair[1] != pair[2]]
    assert all(saying for _, saying, _ in pairs)


def test_the_serving_recipes_in_the_docs_say_folksys_prompt_and_sampling():
    from folksy.chat import SYSTEM_PROMPT
    from folksy.generation import SAMPLING

    page = (PROJECT_ROOT / "docs" / "scale-out.md").read_text()
    section = page.split("## 4. Serving the model on CPUs from GGUF")[1].split("## 5.")[0]
    assert f'SYSTEM "{SYSTEM_PROMPT}"' in section
    assert f"--temp {SAMPLING.temperature} --top-p {SAMPLING.top_p} --top-k 0 -n {SAMPLING.max_new_tokens}" in section
    for setting in (f"temperature {SAMPLING.temperature}", f"top_p {SAMPLING.top_p}", f"num_predict {SAMPLING.max_new_tokens}"):
        assert f"PARAMETER {setting}\n" in section
