"""Negative binomial dispersions by Cox-Reid adjusted profile likelihood, as ComBat-seq gets
them from edgeR (``estimateGLMCommonDisp`` and ``estimateGLMTagwiseDisp`` with
``prior.df = 0``).

McCarthy, Chen & Smyth (2012), Nucleic Acids Research 40:4288-4297; Cox & Reid (1987). The
adjusted profile log-likelihood of a gene at dispersion phi is its NB log-likelihood at the
fitted means minus half the log-determinant of X' W X, W = mu / (1 + phi mu) (edgeR's
``adjustedProfileLik``). The common dispersion maximises the sum over genes (rows with a total
count of at least 5) over phi^(1/4) in [0, 4^(1/4)] by Brent's golden-section / parabolic
search (R's ``optimize``, tolerance 1e-5). Each gene's own dispersion maximises a cubic spline
(Forsythe, Malcolm & Moler's end conditions, R's ``splinefun(method = "fmm")``) through its
likelihood at common * 2^t for 11 values of t in [-6, 6] (edgeR's ``maximizeInterpolant``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.special import gammaln

from manylm.confounders.combat_seq_glm import LOW_VALUE, fit_nb_glm
from manylm.errors import DataError

__all__ = ["adjusted_profile_likelihood", "brent_maximum", "common_dispersion",
           "fmm_spline", "maximize_interpolant", "tagwise_dispersion"]

MIN_ROW_SUM = 5.0
GRID = np.linspace(-6.0, 6.0, 11)


def adjusted_profile_likelihood(dispersion: NDArray[np.float64] | float,
                                y: NDArray[np.float64], design: NDArray[np.float64],
                                offset: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cox-Reid adjusted profile log-likelihood of each gene (n_genes,) at ``dispersion``
    (a scalar or one value per gene)."""
    phi = np.broadcast_to(np.asarray(dispersion, dtype=np.float64).reshape(-1, 1), y.shape)
    _, mu = fit_nb_glm(y, design, offset, phi)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = 1 / phi
        log_mu_size = np.log(mu + size)
        terms = (y * np.log(mu) - y * log_mu_size + size * np.log(size) - size * log_mu_size
                 + gammaln(y + size) - gammaln(y + 1) - gammaln(size))
        poisson = y * np.log(mu) - mu - gammaln(y + 1)
    terms = np.where(phi > 0, terms, poisson)
    log_likelihood = np.where(mu == 0, 0.0, terms).sum(axis=1)
    working = mu / (1 + phi * mu)
    if design.shape[1] == 1:
        with np.errstate(divide="ignore"):
            adjustment = np.log(np.abs(working.sum(axis=1))) / 2
    else:
        information = np.einsum("gn,ni,nj->gij", working, design, design)
        adjustment = _half_log_determinant(information)
    return log_likelihood - adjustment


def common_dispersion(y: NDArray[np.float64], design: NDArray[np.float64], *,
                      batch: str = "") -> float:
    """One dispersion for all genes of ``y`` (n_genes x n_samples): edgeR's
    ``estimateGLMCommonDisp(y, design, subset = nrow(y))``, Cox-Reid method."""
    offset = np.log(y.sum(axis=0))
    rows = y.sum(axis=1) >= MIN_ROW_SUM
    if not rows.any():
        raise DataError(
            f"No gene has a total count of {MIN_ROW_SUM:g} or more in batch {batch!r}: the "
            "dispersion of that batch cannot be estimated."
        )
    counts = y[rows]

    def total(root: float) -> float:
        return float(adjusted_profile_likelihood(root**4, counts, design, offset).sum())

    return brent_maximum(total, 0.0, 4.0**0.25, tolerance=1e-5) ** 4


def tagwise_dispersion(y: NDArray[np.float64], design: NDArray[np.float64],
                       common: float) -> NDArray[np.float64]:
    """Each gene's dispersion, maximising its own adjusted profile likelihood (edgeR's
    ``estimateGLMTagwiseDisp(y, design, dispersion = common, prior.df = 0)``); genes with a total
    count below 5 keep ``common``."""
    offset = np.log(y.sum(axis=0))
    dispersion = np.full(y.shape[0], common)
    rows = np.flatnonzero(y.sum(axis=1) >= MIN_ROW_SUM)
    if rows.size == 0:
        return dispersion
    counts = y[rows]
    likelihood = np.column_stack([
        adjusted_profile_likelihood(np.full(rows.size, common * 2.0**t), counts, design, offset)
        for t in GRID])
    dispersion[rows] = common * 2.0 ** maximize_interpolant(GRID, likelihood)
    return dispersion


def brent_maximum(function: Callable[[float], float], lower: float, upper: float, *,
                  tolerance: float) -> float:
    """Maximum of ``function`` on [lower, upper] by Brent's (1973) localmin procedure: golden
    sections with parabolic steps, the same sequence of evaluations as R's ``optimize``."""
    golden = (3.0 - np.sqrt(5.0)) * 0.5
    sqrt_eps = np.sqrt(np.finfo(float).eps)
    a, b = lower, upper
    x = w = v = a + golden * (b - a)
    fx = fw = fv = -function(x)
    step = previous = 0.0
    third = tolerance / 3.0
    while True:
        middle = (a + b) * 0.5
        tol1 = sqrt_eps * abs(x) + third
        tol2 = 2.0 * tol1
        if abs(x - middle) <= tol2 - (b - a) * 0.5:
            return x
        p = q = r = 0.0
        if abs(previous) > tol1:  # try a parabola through x, w, v
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            else:
                q = -q
            r = previous
            previous = step
        if abs(p) >= abs(q * 0.5 * r) or p <= q * (a - x) or p >= q * (b - x):
            previous = (b - x) if x < middle else (a - x)
            step = golden * previous
        else:
            step = p / q
            u = x + step
            if u - a < tol2 or b - u < tol2:  # not too close to the ends
                step = tol1 if x < middle else -tol1
        if abs(step) >= tol1:
            u = x + step
        else:
            u = x + (tol1 if step > 0.0 else -tol1)
        fu = -function(u)
        if fu <= fx:
            if u < x:
                b = x
            else:
                a = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu


