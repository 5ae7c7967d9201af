"""The compiled |z| screen of the scan's product tiles, and the tiles and phenotypes around it."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.qtl.correlation_scan import PhenotypeOperands, screening_margin, trans_hits
from manylm.qtl.genotype_terms import genotype_terms
from manylm.qtl.residualize import residualize, standardize_phenotypes
from manylm.qtl.screen_kernel import magnitude_bounds, screen_magnitude


def _reference(products: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero(np.abs(products) >= bounds[:, None])


def _screen(products: np.ndarray, bounds: np.ndarray, capacity: int = 10_000
            ) -> tuple[int, np.ndarray, np.ndarray]:
    rows, columns = np.empty(capacity, np.intp), np.empty(capacity, np.intp)
    count = screen_magnitude(products, bounds, rows, columns)
    return count, rows[:min(count, capacity)], columns[:min(count, capacity)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [1, 7, 64, 1000])
def test_screen_matches_numpy(dtype, width) -> None:
    rng = np.random.default_rng(width)
    products = rng.normal(scale=0.05, size=(37, width)).astype(dtype)
    bounds = rng.uniform(0.05, 0.15, 37).astype(dtype)
    bounds[3] = np.abs(products[3, width // 2])  # an entry exactly on its bound passes
    count, rows, columns = _screen(products, bounds)
    expected_rows, expected_columns = _reference(products, bounds)
    assert count == len(expected_rows) > 0
    np.testing.assert_array_equal(rows, expected_rows)  # row-major order, as np.nonzero
    np.testing.assert_array_equal(columns, expected_columns)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_screen_without_hits(dtype) -> None:
    products = np.full((5, 300), 0.1, dtype=dtype)
    products[2, 17] = -0.2
    assert _screen(products, np.full(5, 0.25, dtype=dtype))[0] == 0
    assert _screen(products[:0], np.zeros(0, dtype=dtype))[0] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_screen_every_entry_and_too_little_room(dtype) -> None:
    products = np.arange(-60, 60, dtype=dtype).reshape(4, 30)
    bounds = np.zeros(4, dtype=dtype)  # p threshold 1: every pair passes
    count, rows, columns = _screen(products, bounds, capacity=50)
    assert count == 120  # the true number, although only 50 were recorded
    np.testing.assert_array_equal(rows * 30 + columns, np.arange(50))
    count, rows, columns = _screen(products, bounds, capacity=count)
    np.testing.assert_array_equal(rows * 30 + columns, np.arange(120))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_screen_never_keeps_nan(dtype) -> None:
    products = np.full((3, 80), np.nan, dtype=dtype)
    products[1, 5] = 0.5
    products[2, 79] = -np.inf
    count, rows, columns = _screen(products, np.zeros(3, dtype=dtype))
    assert count == 2
    assert list(zip(rows, columns, strict=True)) == [(1, 5), (2, 79)]


def test_screen_of_a_strided_tile_and_other_dtype_bounds() -> None:
    rng = np.random.default_rng(3)
    products = rng.normal(size=(20, 50)).astype(np.float32)[:, ::2]
    bounds = np.full(20, 1.5)  # float64 bounds on float32 products
    count, rows, columns = _screen(products, bounds)
    expected_rows, expected_columns = _reference(products, bounds.astype(np.float32))
    assert count == len(expected_rows) > 0
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(columns, expected_columns)


def test_magnitude_bounds_never_exceed_the_float64_bound() -> None:
    rng = np.random.default_rng(4)
    fraction = np.concatenate([rng.uniform(0, 0.2, 1000), [0.0, 1e-6, 1.5]])
    margin = screening_margin(np.dtype(np.float32), 445)
    exact = np.sqrt(np.maximum(fraction - margin, 0))
    narrow = magnitude_bounds(fraction, margin, np.dtype(np.float32))
    assert narrow.dtype == np.float32
    assert (narrow.astype(np.float64) <= exact).all()
    assert (narrow.astype(np.float64) >= np.nextafter(exact.astype(np.float32), 0)).all()
    assert narrow[-3] == narrow[-2] == 0  # below the margin: everything is a candidate
    np.testing.assert_array_equal(magnitude_bounds(fraction, margin, np.dtype(np.float64)),
                                  exact)


def _operands(n_phenotypes: int, n_samples: int, q: np.ndarray, dtype: np.dtype,
              seed: int = 5) -> PhenotypeOperands:
    rng = np.random.default_rng(seed)
    standardized = standardize_phenotypes(rng.normal(size=(n_phenotypes, n_samples)), q,
                                          np.arange(n_phenotypes).astype(str))
    return PhenotypeOperands.build(standardized.values, standardized.residual_norm, dtype)


@pytest.mark.parametrize("fraction_value", [0.0, 0.05, 2.0])
def test_trans_hits_same_pairs_in_both_dtypes_sorted(fraction_value) -> None:
    """Every pair (fraction 0), some, or none; several tiles and threads; sorted output."""
    rng = np.random.default_rng(6)
    n_samples, n_variants, n_phenotypes = 60, 70, 130
    q = np.linalg.qr(np.column_stack([np.ones(n_samples), rng.normal(size=n_samples)]))[0]
    dosages = rng.binomial(2, 0.3, (n_variants, n_samples)).astype(np.float64)
    terms = genotype_terms(dosages, q, model="linear", interaction=None, maf=0.0,
                           missing="complete", max_missing_exact=32)
    fraction = np.full(n_variants, fraction_value)
    found = {}
    for dtype in (np.float64, np.float32):
        operands = _operands(n_phenotypes, n_samples, q, np.dtype(dtype))
        for threads in (1, 2):
            hits = trans_hits(terms, operands, "linear", fraction, n_threads=threads,
                              tile_columns=48)
            key = hits.rows * n_phenotypes + hits.columns
            assert (np.diff(key) > 0).all()  # by variant, then phenotype
            found[dtype, threads] = hits
    reference = found[np.float64, 1]
    z = np.einsum("vn,pn->vp", terms.directions[0], operands.values)
    expected = np.flatnonzero(z.ravel() ** 2 >= fraction_value - screening_margin(
        np.dtype(np.float64), n_samples))
    np.testing.assert_array_equal(reference.rows * n_phenotypes + reference.columns, expected)
    passing = reference.z[0] ** 2 >= fraction_value
    for (dtype, _), hits in found.items():
        if dtype == np.float64:
            np.testing.assert_array_equal(hits.rows, reference.rows)
            np.testing.assert_array_equal(hits.columns, reference.columns)
            np.testing.assert_array_equal(hits.z, reference.z)
        else:  # a wider margin: a superset of candidates, recomputed in float64
            key = hits.rows * n_phenotypes + hits.columns
            assert np.isin(expected, key).all()
            kept = hits.z[0] ** 2 >= fraction_value
            np.testing.assert_array_equal(key[kept], expected[passing])
            np.testing.assert_allclose(hits.z[:, kept], reference.z[:, passing],
                                       rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("order", ["C", "F"])
def test_standardize_phenotypes_is_residualize_whatever_the_threads(order) -> None:
    rng = np.random.default_rng(7)
    n_samples = 50
    q = np.linalg.qr(np.column_stack([np.ones(n_samples), rng.normal(size=n_samples)]))[0]
    values = np.asarray(rng.normal(size=(2500, n_samples)) + 100.0, order=order)
    values[1200] = 4.0  # constant: not kept
    residuals = residualize(values, q)
    norm = np.linalg.norm(residuals, axis=1)
    kept = np.delete(np.arange(2500), 1200)
    expected = residuals[kept] / norm[kept, None]
    for threads in (1, 2):
        result = standardize_phenotypes(values, q, np.arange(2500).astype(str),
                                        n_threads=threads)
        assert result.values.flags.c_contiguous
        np.testing.assert_array_equal(result.kept, kept)
        np.testing.assert_array_equal(result.constant, [1200])
        np.testing.assert_array_equal(result.residual_norm, norm[kept])
        np.testing.assert_array_equal(result.values, expected)


def test_by_sample_is_made_on_demand() -> None:
    values = np.arange(12.0).reshape(3, 4)
    operands = PhenotypeOperands.build(values, np.ones(3), np.dtype(np.float32))
    assert "by_sample" not in vars(operands)
    np.testing.assert_array_equal(operands.by_sample, values.T)
    assert operands.by_sample.flags.c_contiguous
    assert operands.product_values.dtype == np.float32
