"""manylm: many linear models at once over genomics matrices.

The limma model (Smyth 2004) fitted to every feature of a features x samples matrix, with
empirical Bayes moderated statistics, in Python and from the ``manylm`` command.
"""

from typing import TYPE_CHECKING

from manylm.design import Design, contrast_matrix, design_matrix
from manylm.errors import (
    ContrastError,
    DataError,
    DesignError,
    EstimabilityError,
    FormulaError,
    InputError,
    ManylmError,
    ManylmWarning,
)
from manylm.fit import LinearModelFit, contrasts_fit, duplicate_correlation, lm_fit
from manylm.inference import (
    QValues,
    decide_tests,
    local_fdr,
    p_adjust,
    pi0_estimate,
    prop_true_null,
    qvalue,
    top_table,
)
from manylm.moderate import (
    ModeratedFit,
    ebayes,
    fit_f_dist,
    fit_f_dist_robustly,
    ordinary_statistics,
    squeeze_var,
    treat,
)

if TYPE_CHECKING:
    from manylm.qtl.result import ScanResult
    from manylm.qtl.scan import scan

__version__ = "0.1.0"

#: Imported on first use (the QTL scan pulls in its genotype readers).
_LAZY = {"ScanResult": "manylm.qtl", "scan": "manylm.qtl"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'manylm' has no attribute {name!r}")


__all__ = [
    "ContrastError",
    "DataError",
    "Design",
    "DesignError",
    "EstimabilityError",
    "FormulaError",
    "InputError",
    "LinearModelFit",
    "ManylmError",
    "ManylmWarning",
    "ModeratedFit",
    "QValues",
    "ScanResult",
    "__version__",
    "contrast_matrix",
    "contrasts_fit",
    "decide_tests",
    "design_matrix",
    "duplicate_correlation",
    "ebayes",
    "fit_f_dist",
    "fit_f_dist_robustly",
    "lm_fit",
    "local_fdr",
    "ordinary_statistics",
    "p_adjust",
    "pi0_estimate",
    "prop_true_null",
    "qvalue",
    "scan",
    "squeeze_var",
    "top_table",
    "treat",
]
