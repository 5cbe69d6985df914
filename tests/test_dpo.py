"""Preference pairs for the dpo step (folksy.training.dpo), on hand-made readings and critic scores."""

import pytest
import torch

from folksy.chat import SYSTEM_PROMPT
from folksy.training.dpo import cap_chosen_shapes, critic_pairs, pairs_table, reading_marks, reading_pairs
from folksy.training.recipe import DPO_FIELDS, check_scheduler, load_recipe
from folksy.defaults import DPO_RECIPE, PROJECT_ROOT
from folksy.errors import FolksyError

READINGS = [
    {"prompt": "rain", "text": "good one", "readers": [4, 5]},
    {"prompt": "rain", "text": "okay one", "readers": [3, 3]},
    {"prompt": "rain", "text": "bad one", "readers": [1, 2]},
    {"prompt": "rain", "text": "bad one", "reader": 1},  # read again elsewhere: marks pool to 1, 2, 1
    {"prompt": "bread", "text": "fine", "readers": [3, 4]},
    {"prompt": "bread", "text": "close", "readers": [3, 3]},
]


def test_reading_marks_pool_every_mark_of_a_saying_under_its_prompt():
    marks = reading_marks(READINGS)
    assert marks["rain"]["bad one"] == [1, 2, 1] and marks["bread"] == {"fine": [3, 4], "close": [3, 3]}


