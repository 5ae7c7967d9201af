"""Shortcuts of the moderation for large fits against the general paths: fit_f_dist's one-pass
moments (one df, or a few distinct df), the B-statistic with one r and d, the largest |t| by a
sampled threshold."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import manylm
from manylm.moderate import fdist
from manylm.moderate.distinct_values import broadcast_value


def _with_and_without(shortcut: str, x: np.ndarray, df: object
                      ) -> tuple[fdist.FDistFit, fdist.FDistFit]:
    """fit_f_dist as it is, and with the shortcut ``fdist.<shortcut>`` declining (None)."""
    fast = fdist.fit_f_dist(x, df)
    original = getattr(fdist, shortcut)
    try:
        setattr(fdist, shortcut, lambda *args: None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            general = fdist.fit_f_dist(x, df)
    finally:
        setattr(fdist, shortcut, original)
    return fast, general


def _both(x: np.ndarray, df: object) -> tuple[fdist.FDistFit, fdist.FDistFit]:
    return _with_and_without("_log_moments", x, df)


@pytest.mark.parametrize("n", [2, 3, 50, 250_001])
def test_one_pass_moments_equal_the_general_path(n: int) -> None:
    rng = np.random.default_rng(n)
    x = 0.05 * 4 / rng.chisquare(4, n) * rng.chisquare(20, n) / 20
    if n >= 50:
        x[:: n // 7] = np.nan  # left out of both
        x[1] = -1.0  # so is a negative variance
    for df in (np.broadcast_to(20.0, (n,)), 20.0):
        fast, general = _both(x, df)
        np.testing.assert_allclose([fast.scale, fast.df2], [general.scale, general.df2],
                                   rtol=1e-12)


@pytest.mark.parametrize("change", ["zero", "tiny", "constant"])
def test_cases_the_one_pass_path_leaves_to_the_general_one(change: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.chisquare(10, 1000) / 10
    if change == "zero":
        x[3] = 0.0  # offset (and warned about) as limma does
    elif change == "tiny":
        x[3] = 1e-9  # below 1e-5 of the median: offset
    elif change == "constant":
        x[:] = 2.0  # no spread: d0 is infinite, s0^2 the mean
    df = np.broadcast_to(10.0, x.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast, general = _both(x, df)
    assert (fast.scale, fast.df2) == (general.scale, general.df2)
    if change == "constant":
        assert fast.df2 == np.inf and fast.scale == pytest.approx(2.0)


def _by_df_and_general(x: np.ndarray, df: np.ndarray
                       ) -> tuple[fdist.FDistFit, fdist.FDistFit]:
    return _with_and_without("_from_moments_by_df", x, df)


@pytest.mark.parametrize("n", [3, 50, 250_001])
def test_moments_by_distinct_df_equal_the_general_path(n: int) -> None:
    """Missing values make a few distinct df: one pass with per-df digamma/trigamma terms."""
    rng = np.random.default_rng(n)
    df = rng.choice([94.0, 93.0, 92.0, 0.0, np.nan], n, p=[0.85, 0.1, 0.03, 0.01, 0.01])
    df[:3] = [94.0, 93.0, 92.0]
    x = 0.05 * 4 / rng.chisquare(4, n) * rng.chisquare(np.nan_to_num(df) + 1, n) / (
        np.nan_to_num(df) + 1)
    if n >= 50:
        x[:: n // 7] = np.nan
        x[4] = -1.0
    fast, general = _by_df_and_general(x, df)
    assert fdist._from_moments_by_df(x, df) is not None
    np.testing.assert_allclose([fast.scale, fast.df2], [general.scale, general.df2],
                               rtol=1e-12)


@pytest.mark.parametrize("change", ["zero", "tiny", "constant", "many df"])
def test_cases_the_by_df_path_leaves_to_the_general_one(change: str) -> None:
    rng = np.random.default_rng(3)
    df = rng.choice([10.0, 9.0], 1000)
    x = rng.chisquare(10, 1000) / 10
    if change == "zero":
        x[3] = 0.0
    elif change == "tiny":
        x[3] = 1e-9
    elif change == "constant":
        x[:] = 2.0
    else:
        df = np.linspace(2.0, 12.0, 1000)  # more distinct df than the one-pass path takes
    assert fdist._from_moments_by_df(x, df) is None
    fast, general = _by_df_and_general(x, df)
    assert (fast.scale, fast.df2) == (general.scale, general.df2)


def test_broadcast_value() -> None:
    assert broadcast_value(np.broadcast_to(3.0, (5,))) == 3.0
    assert broadcast_value(np.full(5, 3.0)) is None  # a real array is not assumed constant
    assert broadcast_value(np.broadcast_to(3.0, (0,))) is None
    assert broadcast_value(np.asarray(3.0)) is None


def test_dense_fit_moderates_with_one_df_value() -> None:
    """A dense fit's df stay one broadcast value through eBayes; results as with a full array."""
    rng = np.random.default_rng(3)
    y = rng.standard_normal((500, 12)) * rng.uniform(0.5, 2, (500, 1))
    design = np.column_stack([np.ones(12), np.repeat([0.0, 1.0], 6)])
    fit = manylm.lm_fit(y, design)
    assert fit.df_residual.strides == (0,)
    eb = manylm.ebayes(fit)
    assert eb.df_total.strides == (0,) and eb.df_total[0] == 10 + eb.df_prior
    # the same values, materialised
    full = manylm.ebayes(dataclasses.replace(fit, df_residual=np.array(fit.df_residual)))
    np.testing.assert_allclose(eb.s2_post, full.s2_post, rtol=1e-12)
    np.testing.assert_allclose(eb.t, full.t, rtol=1e-12)
    np.testing.assert_allclose(eb.p_value, full.p_value, rtol=1e-12)


