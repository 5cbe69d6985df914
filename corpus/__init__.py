"""The folksy-saying template engine and the training corpus it writes (see corpus/README.md)."""
