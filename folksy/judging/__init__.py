"""Judging: the rubric and answer parsing (rubric), the judges (backends), the sample (sampling), the A/B (ab),
the figures (summary), the trained critic (critic, its data in critic_data, its MLflow wrapper in
critic_registry), the per-item files (results) and the MLflow GenAI scorer (scorer)."""
