"""Preference pairs and TRL's DPOTrainer, for the `dpo` step. MLflow-free; imported only inside the command.

Why a subclass (`FolksyDPOTrainer`): off a Triton GPU, TRL's fused LM head projects every position,
prompt and padding included, through the 49K vocabulary in fp32 tiles. On the 2-core CPU a step of 16
pairs took 19 s. The subclass keeps all of TRL's DPO (tokenization, collation, the loss and its
metrics) and replaces only that head: the completion positions alone, the projection under the
trainer's autocast and the log-softmax in fp32, as `FolksySFTTrainer` does for SFT
(folksy.training.trainer.scored_logits serves both). tests/test_dpo.py checks that its loss, gradients
and logged metrics equal TRL's own head on the same batch.

Two sources of (prompt, chosen, rejected) pairs:
- **readings**: the blind readings in benchmarks/reading/ (readers' marks on served sayings and the
  template engine's answers, several per prompt). Two sayings of one prompt whose pooled marks differ by
  at least `min_gap` make a pair, the better one chosen. These are people's preferences.
- **critic**: the SFT model's own samples on corpus prompts it trained on, `samples_per_prompt` each,
  ranked by the picker critic; the best against the worst where their raw scores differ by
  `critic_margin`. On-policy, and as many as the budget allows, but only as good as the critic.
"""

import itertools
import random
import types
from collections.abc import Callable, Sequence

import torch
from trl import DPOTrainer
from trl.trainer.utils import FusedCausalLMOutput

from folksy.chat import build_messages
from folksy.judging.critic_data import reading_marks_of
from folksy.training.trainer import causal_lm_of, scored_logits, shared_trainer_args


def reading_marks(rows: Sequence[dict]) -> dict[str, dict[str, list[int]]]:
    """prompt -> saying -> every reader mark it got, pooled over reading files (rows as in readings-*.jsonl)."""
    marks: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        marks.setdefault(row["prompt"], {}).setdefault(row["text"], []).extend(reading_marks_of(row))
    return marks


def reading_pairs(rows: Sequence[dict], min_gap: float, per_prompt: int, seed: int) -> list[dict]:
    """Pairs from the readings: per prompt, every two sayings whose mean marks differ by `min_gap` or more,
    at most `per_prompt` of them (a seeded choice, so no prompt with many readings dominates)."""
    rng = random.Random(seed)
    pairs = []
    for prompt, sayings in sorted(reading_marks(rows).items()):
        mean = {text: sum(m) / len(m) for text, m in sayings.items() if m}
        found = [(a, b) if mean[a] > mean[b] else (b, a) for a, b in itertools.combinations(sorted(mean), 2) if abs(mean[a] - mean[b]) >= min_gap]
        for chosen, rejected in rng.sample(found, min(per_prompt, len(found))):
            pairs.append(preference_pair(prompt, chosen, rejected, "readings", mean[chosen], mean[rejected]))
    return pairs


def critic_pairs(prompts: Sequence[str], samples: Sequence[Sequence[str]], score: Callable[[list[str]], Sequence[float]], margin: float) -> list[dict]:
    """Per prompt, the sample the critic rates highest against the one it rates lowest, if they differ by `margin`."""
    flat = [saying for options in samples for saying in options]
    scores = list(score(flat)) if flat else []
    pairs, start = [], 0
    for prompt, options in zip(prompts, samples):
        rated = dict(zip(options, scores[start:start + len(options)]))  # duplicates share one score
        start += len(options)
        best, worst = max(rated, key=rated.get), min(rated, key=rated.get)
        if rated[best] - rated[worst] >= margin and rated[best] > rated[worst]:  # a tie teaches nothing
            pairs.append(preference_pair(prompt, best, worst, "critic", rated[best], rated[worst]))
    return pairs


