"""Batched, KV-cached generation and completion-only perplexity for a chat model directory.

`SayingGenerator` is what the pyfunc model wraps, and what evaluate and judge use for the base
model, so every consumer formats prompts exactly as training did (folksy.chat).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

from folksy.chat import build_messages, tokenize_example
from folksy.model_dir import stop_token_ids


@dataclass(frozen=True)
class Sampling:
    """How sayings are sampled unless a caller says otherwise (pyfunc params, `folksy generate`, evaluate)."""

    temperature: float = 0.8  # 0 is greedy; lower collapses the model onto one pattern
    top_p: float = 0.95
    max_new_tokens: int = 48  # corpus sayings are ~22 tokens with end-of-turn; room to finish, not to ramble
    num_return_sequences: int = 1
    seed: int | None = None


SAMPLING = Sampling()
NUCLEUS_CANDIDATES = (64, 1024)  # ranked before the whole vocabulary: a tuned model's nucleus is almost always within 64


def sample_nucleus(logits, temperature: float, top_p: float, candidates: tuple[int, ...] = NUCLEUS_CANDIDATES):
    """One token per row of `logits`, drawn from softmax(logits / temperature) cut to its top-p nucleus: the
    distribution of transformers' temperature and top-p warpers followed by multinomial sampling.

    Those sort the whole vocabulary (49,152 tokens for SmolLM2) and draw from all of it, every step, for every
    row; at 256 rows that is most of a CPU decode step (a sort 0.5 s, the draw 0.3 s). The nucleus lies inside
    the k most likely tokens whenever they hold `top_p` of the mass, so each row is ranked only as far as it
    needs: the top 64 (`topk`, 13 ms), else the top 1,024, else the whole vocabulary, and drawn from by
    inverse CDF; the distribution is exact whichever it took. A token is kept while the mass of the tokens
    above it is under `top_p`, as transformers keeps it (the top token always)."""
    import torch

    logits = logits.float() / temperature
    log_total = torch.logsumexp(logits, dim=-1, keepdim=True)
    rows, vocab = logits.shape
    tokens = torch.empty(rows, dtype=torch.long, device=logits.device)
    pending = torch.arange(rows, device=logits.device)
    for k in (*candidates, vocab):
        row_logits = logits if len(pending) == rows else logits[pending]
        if k < vocab:
            ranked_logits, ranked_ids = row_logits.topk(k, dim=-1)  # sorted, largest first
        else:
            ranked_logits, ranked_ids = row_logits.sort(dim=-1, descending=True)
        probs = (ranked_logits - log_total[pending]).exp()
        cumulative = probs.cumsum(-1)
        fits = cumulative[:, -1] >= top_p if k < vocab else torch.ones_like(pending, dtype=torch.bool)
        tokens[pending[fits]] = draw_from_nucleus(probs[fits], cumulative[fits], ranked_ids[fits], top_p)
        pending = pending[~fits]
        if not len(pending):
            break
    return tokens


def draw_from_nucleus(probs, cumulative, ranked_ids, top_p: float):
    """One draw per row by inverse CDF among tokens ranked most likely first (`probs` and their running sum),
    each kept while the mass above it is under top_p: the kept tokens are a prefix of the ranking."""
    import torch

    kept = ((cumulative - probs) < top_p).sum(-1, keepdim=True)
    target = torch.rand(kept.shape, device=probs.device) * cumulative.gather(1, kept - 1)
    index = torch.minimum(torch.searchsorted(cumulative, target, right=True), kept - 1)
    return ranked_ids.gather(1, index).squeeze(1)


class NucleusSampler:
    """`sample_nucleus` at one temperature and top-p: logits (rows x vocab) -> one token per row."""

    def __init__(self, temperature: float, top_p: float):
        self.temperature, self.top_p = temperature, top_p

    def __call__(self, logits):
        return sample_nucleus(logits, self.temperature, self.top_p)


def bf16_supported() -> bool:
    """Whether bf16 pays off here: a CUDA GPU with bf16, or a CPU with native bf16 (AVX512-BF16/AMX)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def inference_dtype(choice: str = "auto") -> str:
    """auto: bfloat16 where the CPU has native bf16 (AVX512-BF16/AMX) or a CUDA GPU has it, else float32.

    What every path that serves or measures sayings runs in (the pyfunc, judge, `folksy generate`,
    evaluate), so the model users are served is the model that was measured and read."""
    if choice != "auto":
        return choice
    return "bfloat16" if bf16_supported() else "float32"


