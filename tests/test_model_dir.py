"""A fine-tuned directory behaves the same under plain transformers as under the pyfunc (folksy.model_dir)."""

import json
import shutil
from pathlib import Path

import pytest

from folksy.chat import SYSTEM_PROMPT, build_messages
from folksy.model_dir import CARD_FILE, describe_model_dir, folksy_chat_template, stop_token_ids

PROMPTS = ["Tell me something about rain.", "What would a farmer say about patience?", "Give me a proverb about a leaky bucket."]


@pytest.fixture(scope="module")
def described_dir(tiny_qwen2_dir, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("described") / "hf_model"
    shutil.copytree(tiny_qwen2_dir, directory)
    describe_model_dir(directory, {"base_model": "Qwen/Qwen2.5-0.5B-Instruct", "method": "full", "steps": 4})
    return directory


def test_the_chat_template_supplies_folksys_system_prompt_when_none_is_given(tiny_qwen2_dir, described_dir):
    from transformers import AutoTokenizer

    base, described = AutoTokenizer.from_pretrained(tiny_qwen2_dir), AutoTokenizer.from_pretrained(described_dir)
    for prompt in PROMPTS:
        user_only = [{"role": "user", "content": prompt}]
        as_the_pyfunc_sends_it = described.apply_chat_template(build_messages(prompt), tokenize=False, add_generation_prompt=True)
        assert described.apply_chat_template(user_only, tokenize=False, add_generation_prompt=True) == as_the_pyfunc_sends_it
        assert base.apply_chat_template(build_messages(prompt), tokenize=False, add_generation_prompt=True) == as_the_pyfunc_sends_it
        assert SYSTEM_PROMPT not in base.apply_chat_template(user_only, tokenize=False, add_generation_prompt=True)  # the base's own default
    own_system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPTS[0]}]
    text = described.apply_chat_template(own_system, tokenize=False, add_generation_prompt=True)
    assert "Be brief." in text and SYSTEM_PROMPT not in text  # a caller's own system message still wins
    assert folksy_chat_template(described.chat_template) == described.chat_template  # describing twice changes nothing


def test_plain_generate_samples_with_folksys_settings_and_stops_where_the_saying_generator_does(described_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.generation import SAMPLING, SayingGenerator

    tokenizer, model = AutoTokenizer.from_pretrained(described_dir), AutoModelForCausalLM.from_pretrained(described_dir)
    config = model.generation_config
    assert (config.do_sample, config.temperature, config.top_p, config.max_new_tokens) == (True, SAMPLING.temperature, SAMPLING.top_p, SAMPLING.max_new_tokens)
    generator = SayingGenerator.from_pretrained(str(described_dir))
    assert config.eos_token_id == generator.stop_token_ids
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in config.eos_token_id  # the template's end of turn

    for prompt in PROMPTS:  # greedy: SayingGenerator draws its samples its own (equivalent) way, not transformers'
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
        output = model.generate(**inputs, do_sample=False)
        plain = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        [[folksy]] = generator.generate([prompt], temperature=0.0)
        assert plain == folksy and plain  # same prompt, same stop, same budget: the same saying


def test_stop_tokens_come_from_the_chat_template(tiny_qwen2_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2_dir)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end_of_turn in stop_token_ids(tokenizer) and tokenizer.eos_token_id in stop_token_ids(tokenizer)
    tokenizer.chat_template = tokenizer.chat_template.replace("<|im_end|>", "<|endoftext|>")
    assert end_of_turn not in stop_token_ids(tokenizer) or end_of_turn == tokenizer.eos_token_id
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") in stop_token_ids(tokenizer)


def test_the_model_card_names_a_hub_base_model_but_not_a_local_path(described_dir, tiny_qwen2_dir, tmp_path):
    card = (described_dir / CARD_FILE).read_text()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    assert "library_name: transformers" in front and "base_model: Qwen/Qwen2.5-0.5B-Instruct" in front
    assert "| steps | 4 |" in body and "apply_chat_template" in body and SYSTEM_PROMPT in body
    local = tmp_path / "local"
    shutil.copytree(tiny_qwen2_dir, local)
    describe_model_dir(local, {"base_model": tiny_qwen2_dir})
    assert "base_model:" not in (local / CARD_FILE).read_text().split("---\n")[1]
    assert json.loads((local / "generation_config.json").read_text())["top_p"] == 0.95
