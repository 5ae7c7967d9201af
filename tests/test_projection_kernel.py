"""The dense fit's compiled read: products with the basis and |y|^2, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.fit.projection_kernel import _column_layout, project_rows


@pytest.mark.parametrize("n_rows", [0, 1, 2, 7, 2049, 5001])
@pytest.mark.parametrize("width", [8, 16])
@pytest.mark.parametrize("parallel", [False, True])
def test_products_and_squares_match_numpy(n_rows: int, width: int, parallel: bool) -> None:
    rng = np.random.default_rng(n_rows + width)
    y = rng.standard_normal((n_rows, 37)) * 3 + 5
    assert_sums_match(y, y, rng.standard_normal((width, 37)), parallel)


def assert_sums_match(stored: np.ndarray, y: np.ndarray, basis_t: np.ndarray,
                      parallel: bool) -> None:
    """project_rows of ``stored`` (``y`` in some layout) gives NumPy's sums of ``y``."""
    product = np.full((y.shape[0], basis_t.shape[0]), np.nan)
    total = np.full(y.shape[0], np.nan)
    project_rows(stored, basis_t, product, total, parallel=parallel)
    np.testing.assert_allclose(product, y @ basis_t.T, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(total, np.einsum("ij,ij->i", y, y), rtol=1e-14)


def test_float32_rows_are_summed_in_float64() -> None:
    rng = np.random.default_rng(1)
    y = (rng.standard_normal((301, 100)) + 1e3).astype(np.float32)
    basis_t = rng.standard_normal((8, 100))
    product = np.empty((301, 8))
    total = np.empty(301)
    project_rows(y, basis_t, product, total)
    exact = y.astype(np.float64)
    np.testing.assert_allclose(product, exact @ basis_t.T, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(total, np.einsum("ij,ij->i", exact, exact), rtol=1e-14)


def test_missing_and_infinite_values_propagate() -> None:
    y = np.ones((4, 10))
    y[1, 3] = np.nan
    y[2, 0] = np.inf
    product = np.empty((4, 8))
    total = np.empty(4)
    project_rows(y, np.ones((8, 10)), product, total)
    assert np.isfinite(total[[0, 3]]).all() and np.isnan(total[1]) and np.isinf(total[2])
    assert np.isnan(product[1]).all() and not np.isfinite(product[2]).any()


def test_strided_rows_and_bad_basis() -> None:
    y = np.arange(60.0).reshape(6, 10)[::2, ::2]  # not unit stride along samples
    product = np.empty((3, 8))
    total = np.empty(3)
    project_rows(y, np.ones((8, 5)), product, total)
    np.testing.assert_allclose(total, (y**2).sum(axis=1))
    with pytest.raises(ValueError, match="multiple of 8"):
        project_rows(y, np.ones((6, 5)), product, total)


def test_dense_solver_with_two_groups_of_outputs() -> None:
    """A design of rank 10 needs a 16-wide basis: coefficients and variances as lstsq gives."""
    from manylm.fit.dense import DenseSolver

    rng = np.random.default_rng(3)
    design = np.column_stack([np.ones(40), rng.standard_normal((40, 9))])
    y = rng.standard_normal((33, 40)) + 4
    solver = DenseSolver.from_design(design, np.ones(10, dtype=bool))
    assert solver.basis_t.shape == (16, 40)
    fit = solver(y)
    coef, rss, _, _ = np.linalg.lstsq(design, y.T, rcond=None)
    np.testing.assert_allclose(fit.coefficients, coef.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit.residual_variance, rss / 30, rtol=1e-10)
    np.testing.assert_allclose(fit.mean, y.mean(axis=1), rtol=1e-13)


def test_float32_data_fits_as_its_float64_copy() -> None:
    """float32 rows go to the kernel without a float64 copy; the fit is that of the copy."""
    import manylm

    rng = np.random.default_rng(5)
    y = (rng.standard_normal((3000, 20)) + 7).astype(np.float32)
    y[5, 3] = np.nan  # refitted on its observed samples
    design = np.column_stack([np.ones(20), np.repeat([0.0, 1.0], 10), rng.uniform(size=20)])
    fit32 = manylm.lm_fit(y, design)
    fit64 = manylm.lm_fit(y.astype(np.float64), design)
    assert fit32.coefficients.dtype == np.float64
    np.testing.assert_allclose(fit32.coefficients, fit64.coefficients, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fit32.residual_variance, fit64.residual_variance, rtol=1e-9)
    np.testing.assert_allclose(fit32.mean, fit64.mean, rtol=1e-13)
    single = manylm.lm_fit(y, design, dtype=np.float32)
    assert single.coefficients.dtype == np.float32
    np.testing.assert_allclose(single.coefficients, fit64.coefficients, rtol=1e-3, atol=1e-4)


def test_fit_rows_flags_rows_for_the_other_paths() -> None:
    """One read fits complete rows; an inexact RSS and a missing value are flagged, and lm_fit
    refits them (so its results equal lstsq's row by row)."""
    import manylm
    from manylm.fit.block import BlockFitter
    from manylm.fit.projection_kernel import FITTED, INEXACT, NOT_FINITE, fit_rows

    rng = np.random.default_rng(11)
    design = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6), rng.uniform(size=12)])
    y = rng.standard_normal((9, 12))
    y[3] = 1e6 + 1e-7 * rng.standard_normal(12)  # |y|^2 - |Q'y|^2 would lose every digit
    y[5, 2] = np.nan
    y[7, 0] = np.inf
    fitter = BlockFitter(design, np.ones(3, dtype=bool))
    assert fitter.row_fit is not None
    coefficients, variance, mean = np.empty((9, 3)), np.empty(9), np.empty(9)
    status = fit_rows(y, fitter.row_fit, coefficients, variance, mean)
    assert status[3] == INEXACT and status[5] == status[7] == NOT_FINITE
    assert (status[[0, 1, 2, 4, 6, 8]] == FITTED).all()
    y[7, 0] = 1.0
    fit = manylm.lm_fit(y, design)
    for row in range(9):
        observed = np.isfinite(y[row])
        centre = y[row, observed].mean()  # lstsq itself loses digits to a large mean
        coef, rss, _, _ = np.linalg.lstsq(design[observed], y[row, observed] - centre,
                                          rcond=None)
        coef[0] += centre
        np.testing.assert_allclose(fit.coefficients[row], coef, rtol=1e-7, atol=1e-9)
        df = observed.sum() - 3
        np.testing.assert_allclose(fit.residual_variance[row], rss[0] / df, rtol=1e-6)
        assert fit.df_residual[row] == df


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prefetch_is_only_a_hint(dtype: type) -> None:
    """A compiled loop that asks for every line of a matrix reads the same values."""
    import numba

    from manylm.fit.prefetch import prefetch_element

    @numba.njit
    def total_with_prefetch(values: np.ndarray) -> float:
        out = 0.0
        for i in range(values.shape[0]):
            for k in range(values.shape[1]):
                prefetch_element(values, i, k)
                out += values[i, k]
        return out

    values = np.random.default_rng(1).normal(size=(37, 19)).astype(dtype)
    assert total_with_prefetch(values) == pytest.approx(float(values.sum(dtype=np.float64)))


