"""Training: the recipe files (recipe), the SFT trainer (trainer), the recipe as steps (sft) and resume (checkpoints)."""
