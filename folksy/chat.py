"""Prompt formatting shared by training and inference.

Training and generation must see exactly the same conversation, so this is the only place that
builds it. The system prompt is short and fixed: the default system prompts of the SmolLM2 and
Qwen chat templates are long and about something else.
"""

from folksy.errors import FolksyError

SYSTEM_PROMPT = "You answer with one short, original folksy proverb."
MAX_PROMPT_CHARS = 400  # the corpus prompts are under 120 chars; longer input is almost surely a mistake


def check_prompt(prompt) -> str:
    """Return the stripped prompt, or raise FolksyError naming what is wrong with it."""
    if not isinstance(prompt, str):
        raise FolksyError(f"prompt must be a string, got {type(prompt).__name__}")
    text = prompt.strip()
    if not text:
        raise FolksyError("prompt is empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise FolksyError(f"prompt is {len(text)} characters; the limit is {MAX_PROMPT_CHARS}")
    return text


def build_messages(prompt: str) -> list[dict]:
    """The chat a model sees for one request: the fixed system prompt, then the user's prompt."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": check_prompt(prompt)},
    ]


def to_prompt_completion(pair: dict) -> dict:
    """One corpus pair as a conversational prompt/completion example (the form TRL's SFTTrainer takes).

    The corpus metadata rides along so that later steps can stratify by family and input type.
    """
    return {
        "prompt": build_messages(pair["input"]),
        "completion": [{"role": "assistant", "content": pair["output"]}],
        "meta_template": pair["meta_template"],
        "input_type": pair.get("input_type", "unknown"),
        "source_words": pair.get("source_words", []),
        "output": pair["output"],
    }


def _token_ids(encoded) -> list[int]:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True); older versions a list
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def tokenize_example(tokenizer, prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """Token ids for one prompt/completion pair and a 0/1 mask marking the completion tokens.

    This mirrors TRL's conversational prompt/completion tokenization: the prompt is the chat template
    with the generation prompt, and the completion is whatever the full conversation adds after it,
    i.e. the saying plus the end-of-turn token(s). Loss and perplexity count only the masked tokens.
    """
    messages = build_messages(prompt)
    prompt_ids = _token_ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))
    full_ids = _token_ids(
        tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": completion}], tokenize=True)
    )
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise FolksyError("the chat template does not extend the prompt when the answer is appended")
    return full_ids, [0] * len(prompt_ids) + [1] * (len(full_ids) - len(prompt_ids))


def user_prompt(row: dict) -> str:
    """The user's request in a split row (the prompt is [system, user] messages)."""
    return next(message["content"] for message in reversed(row["prompt"]) if message["role"] == "user")
