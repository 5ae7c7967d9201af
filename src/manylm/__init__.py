"""manylm: many linear models at once over genomics matrices.

The limma model (Smyth 2004) fitted to every feature of a features x samples matrix, with
empirical Bayes moderated statistics, in Python and from the ``manylm`` command.
"""

import importlib
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from manylm.design import Design, contrast_matrix, design_matrix
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
    from manylm.qtl.result import ScanResult
    from manylm.qtl.scan import scan

__version__ = "0.1.0"

#: Where each name of the API lives. They are imported on first use, so that ``import
#: manylm`` (and the command line's start, which handles Ctrl-C from then on) does not wait
#: for pandas, SciPy, numba and formulaic: about 0.8 s.
_LAZY = {
    **dict.fromkeys(["Design", "contrast_matrix", "design_matrix"], "manylm.design"),
    **dict.fromkeys(["LinearModelFit", "contrasts_fit", "duplicate_correlation", "lm_fit"],
                    "manylm.fit"),
    **dict.fromkeys(["QValues", "decide_tests", "local_fdr", "p_adjust", "pi0_estimate",
                     "prop_true_null", "qvalue", "top_table"], "manylm.inference"),
    **dict.fromkeys(["ModeratedFit", "ebayes", "fit_f_dist", "fit_f_dist_robustly",
                     "ordinary_statistics", "squeeze_var", "treat"], "manylm.moderate"),
    **dict.fromkeys(["ScanResult", "scan"], "manylm.qtl"),
}
#: The subpackages, also imported on first use as attributes (``manylm.engine.fit_dask``).
_SUBPACKAGES = frozenset({"cli", "confounders", "counts", "design", "engine", "fit",
                          "inference", "io", "moderate", "parallel", "qtl", "report"})


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'manylm' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBPACKAGES})


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