def _by_column(y: np.ndarray, layout: str) -> np.ndarray:
    """``y`` stored by column: Fortran order, or rows of a larger Fortran-ordered matrix (unit
    stride along rows, a longer step between columns)."""
    if layout == "fortran":
        return np.asfortranarray(y)
    taller = np.asfortranarray(np.vstack([np.zeros((3, y.shape[1])), y, np.ones((5, y.shape[1]))]))
    return taller[3:3 + y.shape[0]]


@pytest.mark.parametrize("n_rows", [2, 7, 1023, 1025, 2049, 5001])
@pytest.mark.parametrize("n_samples", [5, 37, 100])
@pytest.mark.parametrize("layout", ["fortran", "rows_of_fortran"])
@pytest.mark.parametrize("parallel", [False, True])
def test_column_kernel_matches_numpy(n_rows: int, n_samples: int, layout: str,
                                     parallel: bool) -> None:
    """Matrices stored by column are read column by column (tiles of rows, four columns a
    sweep): the same sums as NumPy, for any number of samples and rows."""
    rng = np.random.default_rng(n_rows * n_samples)
    y = rng.standard_normal((n_rows, n_samples)) * 3 + 5
    stored = _by_column(y, layout)
    assert stored.strides[0] == stored.itemsize and not stored.flags.c_contiguous
    assert _column_layout(stored[:, :0]) is None  # no samples: nothing to read by column
    for width in (8, 16):
        assert_sums_match(stored, y, rng.standard_normal((width, n_samples)), parallel)


def test_column_kernel_reads_float32_and_flags_rows_as_the_row_kernel() -> None:
    from manylm.fit.block import BlockFitter
    from manylm.fit.projection_kernel import fit_rows

    rng = np.random.default_rng(21)
    design = np.column_stack([np.ones(30), np.repeat([0.0, 1.0], 15), rng.uniform(size=30)])
    y = (rng.standard_normal((2100, 30)) + 9).astype(np.float32)
    y[3] = 1e6  # a constant row: its RSS is inexact
    y[1500, 2] = np.nan
    y[2000, 0] = np.inf
    fitter = BlockFitter(design, np.ones(3, dtype=bool))
    assert fitter.row_fit is not None
    results = []
    for stored in (y, np.asfortranarray(y)):
        coefficients, variance, mean = np.empty((2100, 3)), np.empty(2100), np.empty(2100)
        status = fit_rows(stored, fitter.row_fit, coefficients, variance, mean, parallel=True)
        results.append((status, coefficients, variance, mean))
    (status_c, *fit_c), (status_f, *fit_f) = results
    np.testing.assert_array_equal(status_f, status_c)
    done = status_c == 0
    for by_row, by_column in zip(fit_c, fit_f, strict=True):
        np.testing.assert_allclose(by_column[done], by_row[done], rtol=1e-12, atol=1e-12)


def test_lm_fit_of_a_matrix_stored_by_column_is_that_of_its_c_copy() -> None:
    """lm_fit reads a Fortran-ordered matrix (a pandas frame's values) in place; rows with a
    missing value are refitted on their observed samples as for a C-ordered matrix."""
    import manylm

    rng = np.random.default_rng(8)
    design = np.column_stack([np.ones(24), np.repeat([0.0, 1.0], 12), rng.uniform(size=24)])
    y = rng.standard_normal((4000, 24)) + 6
    y[rng.random(y.shape) < 0.01] = np.nan
    by_row = manylm.lm_fit(y, design)
    for stored in (np.asfortranarray(y), _by_column(y, "rows_of_fortran")):
        for n_jobs in (1, 2):
            fit = manylm.lm_fit(stored, design, n_jobs=n_jobs)
            np.testing.assert_allclose(fit.coefficients, by_row.coefficients, rtol=1e-11,
                                       atol=1e-12)
            np.testing.assert_allclose(fit.residual_variance, by_row.residual_variance,
                                       rtol=1e-10)
            np.testing.assert_array_equal(fit.df_residual, by_row.df_residual)