def test_reading_pairs_prefer_the_better_mean_by_at_least_the_gap():
    pairs = reading_pairs(READINGS, min_gap=1.5, per_prompt=8, seed=0)
    found = sorted((p["prompt"][-1]["content"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs)
    # rain: good 4.5, okay 3.0, bad 1.33 -> good>okay (1.5), good>bad, okay>bad (1.67); bread differs by 0.5 only
    assert found == [("rain", "good one", "bad one"), ("rain", "good one", "okay one"), ("rain", "okay one", "bad one")]
    good_bad = next(p for p in pairs if p["chosen"][0]["content"] == "good one" and p["rejected"][0]["content"] == "bad one")
    assert (good_bad["chosen_score"], good_bad["rejected_score"], good_bad["source"]) == (4.5, 1.333, "readings")
    assert good_bad["prompt"][0] == {"role": "system", "content": SYSTEM_PROMPT}  # the conversation train and serving use
    assert len(reading_pairs(READINGS, min_gap=1.5, per_prompt=1, seed=0)) == 1
    assert reading_pairs(READINGS, min_gap=3.5, per_prompt=8, seed=0) == []


def test_critic_pairs_take_the_best_against_the_worst_sample_when_the_critic_separates_them():
    scores = {"a": 4.0, "b": 2.0, "c": 3.0, "d": 3.1, "e": 3.0}
    samples = [["a", "b", "c"], ["d", "e"], ["c", "c"]]
    pairs = critic_pairs(["p1", "p2", "p3"], samples, lambda texts: [scores[t] for t in texts], margin=0.5)
    assert [(p["prompt"][-1]["content"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs] == [("p1", "a", "b")]
    assert len(critic_pairs(["p1", "p2", "p3"], samples, lambda texts: [scores[t] for t in texts], margin=0.05)) == 2
    assert len(critic_pairs(["p1", "p2", "p3"], samples, lambda texts: [scores[t] for t in texts], margin=0)) == 2  # never a tie


def test_pairs_table_is_plain_text_columns():
    table = pairs_table(reading_pairs(READINGS, min_gap=3.0, per_prompt=8, seed=0))
    assert table == {"prompt": ["rain"], "chosen": ["good one"], "rejected": ["bad one"], "source": ["readings"],
                     "chosen_score": [4.5], "rejected_score": [1.333]}


def test_the_shipped_dpo_recipe_loads_and_bad_keys_are_refused_in_one_line():
    recipe = load_recipe(PROJECT_ROOT / DPO_RECIPE, "", DPO_FIELDS, check_scheduler)
    assert recipe["pair_sources"] == "readings,critic" and 0 < recipe["beta"] < 1
    with pytest.raises(FolksyError, match="pair_sources must be comma-separated sources from readings, critic"):
        load_recipe(PROJECT_ROOT / DPO_RECIPE, "pair_sources=readings,humans", DPO_FIELDS, check_scheduler)
    with pytest.raises(FolksyError, match="unknown key 'method'"):
        load_recipe(PROJECT_ROOT / DPO_RECIPE, "method=lora", DPO_FIELDS, check_scheduler)
    with pytest.raises(FolksyError, match="lr_scheduler_type: 'wavy'"):
        load_recipe(PROJECT_ROOT / DPO_RECIPE, "lr_scheduler_type=wavy", DPO_FIELDS, check_scheduler)


def dpo_trainers(tiny_qwen2_dir, tmp_path):
    """TRL's own DPOTrainer and FolksyDPOTrainer over the same tiny model, reference and four pairs."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from folksy.training.dpo import FolksyDPOTrainer, dpo_config

    recipe = load_recipe(PROJECT_ROOT / DPO_RECIPE, "per_device_train_batch_size=4,bf16=false", DPO_FIELDS, check_scheduler)
    pairs = reading_pairs(READINGS, min_gap=1.5, per_prompt=8, seed=0)
    pairs.append({**pairs[0], "chosen": [{"role": "assistant", "content": "A much longer answer, so the batch carries padding, friend."}]})
    dataset = Dataset.from_list([{key: pair[key] for key in ("prompt", "chosen", "rejected")} for pair in pairs])
    built = []
    for kind in (DPOTrainer, FolksyDPOTrainer):
        model, reference = (AutoModelForCausalLM.from_pretrained(tiny_qwen2_dir, dtype="float32") for _ in range(2))
        with torch.no_grad():  # a reference that differs from the policy, so the log-ratios are not all zero
            next(reference.parameters()).mul_(0.9)
        built.append(kind(model=model, ref_model=reference, args=dpo_config(recipe, tmp_path / kind.__name__, False),
                          train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(tiny_qwen2_dir)))
    return built


def test_folksy_dpo_gives_trls_loss_metrics_and_gradients(tiny_qwen2_dir, tmp_path):
    """FolksyDPOTrainer scores only completion positions; the loss, its gradient and the logged
    rewards equal TRL's own fused head on the same batch (a head that scored the prompt, or dropped
    the end-of-turn token, would not)."""
    trl_trainer, folksy_trainer = dpo_trainers(tiny_qwen2_dir, tmp_path)
    batch = next(iter(trl_trainer.get_train_dataloader()))
    assert (batch["attention_mask"] == 0).any()  # padding is in the batch
    results = []
    for trainer in (trl_trainer, folksy_trainer):
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        grad = trainer.model.get_output_embeddings().weight.grad.clone()
        metrics = {key: values[-1] for key, values in trainer._metrics["train"].items()}
        results.append((loss.item(), grad, metrics))
    (trl_loss, trl_grad, trl_metrics), (loss, grad, metrics) = results
    assert loss == pytest.approx(trl_loss, rel=1e-5) and loss != pytest.approx(0.6931, abs=1e-4)
    assert torch.allclose(grad, trl_grad, rtol=1e-3, atol=1e-6)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected", "entropy", "mean_token_accuracy", "logits/chosen"):
        assert metrics[key] == pytest.approx(trl_metrics[key], rel=1e-4, abs=1e-5), key


def test_a_shape_cap_keeps_at_most_that_many_pairs_per_chosen_shape():
    pairs = [{"chosen": [{"role": "assistant", "content": text}]} for text in ["the fella A", "the fella B", "the fella C", "a dog D", "a dog E", "odd"]]
    first_two_words = lambda text: " ".join(text.split()[:2])  # noqa: E731
    kept = cap_chosen_shapes(pairs, 1, first_two_words, seed=0)
    assert sorted(first_two_words(p["chosen"][0]["content"]) for p in kept) == ["a dog", "odd", "the fella"]
    assert len(cap_chosen_shapes(pairs, 2, first_two_words, seed=0)) == 5 and cap_chosen_shapes(pairs, 0, first_two_words, seed=0) == pairs
