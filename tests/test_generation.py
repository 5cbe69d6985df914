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


def transformers_nucleus(logits, temperature: float, top_p: float):
    """The distribution transformers samples from with do_sample=True: its own temperature and top-p warpers."""
    import torch
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    return torch.softmax(TopPLogitsWarper(top_p)(None, TemperatureLogitsWarper(temperature)(None, logits.clone())), dim=-1)


def total_variation(tokens, expected) -> float:
    import torch

    drawn = torch.bincount(tokens.flatten(), minlength=expected.numel()).float() / tokens.numel()
    return 0.5 * float((drawn - expected).abs().sum())


@pytest.mark.parametrize("temperature, top_p", [(0.8, 0.95), (1.0, 0.9), (0.5, 0.5)])
def test_nucleus_sampling_draws_from_transformers_top_p_distribution(temperature, top_p):
    """sample_nucleus ranks a few candidates first, then more, and the whole vocabulary only for a row whose
    nucleus is wider still: each way must give transformers' distribution, the boundary token left out."""
    import torch

    from folksy.generation import sample_nucleus

    torch.manual_seed(0)
    vocab = 100
    rows = {
        "boundary": torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05] + [1e-9] * (vocab - 4))),  # 0.05 is out at top-p 0.9
        "peaked": torch.randn(vocab) * 3,  # a nucleus of 2 to 24 tokens: the first or the second ranking
        "flat": torch.randn(vocab) * 0.1,  # a nucleus of 41 to 94 tokens: the whole vocabulary
    }
    for name, row in rows.items():
        tokens = sample_nucleus(row.repeat(40_000, 1), temperature, top_p, candidates=(4, 40))
        expected = transformers_nucleus(row[None], temperature, top_p)[0]
        assert float(expected[tokens].min()) > 0, f"{name}: drew a token outside the nucleus"
        assert total_variation(tokens, expected) < 0.025, name


def test_generation_samples_what_transformers_would(tiny_qwen2_dir):
    """Through SayingGenerator, on the model's own next-token logits: the first sampled token follows
    transformers' temperature + top-p distribution (at temperature 1 it would be 256 tokens wide, top 0.62)."""
    import torch

    from folksy.chat import build_messages

    generator = SayingGenerator.from_pretrained(tiny_qwen2_dir)
    with torch.no_grad():
        generator.model.model.norm.weight.mul_(25)  # sharpens the random model's logits into a trained model's range
    prompt, temperature, top_p = "Give me a proverb about patience.", 0.8, 0.95
    text = generator.tokenizer.apply_chat_template(build_messages(prompt), tokenize=False, add_generation_prompt=True)
    with torch.inference_mode():
        logits = generator.model(**generator.tokenizer([text], return_tensors="pt")).logits[:, -1].float()
    expected = transformers_nucleus(logits, temperature, top_p)[0]
    assert 5 <= int((expected > 0).sum()) <= 50
    outputs, decode = [], generator.decode  # the token ids decode returned, before decoding to text
    def recording_decode(*args, **kwargs):
        rows = decode(*args, **kwargs)
        outputs.extend(rows)
        return rows

    generator.decode = recording_decode
    for seed in range(4):
        generator.generate([prompt] * 100, temperature=temperature, top_p=top_p, max_new_tokens=1, num_return_sequences=10, seed=seed, batch_size=100)
    tokens = torch.tensor([row[0] for row in outputs])
    assert tokens.numel() == 4000
    assert float(expected[tokens].min()) > 0, "drew a token outside the nucleus"
    assert total_variation(tokens, expected) < 0.04


