"""Evaluation: the metric functions (metrics), the prompt set (prompts), the family classifier (families) and
the per-system work of the evaluate step (systems)."""
