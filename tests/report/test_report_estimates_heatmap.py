"""Distribution of estimates and the residual-structure heat map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from report_data import COEF

from manylm.errors import InputError
from manylm.report import (
    estimate_distribution,
    plot_estimate_distribution,
    plot_residual_association,
    residual_association,
)


def test_estimate_histograms_share_bins_and_count_every_value(bladder) -> None:
    data = estimate_distribution(bladder.result)
    names = [n for n in bladder.design.coefficient_names if n != "Intercept"]
    assert list(data.counts.columns) == names
    assert (data.counts.sum() == 2026).all()
    column = bladder.fit.coefficients[:, bladder.design.coefficient_names.index(COEF)]
    assert data.summary.at[COEF, "median"] == pytest.approx(np.median(column))
    assert data.summary.at[COEF, "n_clipped"] == int(
        np.sum((column < data.edges[0]) | (column > data.edges[-1])))
    pytest.importorskip("matplotlib")
    axes = plot_estimate_distribution(data).axes[0]
    assert [t.get_text().split(" (")[0] for t in axes.get_legend().get_texts()] == names
    with pytest.raises(InputError, match="not coefficient"):
        estimate_distribution(bladder.result, ["nope"])


class Structure:
    variance_explained = pd.Series([0.5, 0.3, 0.1], index=["PC1", "PC2", "PC3"])
    r_squared = pd.DataFrame([[0.9, 0.0], [0.1, 0.2], [0.0, 0.7]], index=["PC1", "PC2", "PC3"],
                             columns=["batch", "$age$"])
    p_values = pd.DataFrame([[1e-9, 0.9], [0.4, 0.2], [0.9, 1e-4]], index=["PC1", "PC2", "PC3"],
                            columns=["batch", "$age$"])


def test_heat_map_cells_and_labels() -> None:
    data = residual_association(Structure(), max_components=2)
    assert list(data.r_squared.index) == ["PC1", "PC2"]
    pytest.importorskip("matplotlib")
    axes = plot_residual_association(data).axes[0]
    np.testing.assert_allclose(axes.images[0].get_array(), data.r_squared.to_numpy())
    assert [t.get_text() for t in axes.texts] == ["0.90*", "0.00", "0.10", "0.20"]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["batch", "$age$"]
    assert all(not t.get_parse_math() for t in axes.get_xticklabels())
    assert [t.get_text() for t in axes.get_yticklabels()] == ["PC1 (50.0%)", "PC2 (30.0%)"]


def test_heat_map_input_checks() -> None:
    with pytest.raises(InputError, match="r_squared, p_values"):
        residual_association(object())

    class Mismatched(Structure):
        p_values = Structure.p_values.iloc[:2]
    with pytest.raises(InputError, match="same"):
        residual_association(Mismatched())
