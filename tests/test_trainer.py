"""FolksySFTTrainer: TRL's completion-only loss, the same numbers, computed where it counts."""

import math
import subprocess
import sys

import pytest
import torch

from folksy.chat import build_messages, tokenize_example
from folksy.plots import plot_loss_curve
from folksy.training.trainer import completion_nll, train_flops_per_token
from tests.conftest import PROJECT_ROOT

CPU_RECIPE = PROJECT_ROOT / "configs" / "smollm2-135m-cpu.yaml"
PAIRS = [
    ("Tell me something about rain.", "Rain don't ask permission, it just shows up like kin."),
    ("Write a folksy saying about chicken feed.", "A hen with no feed is just a rooster's bad idea."),
    ("Give me a proverb about patience.", "You can't hurry a mule that's already decided it's lunchtime."),
    ("What would grandma say about money?", "Money's like gravy: spread thin, it covers more biscuits."),
]


def rows(pairs=PAIRS):
    return [{"prompt": build_messages(p), "completion": [{"role": "assistant", "content": c}]} for p, c in pairs]


def load(path, attention="eager"):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=attention), AutoTokenizer.from_pretrained(path)


def trainer_for(path, output_dir, trainer_class=None, examples=None, **args):
    from datasets import Dataset
    from trl import SFTConfig

    from folksy.training.trainer import FolksySFTTrainer

    model, tokenizer = load(path)
    config = dict(
        output_dir=str(output_dir), max_length=128, per_device_train_batch_size=4, learning_rate=1e-3, max_steps=3,
        logging_steps=1, save_strategy="no", eval_strategy="no", report_to="none", use_cpu=True, seed=0, data_seed=0,
        bf16=False, activation_checkpointing=False, disable_tqdm=True,
    )
    dataset = Dataset.from_list(examples or rows() * 4)
    return (trainer_class or FolksySFTTrainer)(
        model=model, args=SFTConfig(**{**config, **args}), train_dataset=dataset, eval_dataset=dataset, processing_class=tokenizer
    )


def test_completion_nll_on_hand_computed_logits():
    lm_head = torch.nn.Linear(2, 3, bias=False)
    lm_head.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # positions 1 and 2 predict labels 2 and 0; positions 0 and 3 are not scored, so their values must not matter
    hidden = torch.tensor([[[100.0, -100.0], [1.0, 0.0], [0.0, 1.0], [-50.0, 7.0]]])
    labels = torch.tensor([[-100, -100, 2, 0]])
    nll, count = completion_nll(hidden, labels, lm_head)
    # logits [1, 0, 1] -> -log(e / (2e + 1)); logits [0, 1, 1] -> -log(1 / (1 + 2e))
    expected = (math.log(2 * math.e + 1) - 1) + math.log(1 + 2 * math.e)
    assert count.item() == 2
    assert nll.item() == pytest.approx(expected, rel=1e-6)


def test_labels_mask_the_prompt_and_keep_the_end_of_turn(tiny_qwen2_dir, tmp_path):
    """The loss-mask test: prompt tokens carry -100; the saying and its <|im_end|> are scored, padding is not."""
    trainer = trainer_for(tiny_qwen2_dir, tmp_path, examples=rows())
    tokenizer = trainer.processing_class
    prompt, saying = PAIRS[0]
    example = trainer.train_dataset[0]
    ids, mask = tokenize_example(tokenizer, prompt, saying)
    assert example["input_ids"] == ids
    prompt_length = mask.index(1)
    assert example["labels"][:prompt_length] == [-100] * prompt_length
    assert example["labels"][prompt_length:] == ids[prompt_length:]
    assert tokenizer.decode(example["labels"][prompt_length:]) == saying + "<|im_end|>\n"

    # SmolLM2's pad token *is* <|im_end|>: padding gets -100, the real end-of-turn keeps its label
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.pad_token_id == end_of_turn
    batch = trainer.data_collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    short = int(batch["attention_mask"][0].sum()) < int(batch["attention_mask"][1].sum())
    row, other = (0, 1) if short else (1, 0)
    length = int(batch["attention_mask"][row].sum())
    assert (batch["input_ids"][row, length:] == end_of_turn).all() and (batch["labels"][row, length:] == -100).all()
    assert batch["labels"][row, length - 2].item() == end_of_turn  # "...<|im_end|>" then "\n"
    assert (batch["labels"][other] == end_of_turn).sum() == 1


@pytest.mark.slow
def test_loss_equals_trls_step_for_step(tiny_qwen2_dir, tmp_path):
    """Same data, same seed, fp32: FolksySFTTrainer's losses, grad norms and weights are TRL's."""
    from trl import SFTTrainer

    histories, weights = [], []
    for name, trainer_class in (("trl", SFTTrainer), ("folksy", None)):
        trainer = trainer_for(tiny_qwen2_dir, tmp_path / name, trainer_class=trainer_class)
        trainer.train()
        histories.append([(h["loss"], h["grad_norm"]) for h in trainer.state.log_history if "loss" in h])
        weights.append(torch.cat([p.detach().flatten() for p in trainer.model.parameters()]))
    assert len(histories[0]) == len(histories[1]) == 3
    for (trl_loss, trl_norm), (loss, norm) in zip(*histories):
        assert loss == pytest.approx(trl_loss, rel=1e-4) and norm == pytest.approx(trl_norm, rel=1e-3)
    assert histories[1][-1][0] < histories[1][0][0]  # and it learns
    torch.testing.assert_close(weights[1], weights[0], rtol=1e-4, atol=1e-5)


