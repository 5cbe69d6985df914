"""What a fine-tuned Hugging Face directory says about itself, so that it behaves the same outside
the pyfunc as inside it: folksy's system prompt as the chat template's default, folksy's sampling
defaults and stop tokens in `generation_config.json`, and a model card (`README.md`).

Loaded with plain transformers (a pipeline, `transformers serve`, vLLM), such a directory gives
`apply_chat_template([{"role": "user", ...}])` the same text as `folksy.chat.build_messages`, and
`model.generate(**inputs)` samples the way `SayingGenerator` does.
"""

import json
from pathlib import Path

from folksy.chat import SYSTEM_PROMPT, build_messages

# Prepended to the base model's own template: a conversation that brings no system message gets
# folksy's, instead of the base model's default (SmolLM2's and Qwen2.5's are about something else).
SYSTEM_DEFAULT = (
    "{% if not messages or messages[0]['role'] != 'system' %}"
    "{% set messages = [{'role': 'system', 'content': " + json.dumps(SYSTEM_PROMPT) + "}] + messages %}"
    "{% endif %}"
)
CARD_FILE = "README.md"


def folksy_chat_template(template: str) -> str:
    """The base template with folksy's system prompt as its default; unchanged if it has it already."""
    return template if template.startswith(SYSTEM_DEFAULT) else SYSTEM_DEFAULT + template


def stop_token_ids(tokenizer) -> list[int]:
    """The tokenizer's EOS and whatever special tokens its chat template closes an assistant turn with
    (SmolLM2 and Qwen2.5: `<|im_end|>`), read from the template rather than from a list of names."""
    from folksy.chat import _token_ids

    stop = {tokenizer.eos_token_id}
    messages = build_messages("Tell me something about rain.")
    try:
        prompt = _token_ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))
        full = _token_ids(tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "Rain falls."}], tokenize=True))
    except (ValueError, TypeError):  # no chat template: EOS is all there is
        full = prompt = []
    special = set(tokenizer.all_special_ids)
    stop.update(token for token in full[len(prompt):] if token in special)
    return sorted(token for token in stop if token is not None)


def write_generation_config(directory, tokenizer) -> None:
    """`generation_config.json` with folksy's sampling defaults (folksy.generation.SAMPLING) and stop tokens."""
    from transformers import GenerationConfig

    from folksy.generation import SAMPLING

    try:
        config = GenerationConfig.from_pretrained(directory)
    except OSError:  # the base model shipped none
        config = GenerationConfig()
    config.update(
        do_sample=SAMPLING.temperature > 0, temperature=SAMPLING.temperature, top_p=SAMPLING.top_p,
        top_k=0,  # off, as SayingGenerator samples: nucleus sampling alone
        max_new_tokens=SAMPLING.max_new_tokens, eos_token_id=stop_token_ids(tokenizer),
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    config.save_pretrained(directory)


def model_card(facts: dict) -> str:
    """The directory's README.md: what the model is, how to load it with and without MLflow, how it was trained."""
    from folksy.defaults import CORPUS, MODEL_NAME
    from folksy.generation import SAMPLING

    base = str(facts.get("base_model", ""))
    hub_base = base if base.count("/") == 1 and not Path(base).exists() else None  # a hub id, not a local path
    front = ["---", "library_name: transformers", "pipeline_tag: text-generation", "tags: [folksy, proverbs, sft, mlflow]"]
    front += [f"base_model: {hub_base}"] if hub_base else []
    rows = "\n".join(f"| {key} | {value} |" for key, value in facts.items() if value not in (None, ""))
    return "\n".join(front + ["---", f"""
# {MODEL_NAME}: one short, original folksy proverb on demand

A chat model fine-tuned by folksy (an MLflow project) to answer a request such as
"Tell me something about rain." with one made-up piece of folk wisdom. It was trained on the template
engine's corpus (`{CORPUS}`); how good its sayings are is measured by readers and
a judge in folksy's `docs/benchmarks.md`, and on the model's page in MLflow (evaluate and judge metrics).

## Use

With MLflow (the way folksy serves it):

```python
import mlflow
model = mlflow.pyfunc.load_model("models:/{MODEL_NAME}@production")
model.predict(["Tell me something about rain."])
```

With transformers alone, from this directory: the chat template supplies folksy's system prompt
("{SYSTEM_PROMPT}") when the conversation has none, and `generation_config.json` holds folksy's sampling
(temperature {SAMPLING.temperature}, top-p {SAMPLING.top_p}, at most {SAMPLING.max_new_tokens} new tokens,
stop at the end of the turn):

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path)
inputs = tokenizer.apply_chat_template([{{"role": "user", "content": "Tell me something about rain."}}],
                                       add_generation_prompt=True, return_tensors="pt", return_dict=True)
print(tokenizer.decode(model.generate(**inputs)[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```

## Training

| | |
|---|---|
{rows}

## Limits

The sayings are English, short, and often do not hang together: read a sample before you rely on
them. The model knows nothing beyond the corpus's words and says nothing true on purpose.
"""])


def describe_model_dir(directory, facts: dict) -> None:
    """Make a saved model directory self-describing: chat template, generation config, model card."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.chat_template:
        tokenizer.chat_template = folksy_chat_template(tokenizer.chat_template)
        tokenizer.save_pretrained(directory)
    write_generation_config(directory, tokenizer)
    (Path(directory) / CARD_FILE).write_text(model_card(facts))