def cap_chosen_shapes(pairs: Sequence[dict], cap: int, shape: Callable[[str], str], seed: int) -> list[dict]:
    """At most `cap` pairs whose chosen saying has one shape (e.g. folksy.best_of.saying_shape), a seeded
    choice among them (0: no cap). Readers rate a well-filled formula 4 wherever it appears, so without a
    cap a third of the chosen sayings are three formulas and DPO teaches the model to answer with them."""
    if not cap:
        return list(pairs)
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    kept, seen = set(), {}
    for index in order:
        kind = shape(pairs[index]["chosen"][-1]["content"])
        if seen.get(kind, 0) < cap:
            seen[kind] = seen.get(kind, 0) + 1
            kept.add(index)
    return [pair for index, pair in enumerate(pairs) if index in kept]


def preference_pair(prompt: str, chosen: str, rejected: str, source: str, chosen_score: float, rejected_score: float) -> dict:
    """One pair, with the conversation as DPOTrainer takes it (the same system prompt as training and serving)."""
    return {
        "prompt": build_messages(prompt),
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "source": source, "chosen_score": round(float(chosen_score), 3), "rejected_score": round(float(rejected_score), 3),
    }


def pairs_table(pairs: Sequence[dict]) -> dict[str, list]:
    """The pairs as columns of plain text, for mlflow.log_table (pairs.json)."""
    def text(messages):
        return messages[-1]["content"]

    return {
        "prompt": [text(pair["prompt"]) for pair in pairs],
        "chosen": [text(pair["chosen"]) for pair in pairs],
        "rejected": [text(pair["rejected"]) for pair in pairs],
        **{key: [pair[key] for pair in pairs] for key in ("source", "chosen_score", "rejected_score")},
    }


def dpo_config(recipe: dict, output_dir, bf16: bool):
    """TRL's DPOConfig for the recipe; built before any sampling, so a bad setting fails in seconds."""
    from trl import DPOConfig

    return DPOConfig(
        **shared_trainer_args(recipe, output_dir, bf16),
        precompute_ref_log_probs=False,  # FolksyDPOTrainer's head reaches the reference only after __init__, so it runs
                                         # beside the policy each step: for one epoch the same work as precomputing
        beta=recipe["beta"],
        activation_checkpointing=False,  # TRL turns it on; recomputing costs a third of the step, memory is plentiful
        optim="adamw_torch_fused",
        save_strategy="no",  # minutes of work: a rerun is cheaper than checkpoints
    )


def completion_forward(original_forward):
    """A model forward that, called with `fused_lm_head=True` as DPOTrainer calls it, returns TRL's
    FusedCausalLMOutput from the completion positions only (labels != -100); otherwise the original forward."""

    def forward(self, *args, fused_lm_head=False, labels=None, **kwargs):
        if not fused_lm_head:
            return original_forward(self, *args, labels=labels, **kwargs)
        kwargs.pop("num_items_in_batch", None)
        kwargs["use_cache"] = False
        causal_lm = causal_lm_of(self)
        hidden = causal_lm.get_decoder()(*args, **kwargs).last_hidden_state
        logits, targets, mask = scored_logits(hidden, labels, causal_lm.get_output_embeddings())
        log_softmax = logits.log_softmax(dim=-1)
        chosen = log_softmax.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():  # TRL's metrics only
            entropy = -(log_softmax.exp() * log_softmax).sum(-1)
            mean_logits = logits.mean(-1)
            is_top1 = logits.argmax(-1) == targets

        def spread(values):
            return values.new_zeros(mask.shape).masked_scatter(mask, values)

        log_probs = spread(chosen)
        return FusedCausalLMOutput(loss=-chosen.sum() / mask.sum().clamp(min=1), log_probs=log_probs, entropy=spread(entropy),
                                   mean_logits=spread(mean_logits), is_top1=spread(is_top1), label_mask=mask)

    return forward


class FolksyDPOTrainer(DPOTrainer):
    """DPOTrainer whose policy and reference score completion positions only (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.use_weighting:
            raise ValueError("use_weighting needs log_sum_sq_probs, which FolksyDPOTrainer's head does not compute")
        for model in (self.model, self.ref_model):
            if model is not None:
                model.forward = types.MethodType(completion_forward(type(model).forward), model)
