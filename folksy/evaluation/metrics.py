"""The evaluation metrics, as plain functions of strings and embeddings. Pure: no MLflow, no model.

Each docstring states the metric's definition; docs/metrics.md repeats them for readers of the UI.
Unless a docstring says otherwise, text is split into words by `words()`: lowercase, runs of letters
and digits with inner apostrophes kept ("don't" is one word, "thinkin'" is "thinkin").
Share metrics are fractions in [0, 1]; BLEU, self-BLEU and ROUGE are on sacrebleu's 0-100 scale.
"""

import math
import re
from bisect import bisect_left
from collections import Counter

from folksy.data import saying_key
from folksy.generation import perplexity  # noqa: F401  (exp(nll / tokens); the one definition, re-exported here)

NEAR_THRESHOLD = 0.9  # cosine similarity at which two sayings count as the same saying reworded
BLEU_TOKENIZER = "13a"  # sacrebleu's default, the mteval-v13a tokenizer; named so the score is reproducible
NOVELTY_ORDER = 4  # sayings are ~15 words; shared 3-grams are stock phrases, a shared 4-gram is a copied clause
MIN_FAMILY_SHARE = 0.01  # a family "appears" only above this, so a few misclassifications do not count as coverage

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lowercased word tokens; curly apostrophes count as straight ones."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def mean_words(texts: list[str]) -> float:
    """The mean number of `words()` per text; NaN for no texts."""
    return sum(len(words(text)) for text in texts) / len(texts) if texts else math.nan


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float:
    """distinct-n: the number of unique word n-grams divided by the total number of word n-grams,
    pooled over all texts (Li et al., 2016). 1.0 means no n-gram is ever repeated; NaN if no text
    has n words."""
    grams = [gram for text in texts for gram in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else math.nan


def corpus_bleu(hypotheses: list[str], references: list[list[str]]) -> tuple[float, str]:
    """Corpus BLEU-4 (sacrebleu `corpus_bleu`, tokenizer 13a, exp smoothing, mixed case).

    `references[i]` holds every reference for hypothesis i (a test prompt may have several sayings);
    returns the score (0-100) and sacrebleu's signature, which names the tokenizer and settings.
    """
    from sacrebleu.metrics import BLEU

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"corpus_bleu needs one reference list per hypothesis, got {len(hypotheses)} and {len(references)}")
    width = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    bleu = BLEU(tokenize=BLEU_TOKENIZER)
    return bleu.corpus_score(hypotheses, streams).score, str(bleu.get_signature())


def rouge(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 (rouge-score, Porter stemmer on), each the mean over hypotheses
    of the best F1 against that hypothesis's references, scaled to 0-100."""
    from rouge_score.rouge_scorer import RougeScorer

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"rouge needs one reference list per hypothesis, got {len(hypotheses)} and {len(references)}")
    kinds = ("rouge1", "rouge2", "rougeL")
    scorer = RougeScorer(list(kinds), use_stemmer=True)
    totals = dict.fromkeys(kinds, 0.0)
    for hypothesis, refs in zip(hypotheses, references):
        scores = scorer.score_multi(refs, hypothesis)
        for kind in kinds:
            totals[kind] += scores[kind].fmeasure
    return {kind: 100 * total / len(hypotheses) for kind, total in totals.items()}


def self_bleu(texts: list[str]) -> float:
    """Self-BLEU (Zhu et al., 2018): the mean over texts of sacrebleu `sentence_bleu(text, all other texts)`
    (BLEU-4, tokenizer 13a, exp smoothing, effective order), 0-100. Higher means the texts repeat each other.

    Computed exactly but in linear time: the clipped count of an n-gram against "all the others" is
    the largest count among the other texts, which is the overall largest count unless this text
    alone holds it, in which case it is the runner-up. NaN for fewer than two texts.
    """
    from sacrebleu.metrics import BLEU
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    if len(texts) < 2:
        return math.nan
    tokenize = Tokenizer13a()
    counts, lengths = [], []
    for text in texts:
        tokens = tokenize(text.rstrip()).split()
        counts.append(Counter(g for n in range(1, 5) for g in ngrams(tokens, n)))
        lengths.append(len(tokens))
    best: dict[tuple, list[int]] = {}  # n-gram -> [largest count, how many texts hold it, runner-up count]
    for count in counts:
        for gram, c in count.items():
            entry = best.setdefault(gram, [0, 0, 0])
            if c > entry[0]:
                entry[:] = [c, 1, entry[0]]
            elif c == entry[0]:
                entry[1] += 1
            elif c > entry[2]:
                entry[2] = c
    length_counts = Counter(lengths)
    sorted_lengths = sorted(length_counts)
    scores = []
    for count, length in zip(counts, lengths):
        correct, total = [0] * 4, [0] * 4
        for gram, c in count.items():
            top, holders, runner_up = best[gram]
            others_max = runner_up if (c == top and holders == 1) else top
            total[len(gram) - 1] += c
            correct[len(gram) - 1] += min(c, others_max)
        ref_length = _closest_other_length(length, length_counts, sorted_lengths)
        scores.append(
            BLEU.compute_bleu(correct, total, length, ref_length, smooth_method="exp", effective_order=True).score
        )
    return sum(scores) / len(scores)


