"""SayingGenerator hands each prompt its own saying, whatever the batching, and a seed reproduces a sample."""

import pytest

from folksy.generation import SayingGenerator

# Thirty-six prompts in decreasing length: the generator sorts by length for batching, so any answer written
# back in sorted order (or to the wrong index) lands on another prompt.
PROMPTS = [f"Tell me about {'barns and ' * (36 - i)}rain {i}." for i in range(36)]


@pytest.fixture(scope="module")
def generator(tiny_qwen2_dir):
    return SayingGenerator.from_pretrained(tiny_qwen2_dir)


def test_every_prompt_gets_its_own_saying_whatever_the_batch_size(generator):
    greedy = {"temperature": 0.0, "max_new_tokens": 4}
    one_at_a_time = [generator.generate([prompt], **greedy)[0] for prompt in PROMPTS]
    assert len({s[0] for s in one_at_a_time}) > 1  # the tiny model answers different prompts differently
    assert generator.generate(PROMPTS, batch_size=1, **greedy) == one_at_a_time
    assert generator.generate(PROMPTS, batch_size=32, **greedy) == one_at_a_time


def test_a_seed_reproduces_a_sample(generator):
    sample = {"temperature": 1.0, "max_new_tokens": 6, "num_return_sequences": 2}
    first = generator.generate(PROMPTS[:5], seed=3, **sample)
    assert generator.generate(PROMPTS[:5], seed=3, **sample) == first
    assert generator.generate(PROMPTS[:5], seed=4, **sample) != first
    assert all(len(options) == 2 for options in first)
