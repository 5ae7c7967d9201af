"""The tabulated Student t tail used for long vectors on one df."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from manylm.moderate.student_t import student_t_sf
from manylm.moderate.student_t_table import tail_table


def _statistics(rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([
        rng.standard_normal(50_000) * 4,
        np.geomspace(1e-10, 1e300, 20_000),
        -np.geomspace(1e-10, 1e300, 2_000),
        [0.0, -0.0, 1e-320, np.inf, -np.inf, np.nan],
    ])


@pytest.mark.parametrize("df", [1.3, 2.5, 4.0, 11.7, 97.3, 104.25, 1e4, 1e6])
def test_tabulated_tail_matches_stdtr(df: float) -> None:
    t = _statistics(np.random.default_rng(int(df)))
    expected = special.stdtr(df, -t)
    got = student_t_sf(t, np.full(t.size, df))
    assert tail_table(df) is not None  # the table was used
    positive = expected > 0
    np.testing.assert_allclose(got[positive], expected[positive], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(got[~positive], expected[~positive])  # 0 where it underflows
    assert got[-6] == 0.5 and got[-5] == 0.5 and got[-3] == 0.0 and got[-2] == 1.0
    assert np.isnan(got[-1])


def test_tabulated_tail_matches_closed_forms() -> None:
    t = np.geomspace(1e-8, 1e100, 30_000)
    # df = 1 (Cauchy): P(T > t) = atan(1 / t) / pi; df = 2: (1 - t / sqrt(2 + t^2)) / 2.
    np.testing.assert_allclose(student_t_sf(t, 1.0), np.arctan2(1.0, t) / np.pi, rtol=1e-12)
    small = t[t < 1e6]
    two = 1.0 / (np.sqrt(2 + small**2) * (np.sqrt(2 + small**2) + small))  # (1 - t/r)/2, exact
    np.testing.assert_allclose(student_t_sf(small, 2.0), two, rtol=1e-12)


def test_per_feature_df_and_short_vectors_use_stdtr() -> None:
    rng = np.random.default_rng(3)
    t = rng.standard_normal(20_000) * 3
    df = rng.uniform(3, 50, t.size)
    np.testing.assert_array_equal(student_t_sf(t, df), special.stdtr(df, -t))
    np.testing.assert_array_equal(student_t_sf(t[:10], 7.5), special.stdtr(7.5, -t[:10]))
    assert tail_table(np.inf) is None and tail_table(0.5) is None


def test_a_few_distinct_df_get_a_table_each() -> None:
    rng = np.random.default_rng(5)
    n = 30_000
    t = np.concatenate([rng.standard_normal(n) * 4, [np.nan, np.inf, -np.inf, 0.0]])
    # missing values: most features on 97.3 total df, some on 96.3 / 95.3, a rare one, NaN, inf
    df = rng.choice([97.3, 96.3, 95.3, 12.0, np.nan, np.inf], t.size,
                    p=[0.7, 0.15, 0.1, 0.02, 0.02, 0.01])
    expected = np.where(np.isinf(df), special.ndtr(-t), special.stdtr(df, -t))
    got = student_t_sf(t, df)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))


def test_distinct_values_gives_up_beyond_the_limit() -> None:
    from manylm.moderate.distinct_values import distinct_values

    values, labels, counts = distinct_values(np.array([3.0, 3.0, np.nan, 5.0, np.nan, 3.0]), 4)
    np.testing.assert_array_equal(values[:2], [3.0, np.nan])
    assert values[2] == 5.0 and list(labels) == [0, 0, 1, 2, 1, 0] and list(counts) == [3, 2, 1]
    assert distinct_values(np.arange(10.0), 4)[0].size == 0


def test_quantile_per_distinct_df_equals_scipy() -> None:
    """A few distinct df (missing values) by one scan; NaN and negative df give NaN."""
    from manylm.moderate.student_t import student_t_quantile

    df = np.array([3.0, 4.0, np.nan, np.inf, 4.0, 3.0, -1.0, 92.5])
    got = student_t_quantile(0.975, df)
    finite = np.isfinite(df) & (df > 0)
    expected = np.full(df.shape, np.nan)
    expected[finite] = special.stdtrit(df[finite], 0.975)
    expected[3] = special.ndtri(0.975)
    np.testing.assert_array_equal(got, expected)
    many = np.linspace(1.0, 40.0, 200)  # more distinct df than the scan takes: sorted instead
    np.testing.assert_array_equal(student_t_quantile(0.9, many), special.stdtrit(many, 0.9))
