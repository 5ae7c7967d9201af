"""The reduce steps' merges against doing the same on everything at once."""

from __future__ import annotations

import numpy as np
import pytest

from manylm.engine.prior_reduce import TopCandidates, merge_candidates


@pytest.mark.parametrize("n_top", [0, 1, 7, 40, 500])
def test_merged_candidates_are_the_top_of_all_ties_in_row_order(n_top: int) -> None:
    rng = np.random.default_rng(n_top)
    parts = []
    for first in range(0, 400, 100):
        t = rng.choice([1.0, 2.0, 2.5, 3.0], 30) + rng.choice([0.0, 0.25], 30)  # many ties
        rows = first + rng.choice(100, 30, replace=False)
        order = np.lexsort((rows, -t))
        parts.append(TopCandidates(t[order], rng.random(30)[order], rows[order]))
    merged = merge_candidates(parts, n_top)
    t = np.concatenate([p.t for p in parts])
    rows = np.concatenate([p.rows for p in parts])
    stdev = np.concatenate([p.stdev_unscaled for p in parts])
    expected = np.lexsort((rows, -t))[:n_top]
    np.testing.assert_array_equal(merged.rows, rows[expected])
    np.testing.assert_array_equal(merged.t, t[expected])
    np.testing.assert_array_equal(merged.stdev_unscaled, stdev[expected])


@pytest.mark.parametrize("case", ["constant df", "varying df", "no residual df",
                                  "infinite prior df", "not moderated", "missing"])
def test_a_scalar_prior_gives_each_chunk_the_posteriors_of_the_whole(case: str) -> None:
    """scalar_prior's posteriors made on slices: bit for bit what estimate_prior gives every
    feature."""
    from manylm.engine.prior_reduce import estimate_prior, scalar_prior
    from manylm.engine.run_inputs import prepare_run

    rng = np.random.default_rng(3)
    n = 5000
    design = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    model = prepare_run(np.zeros((2, 8)), design, coef=1, moderate=case != "not moderated").model
    df = np.full(n, 6.0)
    variance = rng.chisquare(4, n) / 4 * 0.3
    if case in ("varying df", "no residual df", "missing"):
        df = rng.choice([2.0, 5.0, 6.0], n)
    if case == "no residual df":
        df[::97] = 0.0
    if case == "missing":
        df[::89] = np.nan
        variance[::89] = np.nan
    if case == "infinite prior df":
        variance = np.full(n, 0.3) * (1 + 1e-9 * rng.standard_normal(n))  # no spread: d0 = inf
    estimate = estimate_prior(model, variance, df, None)
    prior = scalar_prior(model, variance, df)
    assert prior is not None
    np.testing.assert_equal((prior.df_prior, prior.s2_prior, prior.s2_prior_median),
                            (estimate.df_prior, estimate.s2_prior, estimate.s2_prior_median))
    if case == "infinite prior df":
        assert np.isinf(prior.df_prior)
    for start in range(0, n, 1300):
        stop = min(n, start + 1300)
        chunk_df = df[start:stop]
        if case == "constant df":  # as a dense fit keeps it: one value broadcast
            chunk_df = np.broadcast_to(chunk_df[0], chunk_df.shape)
        chunk = prior.posterior(variance[start:stop], chunk_df)
        np.testing.assert_array_equal(chunk["s2_post"], estimate.s2_post[start:stop])
        np.testing.assert_array_equal(chunk["df_total"], estimate.df_total[start:stop])
        assert chunk["df_prior"] == estimate.df_prior
        np.testing.assert_array_equal(chunk["s2_prior"], estimate.s2_prior)


def test_no_scalar_prior_when_it_varies_by_feature() -> None:
    """With a trend, robust, or one feature, the prior is per feature: scalar_prior says so."""
    from manylm.engine.prior_reduce import scalar_prior
    from manylm.engine.run_inputs import prepare_run

    rng = np.random.default_rng(4)
    design = np.column_stack([np.ones(8), np.repeat([0.0, 1.0], 4)])
    variance, df = rng.chisquare(4, 300) / 4, np.full(300, 6.0)
    for options in ({"trend": True}, {"robust": True}):
        model = prepare_run(np.zeros((2, 8)), design, coef=1, **options).model
        assert scalar_prior(model, variance, df) is None
    model = prepare_run(np.zeros((2, 8)), design, coef=1).model
    assert scalar_prior(model, variance[:1], df[:1]) is None