def _closest_other_length(length: int, length_counts: Counter, sorted_lengths: list[int]) -> int:
    """sacrebleu's reference length for one text: the closest length among the other texts, shorter on ties."""
    if length_counts[length] > 1:
        return length
    position = bisect_left(sorted_lengths, length)
    below = sorted_lengths[position - 1] if position > 0 else None
    above_index = position + 1 if position < len(sorted_lengths) and sorted_lengths[position] == length else position
    above = sorted_lengths[above_index] if above_index < len(sorted_lengths) else None
    if below is None:
        return above
    if above is None or length - below <= above - length:
        return below
    return above


def nearest_similarities(queries, corpus, exclude_self: bool = False, chunk: int = 1024):
    """For each row of `queries`, the largest cosine similarity to any row of `corpus`.

    Both are L2-normalised embedding matrices, so cosine similarity is a dot product. With
    `exclude_self` the two are the same matrix and each row's similarity to itself is ignored.
    """
    import numpy as np

    queries, corpus = np.asarray(queries, dtype=np.float32), np.asarray(corpus, dtype=np.float32)
    if len(corpus) == 0 or (exclude_self and len(corpus) < 2):
        return np.full(len(queries), np.nan, dtype=np.float32)
    best = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        similarity = queries[start : start + chunk] @ corpus.T
        if exclude_self:
            rows = np.arange(similarity.shape[0])
            similarity[rows, rows + start] = -np.inf
        best[start : start + chunk] = similarity.max(axis=1)
    return best


def near_copy_share(generation_embeddings, training_embeddings, threshold: float = NEAR_THRESHOLD) -> float:
    """Near-copies: the share of generations whose nearest training saying (all-MiniLM-L6-v2 embeddings)
    has cosine similarity >= `threshold` (0.9)."""
    return _share_at_least(nearest_similarities(generation_embeddings, training_embeddings), threshold)


def near_duplicate_share(generation_embeddings, threshold: float = NEAR_THRESHOLD) -> float:
    """Near-duplicates among the generations themselves: the share of generations whose most similar
    *other* generation has cosine similarity >= `threshold` (0.9)."""
    return _share_at_least(nearest_similarities(generation_embeddings, generation_embeddings, exclude_self=True), threshold)


def _share_at_least(values, threshold: float) -> float:
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    return float((values >= threshold).mean()) if len(values) else math.nan


def exact_copy_share(generations: list[str], training_sayings: list[str]) -> float:
    """Exact copies: the share of generations equal to a training saying after normalisation
    (`folksy.data.saying_key`: lowercase, whitespace collapsed, everything but a-z, 0-9 and spaces
    dropped; the same key prepare uses to keep a saying out of two splits)."""
    if not generations:
        return math.nan
    known = {saying_key(text) for text in training_sayings}
    return sum(saying_key(text) in known for text in generations) / len(generations)


def ngram_novelty(generations: list[str], training_sayings: list[str], n: int = NOVELTY_ORDER) -> float:
    """n-gram novelty: of all word n-grams in the generations (counted with repeats), the share that
    occurs in no training saying. 1.0 means nothing was lifted; NaN if no generation has n words."""
    seen = {gram for text in training_sayings for gram in ngrams(words(text), n)}
    grams = [gram for text in generations for gram in ngrams(words(text), n)]
    return sum(gram not in seen for gram in grams) / len(grams) if grams else math.nan


_CLITIC = re.compile(r"'(?:s|ll|d|re|ve)$")


def adheres(generation: str, seed_words: list[str], plural) -> bool:
    """True if every seeded word appears in the generation as a whole word, as itself or as `plural(word)`,
    also with a possessive or contracted ending ("the parade's gonna" names "parade"). A multi-word seed
    ("ice cream") must appear as that word sequence; the plural applies to its last word."""
    tokens = [_CLITIC.sub("", token) for token in words(generation)]
    text = " " + " ".join(tokens) + " "
    for seed in seed_words:
        seed_tokens = words(seed)
        if not seed_tokens:
            continue
        forms = {" ".join(seed_tokens), " ".join(words(" ".join(seed_tokens[:-1] + [plural(seed_tokens[-1])])))}
        if not any(f" {form} " in text for form in forms):
            return False
    return True


