"""The result of fitting the same linear model to every feature."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.design.matrix import Design
from manylm.design.names import resolve_tests

if TYPE_CHECKING:
    from manylm.moderate.moderated_fit import ModeratedFit

__all__ = ["LinearModelFit"]


@dataclass(frozen=True)
class LinearModelFit:
    """Per-feature least-squares fits (limma's ``MArrayLM`` after ``lmFit``/``contrasts.fit``).

    Arrays have one row per feature; coefficient arrays one column per coefficient (or
    contrast). Use :attr:`coefficients_frame` and friends for labelled pandas views.

    Attributes
    ----------
    coefficients : array of shape (n_features, n_coefficients)
    stdev_unscaled : array of shape (n_features, n_coefficients)
    residual_variance : array of shape (n_features,)   (``sigma**2``)
    df_residual : array of shape (n_features,)
    mean : array of shape (n_features,)   (limma's ``Amean``)
    cov_unscaled : array of shape (n_coefficients, n_coefficients)
        Unscaled covariance of the coefficients from the whole design (limma's
        ``cov.coefficients``); NaN rows and columns for non-estimable coefficients.
    feature_ids : Index
    coefficient_names : list of str
    design : Design
    contrasts : DataFrame or None
        Coefficients x contrasts matrix when this fit holds contrasts.
    residuals, fitted : DataFrame or None (features x samples), when asked for.
    """

    coefficients: NDArray[np.floating]
    stdev_unscaled: NDArray[np.floating]
    residual_variance: NDArray[np.floating]
    df_residual: NDArray[np.floating]
    mean: NDArray[np.floating]
    cov_unscaled: NDArray[np.floating]
    feature_ids: pd.Index
    coefficient_names: list[str]
    design: Design
    contrasts: pd.DataFrame | None = None
    residuals: pd.DataFrame | None = None
    fitted: pd.DataFrame | None = None
    terms: dict[str, list[str]] = field(default_factory=dict)
    block_correlation: float | None = None

    # ----------------------------------------------------------------- views
    @property
    def sigma(self) -> NDArray[np.floating]:
        """Residual standard deviation of each feature."""
        return np.sqrt(self.residual_variance)

    @property
    def n_features(self) -> int:
        return int(self.coefficients.shape[0])

    def _frame(self, values: NDArray[np.floating]) -> pd.DataFrame:
        return pd.DataFrame(values, index=self.feature_ids, columns=self.coefficient_names)

    @property
    def coefficients_frame(self) -> pd.DataFrame:
        return self._frame(self.coefficients)

    @property
    def stdev_unscaled_frame(self) -> pd.DataFrame:
        return self._frame(self.stdev_unscaled)

    def summary_frame(self) -> pd.DataFrame:
        """Per-feature residual variance, residual df and mean."""
        return pd.DataFrame(
            {
                "sigma": self.sigma,
                "df_residual": self.df_residual,
                "mean": self.mean,
            },
            index=self.feature_ids,
        )

    def coefficient_index(self, names: list[str] | str) -> list[int]:
        """Positions of coefficient (or contrast, or term) names, with clear errors."""
        requested = [names] if isinstance(names, str) else list(names)
        resolved = resolve_tests(requested, self.coefficient_names, self.terms)
        return [self.coefficient_names.index(name) for name in resolved]

    def subset(self, features: NDArray[np.bool_] | NDArray[np.int_] | slice) -> LinearModelFit:
        """The fit restricted to some features."""
        return replace(
            self,
            coefficients=self.coefficients[features],
            stdev_unscaled=self.stdev_unscaled[features],
            residual_variance=self.residual_variance[features],
            df_residual=self.df_residual[features],
            mean=self.mean[features],
            feature_ids=self.feature_ids[features],
            residuals=None if self.residuals is None else self.residuals.iloc[features],
            fitted=None if self.fitted is None else self.fitted.iloc[features],
        )

    # ------------------------------------------------------------ next steps
    def contrasts_fit(self, contrasts: Any) -> LinearModelFit:
        """Re-express the fit in terms of contrasts; see :func:`manylm.contrasts_fit`."""
        from manylm.fit.contrasts import contrasts_fit

        return contrasts_fit(self, contrasts)

    def ebayes(self, **options: Any) -> ModeratedFit:
        """Moderate the fit; see :func:`manylm.ebayes`."""
        from manylm.moderate.ebayes import ebayes

        return ebayes(self, **options)

    def treat(self, lfc: float, **options: Any) -> ModeratedFit:
        """Moderated tests of |coefficient| > lfc; see :func:`manylm.treat`."""
        from manylm.moderate.ebayes import treat

        return treat(self, lfc=lfc, **options)

    def ordinary(self) -> ModeratedFit:
        """Ordinary (unmoderated) t and F statistics; see :func:`manylm.ordinary_statistics`."""
        from manylm.moderate.ebayes import ordinary_statistics

        return ordinary_statistics(self)