def test_decode_is_generates_greedy_loop_with_stopped_rows_dropped(tiny_qwen2_dir):
    """decode() drops a row from the batch and its KV cache when it stops, and reads each prompt once for all
    its copies; greedy, every row is still exactly the tokens model.generate gives it (up to its stop token).
    The stop tokens are picked from the model's own greedy output so that rows stop at different steps."""
    import torch

    generator = SayingGenerator.from_pretrained(tiny_qwen2_dir)
    topics = ("rain", "old red barns", "goats", "soup on a cold night in the hills", "wagons", "fences and the neighbors beyond them")
    encoded = generator.tokenizer([f"Give me a saying about {topic}." for topic in topics], return_tensors="pt", padding=True)
    assert len(set(encoded["attention_mask"].sum(1).tolist())) > 3  # left padding of several widths
    width, new_tokens = encoded["input_ids"].shape[1], 12

    def generate_greedy(stops):
        with torch.inference_mode():
            output = generator.model.generate(**encoded, max_new_tokens=new_tokens, do_sample=False, temperature=None, top_p=None,
                                              top_k=None, eos_token_id=stops, pad_token_id=generator.tokenizer.pad_token_id)
        rows = output[:, width:].tolist()
        return [row[: next((i + 1 for i, token in enumerate(row) if token in stops), len(row))] for row in rows]

    unstopped = generate_greedy([-1])
    generator.stop_token_ids = [unstopped[0][-1]]  # this random model ends each row repeating one of a few tokens
    expected = generate_greedy(generator.stop_token_ids)
    lengths = sorted(len(row) for row in expected)
    assert lengths[0] < lengths[-2] and lengths[-1] == new_tokens  # rows stop early, at different steps, and one never
    with torch.inference_mode():
        assert generator.decode(encoded["input_ids"], encoded["attention_mask"], new_tokens) == expected
        copies = generator.decode(encoded["input_ids"], encoded["attention_mask"], new_tokens, copies=3)
    assert copies == [row for row in expected for _ in range(3)]


def test_completion_nll_scores_each_row_as_if_alone(generator):
    """Left-padded rows with logits for the last positions only: batching, padding and row order change nothing,
    and each row is scored on its completion tokens alone (the row's full forward, cross-entropy by hand)."""
    import torch

    from folksy.chat import tokenize_example

    prompts = [PROMPTS[0], "Rain?", PROMPTS[20], "Tell me about a barn."]
    completions = ["A barn.", "Rain don't ask permission, it just shows up like kin and stays for supper.", "Hm.", "Ok then"]
    by_hand, count = 0.0, 0
    for prompt, completion in zip(prompts, completions):
        ids, mask = tokenize_example(generator.tokenizer, prompt, completion)
        with torch.inference_mode():
            logits = generator.model(input_ids=torch.tensor([ids])).logits[0].float()
        scored = [i for i in range(1, len(ids)) if mask[i]]
        by_hand += sum(-torch.log_softmax(logits[i - 1], -1)[ids[i]].item() for i in scored)
        count += len(scored)
    batched = generator.completion_nll(prompts, completions)
    assert batched[1] == count
    assert batched[0] == pytest.approx(by_hand, rel=1e-5)
    assert generator.completion_nll(prompts, completions, batch_size=1)[0] == pytest.approx(by_hand, rel=1e-5)
    assert generator.completion_nll(prompts[::-1], completions[::-1], batch_size=3)[0] == pytest.approx(by_hand, rel=1e-5)


def test_repeat_penalty_lowers_the_content_words_a_row_has_written(generator):
    """The penalty comes off the logit of a content word the row wrote, from the next step on; function words and
    the prompt's words are free. A scripted sampler writes " the", then " barn", and records the logits it saw."""
    import torch

    from folksy.generation import content_tokens

    the, barn = (generator.tokenizer.encode(word)[0] for word in (" the", " barn"))
    content = content_tokens(generator.tokenizer, generator.model.config.vocab_size)
    assert content[barn] and not content[the]

    def scripted(penalty):
        seen = []

        def sampler(logits):
            seen.append(logits[:, [the, barn]].float().clone())
            return torch.full((len(logits),), [the, barn, barn][min(len(seen) - 1, 2)])

        encoded = generator.tokenizer(["Tell me about a barn."] * 2, return_tensors="pt")  # " barn" in the prompt too
        with torch.inference_mode():
            generator.decode(encoded["input_ids"], encoded["attention_mask"], 4, sampler=sampler, repeat_penalty=penalty)
        return torch.stack(seen)  # (step, row, [the, barn])

    lowered = scripted(0.0) - scripted(2.5)
    assert lowered[:2].abs().max() < 1e-4  # nothing written yet, or only " the"; the prompt's " barn" is free
    assert lowered[2:, :, 1].flatten().tolist() == pytest.approx([2.5] * 4, abs=1e-3)  # " barn" after it was written
    assert lowered[2:, :, 0].abs().max() < 1e-4  # " the" never