def real_positions(attention_mask):
    """Each token's position: the count of real (unmasked) tokens before it, as `generate` gives a left-padded row."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


class SayingGenerator:
    def __init__(self, model, tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"  # decoder-only models generate after the last real token
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.stop_token_ids = stop_token_ids(tokenizer)  # EOS and the chat template's end-of-turn

    @classmethod
    def from_pretrained(cls, path: str, dtype=None) -> "SayingGenerator":
        """dtype None keeps the saved weights' dtype; what is served runs in inference_dtype()."""
        from folksy.base_models import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(path, dtype=dtype)
        return cls(model, tokenizer)

    def generate(
        self,
        prompts: list[str],
        *,
        temperature: float = SAMPLING.temperature,
        top_p: float = SAMPLING.top_p,
        max_new_tokens: int = SAMPLING.max_new_tokens,
        num_return_sequences: int = SAMPLING.num_return_sequences,
        seed: int | None = SAMPLING.seed,
        batch_size: int = 32,
        progress: bool = False,
        repeat_penalty: float = 0.0,
    ) -> list[list[str]]:
        """Sayings for each prompt: one list of `num_return_sequences` strings per prompt, in order.

        Prompts are sorted by length so each batch carries little padding; temperature 0 is greedy.
        `repeat_penalty`: see decode.
        """
        import torch
        from tqdm.auto import tqdm

        texts = [
            self.tokenizer.apply_chat_template(build_messages(p), tokenize=False, add_generation_prompt=True)
            for p in prompts
        ]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[list[str]] = [[] for _ in texts]
        sampler = NucleusSampler(temperature, top_p) if temperature > 0 else None
        batches = range(0, len(order), batch_size)
        for batch_number, start in enumerate(tqdm(batches, desc="generating", unit="batch", disable=not progress)):
            indices = order[start : start + batch_size]
            encoded = self.tokenizer([texts[i] for i in indices], return_tensors="pt", padding=True).to(self.model.device)
            if seed is not None:
                torch.manual_seed(seed + batch_number)
            with torch.inference_mode():
                rows = self.decode(encoded["input_ids"], encoded["attention_mask"], max_new_tokens, num_return_sequences, sampler, repeat_penalty)
            decoded = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
            for row, index in enumerate(indices):
                chunk = decoded[row * num_return_sequences : (row + 1) * num_return_sequences]
                results[index] = [text.strip() for text in chunk]
        return results

    def decode(self, input_ids, attention_mask, max_new_tokens: int, copies: int = 1, sampler=None, repeat_penalty: float = 0.0) -> list[list[int]]:
        """The new tokens of `copies` continuations of each left-padded prompt (each prompt's copies side by side),
        up to and including its stop token: greedy unless `sampler` (logits -> one token per row) is given.

        `model.generate`'s loop, two things apart. Each prompt is read once and its KV cache copied `copies`
        times, instead of reading every copy (best-of-8 reads each prompt once, not eight times). A row that
        has stopped leaves the batch and its cache, instead of riding along as padding until the longest row
        stops: sayings run 10 to 48 tokens, so a batch of 256 rows was mostly padding in its last steps.
        Positions are generate's (the count of real tokens before each one), so greedy rows are generate's.
        `repeat_penalty` > 0 subtracts that much from the logit of every content word (content_tokens) the row
        has already written, before sampling: "a crumb and a crumb" is a common failure. Prompt words are free."""
        import inspect

        import torch
        from transformers import DynamicCache

        model, device = self.model, input_ids.device
        stops = torch.tensor(sorted(self.stop_token_ids), device=device)
        positions = real_positions(attention_mask)
        cache = DynamicCache(config=model.config)
        # transformers renamed the argument during 5.x (`past_key_values` warns from 5.25 and goes in 5.40)
        cached = {"cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values": cache, "use_cache": True}
        logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, logits_to_keep=1, **cached).logits[:, -1]
        position = positions[:, -1]  # each row's last position; the next token's is one more
        if copies > 1:
            cache.batch_repeat_interleave(copies)
            logits, attention_mask, position = (t.repeat_interleave(copies, dim=0) for t in (logits, attention_mask, position))
        active = torch.arange(len(logits), device=device)  # which output row each batch row is
        generated = torch.zeros(len(logits), max_new_tokens, dtype=torch.long, device=device)
        lengths = torch.full((len(logits),), max_new_tokens, dtype=torch.long, device=device)
        content = content_tokens(self.tokenizer, logits.size(-1)).to(device) if repeat_penalty > 0 else None
        seen = torch.zeros(logits.shape, dtype=torch.bool, device=device) if content is not None else None
        for step in range(max_new_tokens):
            if seen is not None:
                logits = logits - repeat_penalty * seen.to(logits.dtype)
            tokens = sampler(logits) if sampler is not None else logits.argmax(-1)
            if seen is not None:
                seen[torch.arange(len(tokens), device=device), tokens] |= content[tokens]
            generated[active, step] = tokens
            stopped = torch.isin(tokens, stops)
            lengths[active[stopped]] = step + 1
            if stopped.all() or step + 1 == max_new_tokens:
                break
            if stopped.any():
                going = (~stopped).nonzero().squeeze(1)
                cache.batch_select_indices(going)
                active, tokens, attention_mask, position = active[going], tokens[going], attention_mask[going], position[going]
                seen = seen[going] if seen is not None else None
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(active), 1)], dim=1)
            position = position + 1
            logits = model(input_ids=tokens[:, None], attention_mask=attention_mask, position_ids=position[:, None], **cached).logits[:, -1]
        return [row[:length].tolist() for row, length in zip(generated, lengths.tolist())]

    def completion_nll(self, prompts: list[str], completions: list[str], batch_size: int = 32) -> tuple[float, int]:
        """Summed negative log-likelihood of the completion tokens (saying + end-of-turn) and their count.

        Perplexity is `exp(nll / count)`; prompt tokens are conditioned on but never scored. Rows are sorted
        by length and left-padded, so every completion ends its row and the model computes logits for the
        last positions only (`logits_to_keep`): the LM head and the fp32 log-softmax over the vocabulary
        skip the prompts, which are most of each row.
        """
        import torch

        examples = sorted((tokenize_example(self.tokenizer, p, c) for p, c in zip(prompts, completions)), key=lambda e: len(e[0]))
        total_nll, total_tokens = 0.0, 0
        pad_id = self.tokenizer.pad_token_id
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, (ids, mask) in enumerate(batch):  # left padding: row `row` starts at width - len(ids)
                input_ids[row, width - len(ids) :] = torch.tensor(ids)
                attention[row, width - len(ids) :] = 1
                labels[row, width - len(ids) :] = torch.tensor([t if m else -100 for t, m in zip(ids, mask)])
            first = int((labels != -100).int().argmax(-1).min())  # the earliest scored token in the batch
            keep = min(width, width - first + 1)  # logits from the position before it to the end
            positions = real_positions(attention)
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions, logits_to_keep=keep).logits.float()
            targets = labels[:, width - keep + 1 :]  # logits[:, j] (position width - keep + j) predicts token j + 1 after it
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum")
            total_nll += nll.item()
            total_tokens += int((targets != -100).sum())
        return total_nll, total_tokens


