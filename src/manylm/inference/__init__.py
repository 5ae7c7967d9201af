"""p-value adjustment, q-values and local FDR, result tables and decisions."""

from manylm.inference.adjust import ADJUST_METHODS, p_adjust
from manylm.inference.decide import DECIDE_METHODS, decide_tests
from manylm.inference.local_fdr import local_fdr
from manylm.inference.pi0 import Pi0Estimate, pi0_estimate
from manylm.inference.prop_true_null import prop_true_null
from manylm.inference.qvalue import QValues, qvalue
from manylm.inference.smoothing_spline import SmoothingSpline, smooth_spline
from manylm.inference.tables import SORT_KEYS, top_table

__all__ = [
    "ADJUST_METHODS",
    "DECIDE_METHODS",
    "SORT_KEYS",
    "Pi0Estimate",
    "QValues",
    "SmoothingSpline",
    "decide_tests",
    "local_fdr",
    "p_adjust",
    "pi0_estimate",
    "prop_true_null",
    "qvalue",
    "smooth_spline",
    "top_table",
]
