"""The template engine: the lexicon, the 110 patterns, and `python -m folksy.corpus.generate`, which writes
the training corpus into corpus/ at the project root (see corpus/README.md)."""
