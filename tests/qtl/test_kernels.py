"""The pure kernels of the scan: thresholds, BH from written pairs, complete-case algebra."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from manylm.inference import p_adjust
from manylm.qtl import bh_adjust_written
from manylm.qtl.missing_genotypes import missing_samples_structure
from manylm.qtl.thresholds import explained_fraction_threshold, f_p_value, t_p_value


@pytest.mark.parametrize("p_threshold", [0.5, 1e-5, 1e-30])
@pytest.mark.parametrize(("df", "n_terms"), [(10, 1), (418, 1), (50, 2)])
def test_fraction_threshold_is_the_p_threshold(p_threshold, df, n_terms) -> None:
    fraction = float(explained_fraction_threshold(p_threshold, np.array([df]),
                                                  np.array([n_terms]))[0])
    f = (fraction / n_terms) / ((1 - fraction) / df)
    p = f_p_value(np.array([f]), np.array([float(n_terms)]), np.array([float(df)]))[0]
    assert p == pytest.approx(p_threshold, rel=1e-9)
    if n_terms == 1:
        t = np.sqrt(f)
        assert t_p_value(np.array([t]), np.array([float(df)]))[0] == pytest.approx(
            2 * stats.t.sf(t, df), rel=1e-12)


def test_fraction_threshold_extremes() -> None:
    df, terms = np.array([5, 9]), np.array([1, 1])
    assert (explained_fraction_threshold(1.0, df, terms) == 0).all()
    assert (explained_fraction_threshold(0.0, df, terms) > 1).all()


def test_bh_of_written_pairs() -> None:
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=5000), rng.beta(0.1, 20, 200)])
    full = p_adjust(p, "BH")
    assert np.array_equal(bh_adjust_written(p, len(p)), full)
    threshold = 1e-3
    written = p <= threshold
    adjusted = bh_adjust_written(p[written], len(p))
    exact = adjusted <= threshold
    assert exact.any()
    np.testing.assert_allclose(adjusted[exact], full[written][exact], rtol=1e-15)
    assert (adjusted >= full[written] - 1e-15).all()


def test_complete_case_inner_product_equals_refitting() -> None:
    """<a, b>_M equals the residual cross-product after dropping the missing samples."""
    rng = np.random.default_rng(2)
    n = 40
    covariates = np.column_stack([np.ones(n), rng.normal(size=n), np.repeat([0.0, 1.0], 20)])
    q, _ = np.linalg.qr(covariates)
    a, b = rng.normal(size=n), rng.normal(size=n)
    missing = np.zeros((2, n), dtype=bool)
    missing[0, [3, 17, 25]] = True
    missing[1, 20:] = True  # removes every sample of the second group: rank drops
    structure = missing_samples_structure(q, missing)
    assert list(structure.rank) == [3, 19]
    residual = lambda x: x - q @ (q.T @ x)  # noqa: E731
    inner = structure.inner(np.stack([residual(a)] * 2), np.stack([residual(b)] * 2))
    for row in range(2):
        kept = ~missing[row]
        design = covariates[kept]
        hat = design @ np.linalg.pinv(design)
        expected = a[kept] @ (b[kept] - hat @ b[kept])
        assert inner[row] == pytest.approx(expected, rel=1e-10)


def test_threads_split_variants_when_phenotypes_are_few() -> None:
    import pandas as pd

    from manylm.qtl import scan

    rng = np.random.default_rng(4)
    samples = [f"s{i}" for i in range(50)]
    genotypes = pd.DataFrame(rng.binomial(2, 0.4, (300, 50)).astype(float), columns=samples)
    phenotypes = pd.DataFrame(rng.normal(size=(3, 50)), columns=samples)
    tables = [scan(genotypes, phenotypes, p_threshold=1.0, n_threads=threads).table
              .sort_values(["variant", "phenotype"]).reset_index(drop=True)
              for threads in (1, 2)]
    assert len(tables[0]) == 900
    pd.testing.assert_frame_equal(tables[0], tables[1], rtol=1e-12)
