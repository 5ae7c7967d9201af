"""Sample MDS plot: leading log-fold-change distances and classical scaling (limma ``plotMDS``).

The distance between two samples is the root mean square of their largest ``top`` squared
differences over features ("pairwise" selection: each pair picks its own features); the
matrix of squared distances is double-centred and its leading eigenvectors, scaled by the
square roots of their eigenvalues, are the coordinates (Torgerson's classical MDS, R's
``cmdscale``). With ``gene_selection="common"`` the same ``top`` most variable features serve
every pair. Rows with a missing or infinite value are left out, as limma does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from manylm.errors import InputError, ManylmWarning
from manylm.report.canvas import COLORS, axes_for
from manylm.report.pairwise_distances import common_squared_distances, leading_squared_distances

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["SampleMDS", "plot_sample_mds", "sample_mds"]

GENE_SELECTIONS = ("pairwise", "common")


@dataclass(frozen=True)
class SampleMDS:
    """Sample coordinates from classical multidimensional scaling.

    Attributes
    ----------
    coordinates : DataFrame (n_samples x n_dimensions)
        Columns ``dim1``, ``dim2``, ...: eigenvector times sqrt(max(eigenvalue, 0)). The sign
        of each dimension is arbitrary (as in R); here the largest coordinate is positive.
    eigenvalues : array of shape (n_samples,)
        Decreasing.
    var_explained : array of shape (n_samples,)
        ``max(eigenvalue, 0) / sum(max(eigenvalues, 0))``.
    distance_squared : DataFrame (n_samples x n_samples)
        Mean of the ``top`` largest squared differences for each pair (zero diagonal).
    centred : DataFrame (n_samples x n_samples)
        The double-centred squared distances (limma's ``distance.matrix.squared``).
    top : int
        Features per pair actually used (``min(top, n_features_used)``).
    gene_selection : str
    n_features_used : int
        Rows with every value finite.
    """

    coordinates: pd.DataFrame
    eigenvalues: NDArray[np.float64]
    var_explained: NDArray[np.float64]
    distance_squared: pd.DataFrame
    centred: pd.DataFrame
    top: int
    gene_selection: str
    n_features_used: int

    @property
    def axis_label(self) -> str:
        return "Leading logFC dim" if self.gene_selection == "pairwise" else \
            "Principal Component"


def sample_mds(expression: Any, *, top: int = 500, gene_selection: str = "pairwise",
               n_dimensions: int = 2) -> SampleMDS:
    """Classical MDS of the samples on leading log-fold-change distances (limma ``plotMDS``).

    Parameters
    ----------
    expression : DataFrame or array of shape (n_features, n_samples)
        Log-scale values (log-expression, log-CPM, M-values). Rows with any missing or infinite
        value are left out.
    top : int
        Number of largest squared differences averaged per pair (limma's ``top``).
    gene_selection : {"pairwise", "common"}
    n_dimensions : int
        Coordinates returned (at least 2).

    Returns
    -------
    SampleMDS
    """
    if isinstance(expression, pd.DataFrame):
        values = expression.to_numpy(dtype=np.float64)
        samples = [str(c) for c in expression.columns]
    else:
        values = np.asarray(expression, dtype=np.float64)
        samples = [str(i + 1) for i in range(values.shape[1])] if values.ndim == 2 else []
    if values.ndim != 2:
        raise InputError(f"expression must be a features x samples matrix; got {values.ndim} "
                         "dimension(s).")
    n_samples = values.shape[1]
    if n_samples < 3:
        raise InputError(f"MDS needs at least 3 samples; the matrix has {n_samples}.")
    if gene_selection not in GENE_SELECTIONS:
        raise InputError(f"The 'gene_selection' parameter must be one of "
                         f"{', '.join(GENE_SELECTIONS)}. Got {gene_selection!r}.")
    if int(top) < 1:
        raise InputError(f"The 'top' parameter must be >= 1. Got {top}.")
    if not 2 <= n_dimensions <= n_samples:
        raise InputError(f"The 'n_dimensions' parameter must be between 2 and the number of "
                         f"samples ({n_samples}). Got {n_dimensions}.")
    complete = np.isfinite(values).all(axis=1)
    n_used = int(complete.sum())
    if n_used < n_dimensions:
        raise InputError(
            f"Only {n_used} feature(s) have a finite value in every sample; MDS in "
            f"{n_dimensions} dimensions needs at least {n_dimensions}. Filter features with "
            "missing values less strictly, or impute them."
        )
    finite_rows = values if n_used == values.shape[0] else values[complete]
    used_top = min(int(top), n_used)
    if gene_selection == "pairwise":
        squared = leading_squared_distances(finite_rows, used_top)
    else:
        squared = common_squared_distances(finite_rows, used_top)
    return _scale(squared, samples, n_dimensions, used_top, gene_selection, n_used)


def _scale(squared: NDArray[np.float64], samples: list[str], n_dimensions: int, top: int,
           gene_selection: str, n_used: int) -> SampleMDS:
    row_means = squared.mean(axis=1)
    centred = squared - row_means[:, None] - row_means[None, :] + row_means.mean()
    eigenvalues, eigenvectors = np.linalg.eigh(-centred / 2)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    positive = np.maximum(eigenvalues, 0.0)
    total = positive.sum()
    var_explained = positive / total if total > 0 else np.zeros_like(positive)
    coordinates = eigenvectors[:, :n_dimensions] * np.sqrt(positive[:n_dimensions])
    largest = np.argmax(np.abs(coordinates), axis=0)
    signs = np.sign(coordinates[largest, np.arange(n_dimensions)])
    coordinates = coordinates * np.where(signs == 0, 1.0, signs)
    for dimension in range(n_dimensions):
        if positive[dimension] < 1e-13:
            warnings.warn(f"MDS dimension {dimension + 1} is degenerate or all zero.",
                          ManylmWarning, stacklevel=3)
    index = pd.Index(samples, name="sample")
    return SampleMDS(
        coordinates=pd.DataFrame(coordinates, index=index,
                                 columns=[f"dim{d + 1}" for d in range(n_dimensions)]),
        eigenvalues=eigenvalues, var_explained=var_explained,
        distance_squared=pd.DataFrame(squared, index=index, columns=index),
        centred=pd.DataFrame(centred, index=index, columns=index), top=top,
        gene_selection=gene_selection, n_features_used=n_used,
    )


def plot_sample_mds(data: SampleMDS, *, groups: pd.Series | None = None,
                    dimensions: tuple[int, int] = (1, 2), ax: Axes | None = None,
                    title: str = "Sample MDS") -> Figure:
    """Samples as labelled points on two MDS dimensions, coloured by a sample variable.

    Parameters
    ----------
    data : SampleMDS
    groups : Series, optional
        A label per sample (indexed by sample ID), e.g. a sample-sheet column.
    dimensions : (int, int)
        1-based dimensions on the x and y axes.
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_available = data.coordinates.shape[1]
    if len(dimensions) != 2 or not all(1 <= d <= n_available for d in dimensions):
        raise InputError(f"dimensions must be two of 1..{n_available}; got {dimensions}.")
    figure, axes = axes_for(ax, (6.4, 5.2))
    x = data.coordinates.iloc[:, dimensions[0] - 1].to_numpy()
    y = data.coordinates.iloc[:, dimensions[1] - 1].to_numpy()
    samples = list(data.coordinates.index)
    labels = pd.Series("all samples", index=data.coordinates.index)
    if groups is not None:
        labels = groups.reindex(data.coordinates.index).astype("string").fillna("(missing)")
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    for k, level in enumerate(pd.unique(labels)):
        mask = (labels == level).to_numpy()
        axes.plot(x[mask], y[mask], linestyle="none", marker="o", markersize=5,
                  color=palette(k % 10), label=str(level))
    for name, xi, yi in zip(samples, x, y, strict=True):
        axes.annotate(name, (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points",
                      color=COLORS["other"], parse_math=False)
    share = data.var_explained
    axes.set_xlabel(f"{data.axis_label} {dimensions[0]} "
                    f"({100 * share[dimensions[0] - 1]:.0f}%)")
    axes.set_ylabel(f"{data.axis_label} {dimensions[1]} "
                    f"({100 * share[dimensions[1] - 1]:.0f}%)")
    axes.set_title(title, loc="left")
    if groups is not None:
        legend = axes.legend(loc="best", frameon=False, fontsize="small",
                             title=str(groups.name) if groups.name is not None else None)
        for text in [*legend.get_texts(), legend.get_title()]:
            text.set_parse_math(False)
    return figure
