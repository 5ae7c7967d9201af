"""The trouble flags: they fire on trouble and stay quiet on healthy results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from manylm.report import (
    pvalue_histogram,
    pvalue_shape_notes,
    residual_association,
    residual_df_notes,
    residual_structure_notes,
    significance_notes,
)

RNG = np.random.default_rng(11)


def _mixture(n_null: int, signal: int) -> np.ndarray:
    return np.concatenate([RNG.uniform(size=n_null), RNG.beta(0.1, 10, size=signal)])


def test_healthy_histograms_raise_nothing() -> None:
    for p in (RNG.uniform(size=20_000), _mixture(18_000, 2_000), RNG.uniform(size=150)):
        assert pvalue_shape_notes(pvalue_histogram(p)) == []


def test_spike_near_one() -> None:
    p = np.concatenate([_mixture(9_000, 500), np.ones(1_500)])
    notes = pvalue_shape_notes(pvalue_histogram(p), label="groupB")
    assert len(notes) == 1 and "spike near 1" in notes[0].message
    assert "(groupB)" in notes[0].message and notes[0].level == "warning"


def test_u_shape() -> None:
    p = np.concatenate([RNG.uniform(size=4_000), RNG.beta(0.2, 0.2, size=8_000)])
    notes = pvalue_shape_notes(pvalue_histogram(p))
    assert len(notes) == 1 and "U-shaped" in notes[0].message


class Structure:
    index = pd.Index(["PC1", "PC2", "PC3"])
    variance_explained = pd.Series([0.3, 0.2, 0.01], index=index)
    r_squared = pd.DataFrame({"batch": [0.8, 0.1, 0.9], "sv1": [0.95, 0.0, 0.0],
                              "age": [0.1, 0.35, 0.0]}, index=index)
    p_values = pd.DataFrame({"batch": [1e-8, 0.3, 1e-9], "sv1": [1e-12, 0.9, 0.9],
                             "age": [0.4, 0.01, 0.9]}, index=index)


def test_residual_component_tied_to_batch() -> None:
    notes = residual_structure_notes(residual_association(Structure()), surrogates=["sv1"])
    # PC1 and batch only: sv1 is a surrogate, PC2-age is not significant enough, and PC3
    # carries too little variance.
    assert len(notes) == 1
    assert "PC1 (30% of the residual variance)" in notes[0].message
    assert "tied to batch (R^2 = 0.80" in notes[0].message


def test_residual_df() -> None:
    assert residual_df_notes(np.full(10, 20.0)) == []
    few = residual_df_notes(np.full(10, 2.0), n_samples=5, df_prior=3.1)
    assert len(few) == 1 and "Only 2 residual degree(s)" in few[0].message
    assert "3.1 prior degrees of freedom" in few[0].message and "with 5 samples" in \
        few[0].message
    none = residual_df_notes(np.zeros(10))
    assert "No residual degrees of freedom" in none[0].message


def test_most_features_significant_and_none_significant() -> None:
    notes = significance_notes({"(Intercept)": np.full(100, 1e-10), "groupB": np.ones(100),
                                "ok": np.r_[np.full(10, 0.01), np.ones(90)]})
    assert [(n.level, n.message.split(" ")[0]) for n in notes] == [("warning", "100%"),
                                                                   ("info", "No")]
    assert "(Intercept)" in notes[0].message and "groupB" in notes[1].message
