"""Stacked least-squares fits: dense, with missing values, weighted."""

from manylm.fit.block import BlockFitter
from manylm.fit.chunk import ChunkFit
from manylm.fit.contrasts import contrasts_fit
from manylm.fit.lmfit import lm_fit
from manylm.fit.result import LinearModelFit

__all__ = ["BlockFitter", "ChunkFit", "LinearModelFit", "contrasts_fit", "lm_fit"]
