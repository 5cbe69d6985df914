"""The pieces `train` assembles around TRL's SFTTrainer. MLflow-free; imported only inside the command.

Why a subclass: on a CPU, TRL's own loss path is most of the step time for a small model. It scores
every position against the full 49K vocabulary in fp32 (its fused LM head falls back to plain torch
off-GPU), and computes entropy and token accuracy over that vocabulary on every step for logging.
`FolksySFTTrainer` keeps everything else of TRL (tokenization, completion mask, EOS handling,
collation, logging, checkpoints) and replaces only `compute_loss` by the same negative
log-likelihood, evaluated on the completion positions only and under the trainer's autocast.
tests/test_training.py checks that it gives TRL's loss values step for step.
"""

import math
import time

import torch
from transformers import TrainerCallback
from trl import SFTTrainer

def scored_logits(hidden: torch.Tensor, labels: torch.Tensor, lm_head: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fp32 next-token logits of the labelled positions only, their target tokens, and the (batch, seq - 1)
    mask of where they are. `hidden` is the decoder's last hidden state (batch, seq, dim); `labels` carries
    -100 wherever a token is not scored (prompt, padding). The LM head runs under the caller's autocast."""
    targets = labels[:, 1:]
    scored = targets != -100
    return lm_head(hidden[:, :-1][scored]).float(), targets[scored], scored


def completion_nll(hidden: torch.Tensor, labels: torch.Tensor, lm_head: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token NLL of the labelled positions, and how many there are: TRL's `nll` loss without
    the (batch * seq, vocab) logits (scored_logits), the log-softmax in fp32."""
    logits, targets, scored = scored_logits(hidden, labels, lm_head)
    nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    return nll, scored.sum()


def shared_trainer_args(recipe: dict, output_dir, bf16: bool) -> dict:
    """The TrainingArguments the SFT and DPO configs share, from the keys both recipes have."""
    return {
        "output_dir": str(output_dir),
        "max_length": recipe["max_length"],
        "learning_rate": recipe["learning_rate"],
        "lr_scheduler_type": recipe["lr_scheduler_type"],
        "warmup_steps": recipe["warmup_ratio"],  # transformers 5: a float below 1 is a ratio of the total steps
        "num_train_epochs": recipe["num_train_epochs"],
        "max_steps": recipe["max_steps"],
        "per_device_train_batch_size": recipe["per_device_train_batch_size"],
        "gradient_accumulation_steps": recipe["gradient_accumulation_steps"],
        "seed": recipe["seed"],
        "bf16": bf16,
        "use_cpu": not torch.cuda.is_available(),
        "logging_steps": recipe["logging_steps"],
        "report_to": "none",  # metrics go to MLflow through MetricsCallback, into the step's run
        "dataloader_num_workers": 0,  # collation is cheap; worker processes would fight the trainer for 2 cores
        "disable_tqdm": False,
    }


def causal_lm_of(model):
    """The transformers CausalLM inside whatever wraps it (accelerate, DDP, peft)."""
    model = getattr(model, "module", model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class FolksySFTTrainer(SFTTrainer):
    """SFTTrainer with a cheaper, identical loss, real-token throughput and token-level eval perplexity."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._step_timer = _StepTimer()
        self.add_callback(self._step_timer)
        self._tokens_since_log = 0  # real (non-pad) tokens trained on since the last log line
        self._tokens_total = 0
        self._eval_nll = 0.0
        self._eval_count = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        causal_lm = causal_lm_of(model)
        with self.accelerator.autocast():
            hidden = causal_lm.get_decoder()(
                input_ids=inputs["input_ids"],
                attention_mask=inputs.get("attention_mask"),
                position_ids=inputs.get("position_ids"),
                use_cache=False,
            ).last_hidden_state
            nll, count = completion_nll(hidden, inputs["labels"], causal_lm.get_output_embeddings())
        denominator = count if num_items_in_batch is None else num_items_in_batch
        loss = nll / torch.as_tensor(denominator).clamp(min=1)
        # as TRL: num_items_in_batch counts every rank's tokens, and DDP averages gradients over ranks
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        if model.training:
            real = inputs["attention_mask"].sum() if "attention_mask" in inputs else inputs["input_ids"].numel()
            self._tokens_since_log += int(real)
        else:
            self._eval_nll += float(nll)
            self._eval_count += int(count)
        if return_outputs:
            raise NotImplementedError("FolksySFTTrainer computes the loss only; it has no logits to return")
        return loss

    def evaluation_loop(self, *args, **kwargs):
        """Trainer's loop, with eval_loss and eval_perplexity over all completion tokens (not a mean of batch means)."""
        self._eval_nll, self._eval_count = 0.0, 0
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        if self._eval_count:
            mean_nll = self._eval_nll / self._eval_count
            output.metrics[f"{prefix}_loss"] = mean_nll
            output.metrics[f"{prefix}_perplexity"] = math.exp(min(mean_nll, 50.0))
            output.metrics[f"{prefix}_tokens"] = self._eval_count
        return output

    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs and self._step_timer.seconds > 0:  # a training log line
            tokens = self._tokens_since_log * self.accelerator.num_processes
            self._tokens_total += tokens
            logs["tokens_per_second"] = tokens / self._step_timer.seconds
            logs["num_tokens"] = self._tokens_total
            self._tokens_since_log, self._step_timer.seconds = 0, 0.0
        super().log(logs, start_time)


class _StepTimer(TrainerCallback):
    """Wall time spent inside optimizer steps (forward, backward, update): eval and saving excluded."""

    def __init__(self):
        self.seconds = 0.0
        self._started = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None


class MetricsCallback(TrainerCallback):
    """Hands every numeric log entry to `sink(metrics, step)`, e.g. mlflow.log_metrics."""

    def __init__(self, sink):
        self.sink = sink

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        metrics = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if metrics:
            self.sink(metrics, state.global_step)


class CrashPoints(TrainerCallback):
    """`train:after_checkpoint`: SIGKILL once a checkpoint is on disk, when $FOLKSY_FAULT says so (the resume tests)."""

    def on_save(self, args, state, control, **kwargs):
        from folksy.errors import fault_point

        fault_point("train:after_checkpoint")


def train_flops_per_token(config, scored_share: float = 1.0) -> float:
    """Matmul FLOPs to train on one token (forward + backward = 3 x forward), attention scores excluded.

    The LM head counts only for the share of positions whose loss is computed (`scored_share`), since
    FolksySFTTrainer projects only those; a trainer that scores every position passes 1.0.
    """
    hidden, layers = config.hidden_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    attention = hidden * head_dim * (2 * config.num_attention_heads + 2 * config.num_key_value_heads)
    mlp = 3 * hidden * config.intermediate_size
    lm_head = hidden * config.vocab_size
    return 6.0 * (layers * (attention + mlp) + scored_share * lm_head)


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of handing it back to the OS (Linux only).

    A training step allocates and frees the same large activation and logit buffers every time. By
    default glibc serves each big block with a fresh mmap and unmaps it on free, so every step pays
    again for page faults and zero-filling: a third or more of the step time on these 2-core VMs.
    With mmap off and no trimming, the blocks are recycled from the heap. Returns whether it applied.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
