"""Per-feature weighted sums over samples and blocks: the inputs of the blocked fits.

Both the blocked (GLS) fit and ``duplicate_correlation`` only need, for every feature, the
weighted cross-products of the design, the data and the block indicators over that feature's
observed samples. Each is one matrix product over all features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["BlockSums", "block_sums"]


@dataclass(frozen=True)
class BlockSums:
    """For every feature g (w = weight, 0 where missing; sw = sqrt(w); b = block):

    xwx (G, p, p) = X'WX; xwy (G, p) = X'Wy; ywy (G,) = y'Wy; xzs (G, b, p) = sum over the
    samples of each block of sw x; yzs (G, b) = the same of sw y; n_in_block (G, b) = observed
    samples per block; n_observed (G,).
    """

    xwx: NDArray[np.floating]
    xwy: NDArray[np.floating]
    ywy: NDArray[np.floating]
    xzs: NDArray[np.floating]
    yzs: NDArray[np.floating]
    n_in_block: NDArray[np.floating]
    n_observed: NDArray[np.int_]
    centre: NDArray[np.floating]


def block_sums(y: NDArray[np.floating], weights: NDArray[np.floating],
               design: NDArray[np.floating], blocks: NDArray[np.floating], *,
               centre_rows: bool) -> BlockSums:
    """All the sums at once; ``blocks`` is the samples x blocks indicator matrix.

    With ``centre_rows`` (the constant is in the design's column space) each row is first
    centred on its weighted mean, which changes no residual and keeps the sums accurate.
    """
    n_features, n_samples = y.shape
    n_coef = design.shape[1]
    n_blocks = blocks.shape[1]
    observed = weights > 0
    y0 = np.where(observed, y, 0.0)
    if centre_rows:
        total = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(total > 0, (weights * y0).sum(axis=1) / total, 0.0)
        y0 = np.where(observed, y0 - centre[:, None], 0.0)
    else:
        centre = np.zeros(n_features)
    sqrt_w = np.sqrt(weights)
    pairs = (design[:, :, None] * design[:, None, :]).reshape(n_samples, n_coef * n_coef)
    by_block = (blocks[:, :, None] * design[:, None, :]).reshape(n_samples, n_blocks * n_coef)
    weighted_y = weights * y0
    return BlockSums(
        xwx=(weights @ pairs).reshape(n_features, n_coef, n_coef),
        xwy=weighted_y @ design,
        ywy=np.einsum("gn,gn->g", weighted_y, y0),
        xzs=(sqrt_w @ by_block).reshape(n_features, n_blocks, n_coef),
        yzs=(sqrt_w * y0) @ blocks,
        n_in_block=observed.astype(np.float64) @ blocks,
        n_observed=observed.sum(axis=1),
        centre=centre,
    )
