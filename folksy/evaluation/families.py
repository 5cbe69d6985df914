"""The family classifier behind the coverage metrics. Pure: no MLflow, no model.

Logistic regression on all-MiniLM-L6-v2 embeddings of the corpus sayings; a saying whose most likely
family has probability below `MIN_FAMILY_CONFIDENCE` is "unclassified" rather than forced into a family.
"""

from folksy.errors import FolksyError

UNCLASSIFIED = "unclassified"
MIN_FAMILY_CONFIDENCE = 0.5  # off-style text (the base model's rambling) must not count as covering a family
CLASSIFIER_C = 10.0  # inverse L2 strength; embeddings are unit vectors, so the default 1.0 underfits


def fit_family_classifier(embeddings, families: list[str]):
    """Logistic regression from saying embeddings to their meta_template family."""
    from sklearn.linear_model import LogisticRegression

    if len(set(families)) < 2:
        raise FolksyError("the family classifier needs sayings of at least two families in the train split")
    return LogisticRegression(C=CLASSIFIER_C, max_iter=2000).fit(embeddings, families)


def predict_families(classifier, embeddings, min_confidence: float = MIN_FAMILY_CONFIDENCE) -> tuple[list[str], list[float]]:
    """The most likely family of each embedding and its probability; below `min_confidence`, UNCLASSIFIED."""
    if len(embeddings) == 0:
        return [], []
    probabilities = classifier.predict_proba(embeddings)
    best = probabilities.argmax(axis=1)
    labels, confidences = [], []
    for row, column in enumerate(best):
        confidence = float(probabilities[row, column])
        labels.append(str(classifier.classes_[column]) if confidence >= min_confidence else UNCLASSIFIED)
        confidences.append(confidence)
    return labels, confidences


def classifier_report(classifier, embeddings, families: list[str], min_confidence: float = MIN_FAMILY_CONFIDENCE) -> dict:
    """Held-out quality of the classifier, so the coverage figures can be trusted.

    accuracy: argmax family equals the true family; confident_accuracy: the same among sayings above
    `min_confidence`; unclassified_share: held-out corpus sayings that fall below it; confusion: counts
    true family -> predicted label (argmax).
    """
    from collections import Counter

    predicted = [str(label) for label in classifier.predict(embeddings)]
    labels, _ = predict_families(classifier, embeddings, min_confidence)
    confident = [(label, truth) for label, truth in zip(labels, families) if label != UNCLASSIFIED]
    confusion = Counter(zip(families, predicted))
    return {
        "accuracy": sum(p == t for p, t in zip(predicted, families)) / len(families),
        "confident_accuracy": sum(p == t for p, t in confident) / len(confident) if confident else float("nan"),
        "unclassified_share": 1 - len(confident) / len(families),
        "held_out_sayings": len(families),
        "confusion": {truth: {p: n for (t, p), n in sorted(confusion.items()) if t == truth} for truth in sorted(set(families))},
    }