def fmm_spline(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Cubic spline through the rows of ``y`` (n_rows x n_points, n_points >= 4) at ``x``, with
    Forsythe, Malcolm & Moler's end conditions (the third derivative at each end matches that of
    the cubic through the four nearest points).

    Returns ``b, c, d`` (each n_rows x n_points): on [x_i, x_{i+1}] the spline is
    ``y_i + b_i t + c_i t^2 + d_i t^3`` with ``t = x - x_i``.
    """
    n = x.size
    h = np.diff(x)
    y = np.asarray(y, dtype=np.float64)
    diagonal = np.zeros(y.shape)
    rhs = np.zeros(y.shape)
    slopes = np.diff(y, axis=1) / h
    for i in range(1, n - 1):
        diagonal[:, i] = 2.0 * (h[i - 1] + h[i])
        rhs[:, i] = slopes[:, i] - slopes[:, i - 1]
    diagonal[:, 0] = -h[0]
    diagonal[:, n - 1] = -h[n - 2]
    start = rhs[:, 2] / (x[3] - x[1]) - rhs[:, 1] / (x[2] - x[0])
    end = rhs[:, n - 2] / (x[n - 1] - x[n - 3]) - rhs[:, n - 3] / (x[n - 2] - x[n - 4])
    rhs[:, 0] = start * h[0] * h[0] / (x[3] - x[0])
    rhs[:, n - 1] = -end * h[n - 2] * h[n - 2] / (x[n - 1] - x[n - 4])
    for i in range(1, n):  # tridiagonal elimination
        ratio = h[i - 1] / diagonal[:, i - 1]
        diagonal[:, i] -= ratio * h[i - 1]
        rhs[:, i] -= ratio * rhs[:, i - 1]
    sigma = np.empty(y.shape)
    sigma[:, n - 1] = rhs[:, n - 1] / diagonal[:, n - 1]
    for i in range(n - 2, -1, -1):
        sigma[:, i] = (rhs[:, i] - h[i] * sigma[:, i + 1]) / diagonal[:, i]
    b = np.empty(y.shape)
    c = np.empty(y.shape)
    d = np.empty(y.shape)
    b[:, n - 1] = (y[:, n - 1] - y[:, n - 2]) / h[n - 2] + h[n - 2] * (
        sigma[:, n - 2] + 2.0 * sigma[:, n - 1])
    for i in range(n - 1):
        b[:, i] = (y[:, i + 1] - y[:, i]) / h[i] - h[i] * (sigma[:, i + 1] + 2.0 * sigma[:, i])
        d[:, i] = (sigma[:, i + 1] - sigma[:, i]) / h[i]
        c[:, i] = 3.0 * sigma[:, i]
    c[:, n - 1] = 3.0 * sigma[:, n - 1]
    d[:, n - 1] = d[:, n - 2]
    return b, c, d


def maximize_interpolant(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """For each row of ``y`` (n_rows x n_points), where its cubic spline through ``x`` is largest:
    the best grid point, moved to a stationary point of the spline on either neighbouring
    segment when that is higher (edgeR's ``maximizeInterpolant``)."""
    y = np.asarray(y, dtype=np.float64)
    rows = np.arange(y.shape[0])
    best = np.argmax(y, axis=1)
    best_value = y[rows, best]
    location = x[best].astype(np.float64)
    b, c, d = fmm_spline(x, y)
    for side in (-1, 0):  # the segment left of the best point, then the one right of it
        segment = best + side
        valid = (segment >= 0) & (segment < x.size - 1)
        seg = np.clip(segment, 0, x.size - 2)
        sb, sc, sd = b[rows, seg], c[rows, seg], d[rows, seg]
        with np.errstate(divide="ignore", invalid="ignore"):
            discriminant = sc * sc - 3 * sd * sb
            root = (-sc - np.sqrt(np.where(discriminant < 0, np.nan, discriminant))) / (3 * sd)
            width = x[seg + 1] - x[seg]
            inside = valid & (discriminant >= 0) & (root > 0) & (root < width)
            value = ((sd * root + sc) * root + sb) * root + y[rows, seg]
        better = inside & (value > best_value)
        best_value = np.where(better, value, best_value)
        location = np.where(better, root + x[seg], location)
    return location


def _half_log_determinant(matrices: NDArray[np.float64]) -> NDArray[np.float64]:
    """Half the log-determinant of each symmetric matrix, from its U D U' factorisation (last
    column first, as LAPACK's ``dsytrf`` with uplo = "U"); a pivot below 1e-10 counts as 1e-10,
    as in edgeR, so that genes with zero fitted values keep a finite likelihood."""
    work = np.array(matrices, dtype=np.float64)
    size = work.shape[-1]
    total = np.zeros(work.shape[0])
    for k in range(size - 1, -1, -1):
        pivot = work[:, k, k]
        usable = np.isfinite(pivot) & (pivot >= LOW_VALUE)
        total += np.where(usable, np.log(np.where(usable, pivot, 1.0)), np.log(LOW_VALUE))
        if k:
            column = work[:, :k, k]
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = np.where(pivot[:, None] != 0, column / pivot[:, None], 0.0)
            work[:, :k, :k] -= scaled[:, :, None] * column[:, None, :]
    return total / 2
