"""Write a fine-tuned Hugging Face directory as one GGUF file, for CPU serving with llama.cpp or Ollama.

Neither transformers nor TRL writes GGUF; this uses the `gguf` package's writer and its tensor-name map
(the same map transformers reads GGUF with), so the file loads back with
`AutoModelForCausalLM.from_pretrained(directory, gguf_file=name)`. Llama-architecture models (SmolLM2)
and Qwen2 are supported; F16 keeps every weight to half precision, Q8_0 stores the matrices as 8-bit
blocks of 32 with one scale each (llama.cpp's near-lossless quantization). Norms and biases stay F32.

    write_gguf("path/to/hf_model", "folksy.q8_0.gguf", "q8_0")
"""

import json
from pathlib import Path

from folksy.errors import FolksyError

TYPES = ("f16", "q8_0")
ARCHITECTURES = {"llama": "LLAMA", "qwen2": "QWEN2"}  # HF model_type -> gguf.MODEL_ARCH member
PRE_TOKENIZERS = {"llama": "smollm", "qwen2": "qwen2"}  # llama.cpp's names for their pre-tokenizers
TOKEN_TYPES = {"normal": 1, "control": 3, "user_defined": 4, "unused": 5}


def _permute_for_llama_cpp(weights, n_head: int, n_head_kv: int):
    """llama.cpp's rotary layout for q/k of Llama models (the inverse of what its loaders undo)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _vocabulary(tokenizer, vocab_size: int):
    """Tokens by id (padded to the model's vocabulary size), their GGUF types, and the BPE merges."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    if backend["model"]["type"] != "BPE":
        raise FolksyError(f"gguf export: only byte-level BPE tokenizers are supported, not {backend['model']['type']}")
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = {token["id"]: token for token in backend.get("added_tokens", [])}
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(TOKEN_TYPES["unused"])
            continue
        tokens.append(by_id[index])
        special = added.get(index, {}).get("special")
        types.append(TOKEN_TYPES["control"] if special else TOKEN_TYPES["user_defined"] if index in added else TOKEN_TYPES["normal"])
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in backend["model"]["merges"]]
    return tokens, types, merges


def write_gguf(hf_dir, target, quantization: str = "f16") -> Path:
    """Write `hf_dir` as a GGUF file at `target` (written beside it first, so a failure leaves nothing)."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if quantization not in TYPES:
        raise FolksyError(f"--type: '{quantization}' is not one of {', '.join(TYPES)}")
    config = AutoConfig.from_pretrained(hf_dir)
    if config.model_type not in ARCHITECTURES:
        raise FolksyError(f"gguf export: model type '{config.model_type}' is not supported (only {', '.join(ARCHITECTURES)})")
    arch = getattr(gguf.MODEL_ARCH, ARCHITECTURES[config.model_type])
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)

    writer = gguf.GGUFWriter(str(partial), gguf.MODEL_ARCH_NAMES[arch])
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_name(Path(hf_dir).name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quantization == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)

    tokens, types, merges = _vocabulary(tokenizer, config.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZERS[config.model_type])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for add, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id), (writer.add_eos_token_id, tokenizer.eos_token_id),
                          (writer.add_pad_token_id, tokenizer.pad_token_id), (writer.add_unk_token_id, tokenizer.unk_token_id)):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(False)  # the chat template writes every special token itself
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)

    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # tied: llama.cpp and transformers reuse token_embd
        stem, suffix = hf_name.rsplit(".", 1)
        name = names.get_name(stem)
        if name is None:
            if "rotary_emb" in hf_name:
                continue
            raise FolksyError(f"gguf export: no GGUF name for tensor '{hf_name}'")
        data = tensor.numpy()
        if config.model_type == "llama" and name.endswith(("attn_q", "attn_k")):
            data = _permute_for_llama_cpp(data, config.num_attention_heads, config.num_attention_heads if name.endswith("attn_q") else config.num_key_value_heads)
        if data.ndim == 1:
            writer.add_tensor(f"{name}.{suffix}", data.astype(np.float32))
        elif quantization == "f16":
            writer.add_tensor(f"{name}.{suffix}", data.astype(np.float16))
        else:
            quantized = gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(f"{name}.{suffix}", quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=True)
    finally:
        writer.close()
    partial.replace(target)
    return target


CHECK_TOPICS = ("rain", "patience", "a leaky bucket", "old boots", "the county fair",
                "borrowed money", "a stubborn mule", "fresh bread", "the first frost", "a long road")
CHECK_PROMPTS = [f"Tell me something about {topic}." for topic in CHECK_TOPICS] + [f"What would a grandmother say about {topic}?" for topic in CHECK_TOPICS]


def greedy_agreement(original, exported, prompts=CHECK_PROMPTS, max_new_tokens: int = 48) -> tuple[int, list[tuple[str, str, str]]]:
    """How many prompts two SayingGenerators answer with the same greedy saying, and the pairs."""
    mine = original.generate(prompts, temperature=0.0, max_new_tokens=max_new_tokens)
    theirs = exported.generate(prompts, temperature=0.0, max_new_tokens=max_new_tokens)
    pairs = [(prompt, a[0], b[0]) for prompt, a, b in zip(prompts, mine, theirs)]
    return sum(a == b for _, a, b in pairs), pairs


def load_gguf_generator(path):
    """A SayingGenerator over a GGUF file, as transformers loads it (`gguf_file=`), in float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.generation import SayingGenerator

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    return SayingGenerator(AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32), tokenizer)
