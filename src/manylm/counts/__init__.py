"""RNA-seq counts and methylation betas: normalisation, filtering, voom weights, M-values."""

from manylm.counts.array_weights import ARRAY_WEIGHT_METHODS, array_weights
from manylm.counts.cpm import cpm
from manylm.counts.filtering import filter_by_expr
from manylm.counts.methylation import BETA_OFFSET, beta_to_m
from manylm.counts.normalization import NORMALIZATION_METHODS, norm_factors
from manylm.counts.validation import check_counts
from manylm.counts.voom import VoomResult, voom
from manylm.counts.voom_quality import voom_with_quality_weights

__all__ = [
    "ARRAY_WEIGHT_METHODS",
    "BETA_OFFSET",
    "NORMALIZATION_METHODS",
    "VoomResult",
    "array_weights",
    "beta_to_m",
    "check_counts",
    "cpm",
    "filter_by_expr",
    "norm_factors",
    "voom",
    "voom_with_quality_weights",
]