def prompt_adherence(generations: list[str], seed_words: list[list[str]], plural) -> float:
    """Prompt adherence: the share of word-seeded generations that contain their seeded word (or its
    plural, from `plural`). Pass only the word-seeded generations; NaN if there are none."""
    if len(generations) != len(seed_words):
        raise ValueError(f"prompt_adherence needs one seed list per generation, got {len(generations)} and {len(seed_words)}")
    if not generations:
        return math.nan
    return sum(adheres(text, seeds, plural) for text, seeds in zip(generations, seed_words)) / len(generations)


def family_shares(predicted: list[str], families: list[str]) -> dict[str, float]:
    """Share of generations classified into each family (in `families` order); labels outside
    `families` (the classifier's "unclassified") count in the denominator only."""
    if not predicted:
        return {family: math.nan for family in families}
    counts = Counter(predicted)
    return {family: counts[family] / len(predicted) for family in families}


def families_present(shares: dict[str, float], min_share: float = MIN_FAMILY_SHARE) -> int:
    """How many families appear: the number whose share is at least `min_share` (1%)."""
    return sum(share >= min_share for share in shares.values() if not math.isnan(share))


def family_entropy(shares: dict[str, float]) -> float:
    """Normalised entropy of the family shares, -sum(p log p) / log(#families), with p renormalised over
    the classified generations: 1.0 is an even spread over every family, 0.0 a single family."""
    total = sum(share for share in shares.values() if not math.isnan(share))
    if total <= 0 or len(shares) < 2:
        return math.nan
    probabilities = [share / total for share in shares.values() if share > 0]
    return -sum(p * math.log(p) for p in probabilities) / math.log(len(shares))


def system_metrics(
    generations: list[str],
    embeddings,
    predicted_families: list[str],
    *,
    families: list[str],
    training_sayings: list[str],
    training_embeddings,
    references: list[list[str]],
    seed_words: list[list[str] | None],
    plural,
    shared: list[int],
) -> tuple[dict[str, float], "object"]:
    """Every generation metric for one system, computed the same way for model, base and engine.

    All lists are aligned with `generations`. `references[i]` is empty unless prompt i is a test prompt;
    `seed_words[i]` is None unless it is word-seeded. `shared` lists the positions of the prompts that
    all three systems answered: BLEU/ROUGE (on its test prompts) and the set-level diversity metrics
    (distinct-n, self-BLEU, near-duplicate share), whose values depend on how many texts there are,
    use only those, so the systems are compared on equal footing. Per-generation shares use every
    generation. Returns the metrics and each generation's nearest-training-saying similarity.
    """
    import numpy as np

    embeddings = np.asarray(embeddings)
    nearest = nearest_similarities(embeddings, training_embeddings)
    shared_texts = [generations[i] for i in shared]
    scored = [i for i in shared if references[i]]
    seeded = [i for i, seeds in enumerate(seed_words) if seeds]
    shares = family_shares(predicted_families, families)
    metrics = {
        "generations": len(generations),
        "mean_words": mean_words(generations),
        "empty_share": sum(not text.strip() for text in generations) / len(generations) if generations else math.nan,
        "distinct_1": distinct_n(shared_texts, 1),
        "distinct_2": distinct_n(shared_texts, 2),
        "self_bleu": self_bleu(shared_texts),
        "near_duplicate_share": near_duplicate_share(embeddings[shared]),
        "near_copy_share": _share_at_least(nearest, NEAR_THRESHOLD),
        "nn_similarity_mean": float(np.nanmean(nearest)) if len(nearest) else math.nan,
        "exact_copy_share": exact_copy_share(generations, training_sayings),
        f"ngram_novelty_{NOVELTY_ORDER}": ngram_novelty(generations, training_sayings),
        "prompt_adherence": prompt_adherence([generations[i] for i in seeded], [seed_words[i] for i in seeded], plural),
        "families_present": families_present(shares),
        "family_entropy": family_entropy(shares),
        "unclassified_share": 1 - sum(shares.values()) if generations else math.nan,
        **{f"family_share/{family}": share for family, share in shares.items()},
    }
    if scored:
        hypotheses, refs = [generations[i] for i in scored], [references[i] for i in scored]
        metrics["bleu"] = corpus_bleu(hypotheses, refs)[0]
        metrics.update(rouge(hypotheses, refs))
    return metrics, nearest