@pytest.mark.parametrize("df_prior", [4.0, np.inf])
def test_lods_with_one_df_equal_the_general_kernel(df_prior: float) -> None:
    from manylm.moderate.bstatistic import lods

    rng = np.random.default_rng(2)
    t = rng.standard_normal(100_001) * 3
    t[5] = np.nan
    stdev = np.broadcast_to(0.3, t.shape)
    df_total = np.broadcast_to(13.0, t.shape)
    one = lods(t, stdev, 0.7, df_total, df_prior, 0.01)
    general = lods(t, np.array(stdev), 0.7, np.array(df_total), df_prior, 0.01)
    np.testing.assert_array_equal(one, general)


@pytest.mark.parametrize("seed", range(6))
def test_largest_first_through_a_sampled_threshold(seed: int) -> None:
    """The k largest |t| (ties in input order) as a full stable sort gives, whatever the ties."""
    from manylm.moderate.bstatistic import _largest_first

    rng = np.random.default_rng(seed)
    n = int(rng.integers(70_000, 300_000))
    values = np.abs(rng.standard_normal(n) * 2)
    if seed % 2:
        values = np.round(values, 1)  # many ties
    if seed % 3 == 0:
        values[: n // 2] = values.max()  # more ties at the top than k
    for k in (1, 17, n // 100, n // 64):
        np.testing.assert_array_equal(_largest_first(values, k),
                                      np.argsort(-values, kind="stable")[:k])


def test_features_without_residual_df_when_the_prior_has_none() -> None:
    """One usable variance: the prior df is 0, and features with no residual df get NaN
    statistics (0 / 0 in the posterior variance), as limma gives them, not an error."""
    import pandas as pd

    samples = pd.DataFrame({"g": ["a", "a", "b", "b"]}, index=["s1", "s2", "s3", "s4"])
    y = pd.DataFrame([[1, 2, 3.5, 4], [1, np.nan, 3, np.nan], [np.nan, 2, np.nan, 5]],
                     index=["f1", "f2", "f3"], columns=samples.index)
    result = manylm.ebayes(manylm.lm_fit(y, "~ g", samples=samples))
    assert result.df_prior == 0
    table = result.top_table("g[T.b]", sort_by="none")
    assert np.isfinite(table.loc["f1", "t"])
    assert table.loc[["f2", "f3"], "t"].isna().all()


def test_log_moments_are_summed_in_slice_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parts of the one-pass moments are added in slice order, whatever order the threads
    finish in: the same prior bits every run."""
    rng = np.random.default_rng(9)
    x = 0.05 * 4 / rng.chisquare(4, 400_000)
    df = rng.choice([94.0, 93.0], x.size)

    def backwards(function, n_items, *, min_items=40_000):  # the last slice first
        bounds = [n_items * i // 4 for i in range(5)]
        for i in reversed(range(4)):
            function(slice(bounds[i], bounds[i + 1]))

    monkeypatch.setattr(fdist, "parallel_slices", backwards)
    forwards_bounds = [400_000 * i // 4 for i in range(5)]

    def forwards(function, n_items, *, min_items=40_000):
        for i in range(4):
            function(slice(forwards_bounds[i], forwards_bounds[i + 1]))

    got_backwards = (fdist.fit_f_dist(x, 94.0), fdist.fit_f_dist(x, df))
    monkeypatch.setattr(fdist, "parallel_slices", forwards)
    got_forwards = (fdist.fit_f_dist(x, 94.0), fdist.fit_f_dist(x, df))
    assert got_backwards == got_forwards
