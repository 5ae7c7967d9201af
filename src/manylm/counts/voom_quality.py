"""voom combined with sample quality weights (limma's ``voomWithQualityWeights``).

Liu, Holik, Su, Jansz, Chen, Leong, Blewitt, Asselin-Labat, Smyth & Ritchie (2015), "Why weight?
Modelling sample and observational level variability improves power in RNA-seq analyses",
Nucleic Acids Research 43:e97. voom's trend is fitted, sample weights are estimated from the
voom-weighted log-CPM (:func:`array_weights`), the trend is refitted with those sample weights,
the sample weights are re-estimated, and the final observation weights are voom's times the
sample weights.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from manylm.counts.array_weights import array_weights
from manylm.counts.voom import VoomResult, voom
from manylm.design.matrix import Design

__all__ = ["voom_with_quality_weights"]


def voom_with_quality_weights(
    counts: pd.DataFrame,
    design: Design,
    *,
    lib_size: ArrayLike | None = None,
    span: float = 0.5,
    method: str = "genebygene",
    var_design: NDArray[np.float64] | pd.DataFrame | None = None,
    var_group: pd.Series | NDArray[np.object_] | list[object] | None = None,
    max_iterations: int = 50,
    tol: float = 1e-5,
) -> VoomResult:
    """log-CPM with voom precision weights times sample quality weights.

    Parameters are those of :func:`manylm.counts.voom` and :func:`array_weights` (``method``
    defaults to ``"genebygene"``, as in limma). The result's ``weights`` include the sample
    weights, which are also returned as ``sample_weights``; the trend is the one fitted with the
    first estimate of the sample weights (limma plots the same).
    """
    def estimate(fitted: VoomResult) -> pd.Series:
        return array_weights(fitted.expression, design, weights=fitted.weights, method=method,
                             var_design=var_design, var_group=var_group,
                             max_iterations=max_iterations, tol=tol)

    quality = estimate(voom(counts, design, lib_size=lib_size, span=span))
    second = voom(counts, design, lib_size=lib_size, span=span,
                  sample_weights=quality.to_numpy())
    quality = estimate(second)
    combined = second.weights * quality.to_numpy()[None, :]
    return VoomResult(
        expression=second.expression, weights=combined, lib_size=second.lib_size,
        trend_x=second.trend_x, trend_y=second.trend_y, trend_line_x=second.trend_line_x,
        trend_line_y=second.trend_line_y, sample_weights=quality,
    )
