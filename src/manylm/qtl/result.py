"""What a scan returns: the table (or where it was written) and what was tested."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["ScanResult"]


@dataclass
class ScanResult:
    """The outcome of :func:`manylm.qtl.scan`.

    Attributes
    ----------
    table : pandas.DataFrame or None
        The passing pairs (None when written to ``path``): ``variant, phenotype, beta, se, t,
        p_value, adj_p_value`` (ANOVA adds ``F`` and ``df_genotype``; cis scans ``region``).
    path : str or None
    model : str
    n_tests : dict of str to int
        Tests performed per family, ``{"trans": ..., "cis": ...}``; the BH adjustment of each
        family counts all of them, written or not.
    n_written : dict of str to int
    n_variants : int
        Variants read.
    variant_status : dict of str to int
        Variants by outcome: ``tested``, ``monomorphic``, ``below_maf``,
        ``collinear_with_covariates``, ``interaction_not_estimable``, ``too_few_samples``.
    n_imputed : int
        Tested variants whose missing calls were mean-imputed.
    samples : list of str
    covariates : list of str
        The covariate columns adjusted for (intercept included).
    phenotypes_not_tested : list of str
        Constant once the covariates are removed.
    n_phenotypes : int
        Phenotypes tested.
    """

    table: pd.DataFrame | None
    path: str | None
    model: str
    n_tests: dict[str, int]
    n_written: dict[str, int]
    n_variants: int
    variant_status: dict[str, int]
    n_imputed: int
    samples: list[str]
    covariates: list[str]
    phenotypes_not_tested: list[str] = field(default_factory=list)
    n_phenotypes: int = 0
    p_threshold: float = 1e-5
    cis_p_threshold: float | None = None
    cis_window: int | None = None
    missing: str = "complete"
    dtype: str = "float64"

    def summary(self) -> dict[str, Any]:
        """Everything but the table, as plain values (for a run record)."""
        return {
            "model": self.model, "n_tests": self.n_tests, "n_written": self.n_written,
            "n_variants": self.n_variants, "variant_status": self.variant_status,
            "n_imputed": self.n_imputed, "n_samples": len(self.samples),
            "covariates": self.covariates, "n_phenotypes": self.n_phenotypes,
            "phenotypes_not_tested": self.phenotypes_not_tested,
            "p_threshold": self.p_threshold, "cis_p_threshold": self.cis_p_threshold,
            "cis_window": self.cis_window, "missing": self.missing, "dtype": self.dtype,
        }
