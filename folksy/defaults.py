"""Defaults that more than one file needs, each in exactly one place (tests/test_packaging.py checks the
copies that MLproject, the README and the plots must repeat)."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent  # where MLproject, corpus/ and configs/ are
MODEL_NAME = "folksy-proverbs"  # the registered proverb model
STAGING_ALIAS, PRODUCTION_ALIAS = "staging", "production"
PRODUCTION_URI = f"models:/{MODEL_NAME}@{PRODUCTION_ALIAS}"
CORPUS = "corpus/training_pairs.jsonl"  # relative to PROJECT_ROOT, as MLproject passes it
READER_LABELS = "corpus/saying_labels.jsonl"  # corpus sayings read blind, for the recipe's min_reader_label
RECIPE = "configs/smollm2-135m-cpu.yaml"  # the embedded default recipe, which runs on a 2-core CPU
DPO_RECIPE = "configs/smollm2-135m-dpo.yaml"  # the preference recipe the `dpo` step runs over a train run's model


def project_path(value: str) -> Path:
    """A path option as given, or, when it is relative and missing here, the same path under PROJECT_ROOT
    (so `mlflow run` from elsewhere still finds the shipped corpus and recipes)."""
    path = Path(value)
    return path if path.is_absolute() or path.exists() else PROJECT_ROOT / path