def test_eval_loss_is_the_token_level_completion_nll(tiny_qwen2_dir, tmp_path):
    """eval_loss/perplexity agree with folksy.generation's independent scorer over the same rows."""
    from folksy.generation import SayingGenerator

    trainer = trainer_for(tiny_qwen2_dir, tmp_path, examples=rows(), per_device_eval_batch_size=3)
    metrics = trainer.evaluate()
    nll, tokens = SayingGenerator(trainer.model, trainer.processing_class).completion_nll(*zip(*PAIRS))
    assert metrics["eval_tokens"] == tokens
    assert metrics["eval_loss"] == pytest.approx(nll / tokens, rel=1e-5)
    assert metrics["eval_perplexity"] == pytest.approx(math.exp(nll / tokens), rel=1e-5)


def test_right_padding_does_not_leak_into_the_loss(tiny_qwen2_dir):
    """Dynamic padding: an example's loss is the same alone and padded inside a batch with a longer one."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model, tokenizer = load(tiny_qwen2_dir)
    examples = []
    for prompt, saying in PAIRS[:2]:
        ids, mask = tokenize_example(tokenizer, prompt, saying)
        examples.append({"input_ids": ids, "labels": [t if m else -100 for t, m in zip(ids, mask)]})
    collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)

    def nll(batch):
        with torch.no_grad():
            hidden = model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            return completion_nll(hidden, batch["labels"], model.get_output_embeddings())[0].item()

    together = nll(collate(examples))
    assert together == pytest.approx(nll(collate(examples[:1])) + nll(collate(examples[1:])), rel=1e-5)


def test_flops_per_token_for_smollm2_shapes():
    from types import SimpleNamespace

    config = SimpleNamespace(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3, head_dim=64, intermediate_size=1536, vocab_size=49152)
    per_layer = 576 * 64 * (2 * 9 + 2 * 3) + 3 * 576 * 1536  # q, o: 576x576; k, v: 576x192; gate, up, down
    assert per_layer == 3_538_944
    assert train_flops_per_token(config) == 6 * (30 * per_layer + 576 * 49152)
    assert train_flops_per_token(config, scored_share=0.5) == 6 * (30 * per_layer + 0.5 * 576 * 49152)


REUSE_A_BUFFER = """
import resource, sys, torch
from folksy.training.trainer import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def page_faults_for_a_64mib_buffer():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = torch.ones(16 * 2**20)
    del buffer
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print([page_faults_for_a_64mib_buffer() for _ in range(4)][-1])  # steady state, as in step after step
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    """Each step re-allocates the same big buffers: by default every one costs a page fault per 4 KiB."""
    faults = {}
    for mode in ("default", "keep"):
        result = subprocess.run([sys.executable, "-c", REUSE_A_BUFFER, mode], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        faults[mode] = int(result.stdout.split()[-1])
    assert faults["default"] >= 32  # fresh pages every time: 16384 of 4 KiB, or 32 if the kernel hands out 2 MiB pages
    assert faults["keep"] < 4


def test_loss_curve_is_a_png(tmp_path):
    path = tmp_path / "loss_curve.png"
    plot_loss_curve([(1, 3.0), (2, 2.5), (3, 2.0)], [(0, 3.1), (3, 2.2)], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_trained_model_ends_its_answer_on_its_own(tiny_qwen2_dir, tmp_path):
    """Before: a random tiny model runs to max_new_tokens. After a short run: it answers and stops by itself.

    This is what scoring the end-of-turn token buys; short sayings keep the run to seconds.
    """
    from datasets import Dataset

    from folksy.generation import SayingGenerator
    from folksy.training.recipe import load_recipe
    from folksy.training.sft import sft_config
    from folksy.training.trainer import FolksySFTTrainer

    pairs = [
        ("Tell me something about rain.", "Rain don't ask."),
        ("Write a folksy saying about chicken feed.", "Hens eat first."),
        ("Give me a proverb about patience.", "Mules decide."),
        ("What would grandma say about money?", "Gravy spreads thin."),
    ]
    max_new_tokens = 30
    model, tokenizer = load(tiny_qwen2_dir)
    stop_ids = SayingGenerator(model, tokenizer).stop_token_ids

    def answer(prompt):
        encoded = tokenizer.apply_chat_template(build_messages(prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
        new = output[0, encoded["input_ids"].shape[1] :].tolist()
        return tokenizer.decode(new, skip_special_tokens=True).strip(), new[-1] in stop_ids and len(new) < max_new_tokens

    assert not any(answer(prompt)[1] for prompt, _ in pairs)
    recipe = load_recipe(
        CPU_RECIPE,
        "max_steps=50,learning_rate=3e-3,lr_scheduler_type=constant,warmup_ratio=0,weight_decay=0,per_device_train_batch_size=4,"
        "eval_steps=50,save_steps=50,logging_steps=10,bf16=false,group_by_length=false",
    )
    trainer = FolksySFTTrainer(
        model=model, args=sft_config(recipe, tmp_path, bf16=False), train_dataset=Dataset.from_list(rows(pairs) * 4),
        eval_dataset=Dataset.from_list(rows(pairs)), processing_class=tokenizer,
    )
    trainer.train()
    answers = [answer(prompt) for prompt, _ in pairs]
    assert all(stopped and text for text, stopped in answers), answers
