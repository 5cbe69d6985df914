import pytest

from folksy.chat import MAX_PROMPT_CHARS, SYSTEM_PROMPT, build_messages, check_prompt, to_prompt_completion, tokenize_example
from folksy.errors import FolksyError


def test_messages_use_the_short_fixed_system_prompt():
    messages = build_messages("  Tell me something about rain. ")
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Tell me something about rain."},
    ]
    assert len(SYSTEM_PROMPT) < 80


@pytest.mark.parametrize("prompt, message", [("", "empty"), ("   ", "empty"), ("x" * (MAX_PROMPT_CHARS + 1), "limit"), (None, "string")])
def test_bad_prompts_are_refused(prompt, message):
    with pytest.raises(FolksyError, match=message):
        check_prompt(prompt)


def test_prompt_completion_row_keeps_metadata():
    row = to_prompt_completion(
        {"input": "Tell me a proverb.", "output": "Mud is just dirt that got ambitious.", "meta_template": "deconstruction", "source_words": ["mud"], "input_type": "open_ended"}
    )
    assert row["completion"] == [{"role": "assistant", "content": "Mud is just dirt that got ambitious."}]
    assert row["prompt"][0]["content"] == SYSTEM_PROMPT
    assert (row["meta_template"], row["input_type"], row["source_words"]) == ("deconstruction", "open_ended", ["mud"])


def test_completion_mask_covers_saying_and_end_of_turn_only(embedded_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    ids, mask = tokenize_example(tokenizer, "Tell me something about rain.", "Rain don't ask permission.")
    completion = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    prompt = tokenizer.decode([t for t, m in zip(ids, mask) if not m])
    assert completion == "Rain don't ask permission.<|im_end|>\n"
    assert prompt.endswith("<|im_start|>assistant\n")
    assert SYSTEM_PROMPT in prompt and "Tell me something about rain." in prompt
    assert mask == sorted(mask)  # prompt first, then completion: one contiguous block
