"""Stacked least-squares fits: dense, with missing values, weighted."""

from manylm.fit.block import BlockFitter
from manylm.fit.chunk import ChunkFit
from manylm.fit.contrasts import contrasts_fit
from manylm.fit.duplicate_correlation import DuplicateCorrelation, duplicate_correlation
from manylm.fit.lmfit import lm_fit
from manylm.fit.result import LinearModelFit

__all__ = [
    "BlockFitter",
    "ChunkFit",
    "DuplicateCorrelation",
    "LinearModelFit",
    "contrasts_fit",
    "duplicate_correlation",
    "lm_fit",
]
