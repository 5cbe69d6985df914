"""folksy: fine-tune a small instruct model to write folksy proverbs, with every step tracked in MLflow.

The library behind the MLproject entry points in steps/. Small pure modules sit at the top level; a
concern that needs several files is a subpackage: `folksy.corpus` (the template engine that writes the
corpus), `folksy.training`, `folksy.evaluation` and `folksy.judging`. docs/architecture.md maps them.
"""
