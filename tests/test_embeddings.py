"""The shipped sentence encoder, in float32 and under bf16 autocast (evaluate's fast path)."""

import numpy as np

from folksy.embeddings import embed

SAYINGS = [
    "A barn don't care who built it, long as the roof holds.",
    "The roof holds no matter who put up the barn.",
    "Money's like gravy: spread thin, it covers more biscuits.",
    "You can't hurry a mule that's already decided it's lunchtime.",
    "Rain don't ask permission, it just shows up like kin.",
]


def test_bf16_embeddings_are_float32_unit_vectors_close_to_float32s():
    exact, fast = embed(SAYINGS), embed(SAYINGS, bf16=True)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert not np.array_equal(fast, exact)  # bf16 really ran
    np.testing.assert_allclose(fast @ fast.T, exact @ exact.T, atol=0.01)  # every cosine within 0.01
    # the paraphrase stays the first saying's nearest neighbour
    assert int(np.argsort(fast @ fast[0])[-2]) == int(np.argsort(exact @ exact[0])[-2]) == 1