# words a saying may repeat without it being a fault; the rest of the alphabetic tokens are content words
FUNCTION_WORDS = frozenset("""a an the and or but nor so yet of to in on at by for with from as is are was were be been
it its it's that this than then there their they them he she his her him you your we our i me my not no ain't don't
can can't will won't just only still all any some what who how when if till until""".split())


@lru_cache(maxsize=8)
def _content_ids(tokenizer) -> tuple[int, ...]:
    ids = []
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        word = text.strip().lower()
        if text.startswith(" ") and len(word) >= 3 and word.replace("'", "").isalpha() and word not in FUNCTION_WORDS:
            ids.append(token_id)
    return tuple(ids)


def content_tokens(tokenizer, vocab_size: int):
    """A bool mask over the model's vocabulary: word-initial tokens (a leading space) of 3+ letters, not a function word."""
    import torch

    mask = torch.zeros(vocab_size, dtype=torch.bool)
    ids = [i for i in _content_ids(tokenizer) if i < vocab_size]
    mask[ids] = True
    return mask


def perplexity(nll: float, tokens: int) -> float:
    return math.exp(nll / tokens) if tokens else float("nan")


def load_generator(model_uri: str, dtype=None) -> SayingGenerator:
    """A SayingGenerator for an MLflow model URI (`runs:/…/model`, `models:/name@alias`) or a model directory.

    An MLflow URI must name a folksy pyfunc model; its Hugging Face directory (the artifact `hf_model`)
    is loaded directly, so models logged by any version of folksy's code load the same way. The download
    is removed once the weights are in memory.
    """
    import tempfile
    from pathlib import Path

    if Path(model_uri).is_dir() and (Path(model_uri) / "config.json").is_file():
        return SayingGenerator.from_pretrained(model_uri, dtype)
    with tempfile.TemporaryDirectory(prefix="folksy-model-") as scratch:
        return SayingGenerator.from_pretrained(str(download_hf_dir(model_uri, scratch)), dtype)


def download_hf_dir(model_uri: str, into, option: str = "model_uri"):
    """Download a folksy pyfunc model into the directory `into` and return its Hugging Face directory; refused
    in one line naming `option` when the URI cannot be loaded or is not a folksy model.

    `into` is the caller's to remove: left to MLflow, every download (a model's full weights) would stay in a
    temporary directory of its own for good."""
    from pathlib import Path

    import mlflow

    from folksy.errors import FolksyError

    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(into)))
    except Exception as error:
        raise FolksyError(f"{option} '{model_uri}': cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None
    hf_dir = hf_model_dir(local)
    if hf_dir is None:
        raise FolksyError(f"{option} '{model_uri}': not a folksy pyfunc model (its MLmodel names no hf_model artifact)")
    return hf_dir


def pyfunc_flavor(model_dir) -> dict | None:
    """The `python_function` flavor of a downloaded MLflow model's MLmodel file, or None."""
    from pathlib import Path

    import yaml

    try:
        flavor = yaml.safe_load((Path(model_dir) / "MLmodel").read_text())["flavors"]["python_function"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    return flavor if isinstance(flavor, dict) else None


def hf_model_dir(model_dir):
    """The Hugging Face directory inside a downloaded folksy pyfunc model (its `hf_model` artifact), or None."""
    from pathlib import Path

    try:
        path = Path(model_dir) / pyfunc_flavor(model_dir)["artifacts"]["hf_model"]["path"]
    except (KeyError, TypeError):
        return None
    return path if (path / "config.json").is_file() else None
