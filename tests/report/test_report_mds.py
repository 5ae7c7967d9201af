"""Sample MDS against limma's plotMDS (tests/reference/report_diagnostics.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from manylm.errors import InputError
from manylm.io import read_matrix
from manylm.report import plot_sample_mds, sample_mds
from manylm.report.pairwise_distances import leading_squared_distances
from reference_data import read_reference

# The distances are partial sums of the same squared differences as R's, in another order;
# the eigen decomposition (LAPACK dsyevd here, dsyevr in R) agrees to about 1e-12.
MDS_TOLERANCE = 1e-9


def _limma(case: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return (read_reference(f"report/{case}.coordinates.tsv"),
            read_reference(f"report/{case}.eigen.tsv"),
            read_reference(f"report/{case}.centred.tsv.gz"))


def _assert_matches(ours, case: str) -> None:
    coordinates, eigen, centred = _limma(case)
    scale = float(np.abs(centred.to_numpy()).max())
    np.testing.assert_allclose(ours.centred.to_numpy(), centred.to_numpy(),
                               atol=MDS_TOLERANCE * scale, rtol=0)
    np.testing.assert_allclose(ours.eigenvalues, eigen["eigen_value"],
                               atol=MDS_TOLERANCE * scale, rtol=0)
    np.testing.assert_allclose(ours.var_explained, eigen["var_explained"],
                               atol=MDS_TOLERANCE, rtol=0)
    for k in range(ours.coordinates.shape[1]):
        mine = ours.coordinates.iloc[:, k].to_numpy()
        theirs = coordinates[f"dim{k + 1}"].to_numpy()
        sign = np.sign(mine @ theirs)  # eigenvector signs are arbitrary
        np.testing.assert_allclose(sign * mine, theirs,
                                   atol=MDS_TOLERANCE * np.abs(theirs).max(), rtol=0)
    assert list(ours.coordinates.index) == list(coordinates.index)


def test_pairwise_matches_plotmds() -> None:
    expression = read_matrix("tests/reference/inputs/bladder_expr.tsv.gz")
    ours = sample_mds(expression, top=500, n_dimensions=3)
    _assert_matches(ours, "mds_pairwise")
    assert ours.top == 500 and ours.n_features_used == 2026


def test_pairwise_with_missing_rows_matches_plotmds() -> None:
    expression = read_matrix("tests/reference/inputs/bladder_missing_expr.tsv.gz")
    ours = sample_mds(expression, top=100, n_dimensions=3)
    _assert_matches(ours, "mds_pairwise_missing")
    assert ours.n_features_used == 381


def test_common_selection_matches_plotmds() -> None:
    expression = read_matrix("tests/reference/inputs/bladder_expr.tsv.gz")
    ours = sample_mds(expression, top=500, gene_selection="common", n_dimensions=3)
    _assert_matches(ours, "mds_common")
    assert ours.axis_label == "Principal Component"


def test_top_larger_than_the_matrix_matches_plotmds() -> None:
    expression = read_matrix("tests/reference/inputs/synth_small_expr.tsv.gz")
    ours = sample_mds(expression, top=500, n_dimensions=3)
    _assert_matches(ours, "mds_small")
    assert ours.top == 300


def test_screened_distances_equal_the_direct_ones() -> None:
    rng = np.random.default_rng(7)
    # Heteroscedastic features, a block of true differences and two near-identical samples.
    values = rng.normal(8, 1, size=(6_000, 14)) * rng.gamma(2, 0.5, size=(6_000, 1))
    values[:300, :7] += rng.normal(0, 2, size=(300, 1))
    values[:, 13] = values[:, 12] + rng.normal(0, 1e-3, 6_000)
    direct = leading_squared_distances(values, 200)
    for subset in (500, 1_000, 3_000):
        screened = leading_squared_distances(values, 200, subset_size=subset)
        np.testing.assert_allclose(screened, direct, rtol=1e-13, atol=0)


def test_plot_labels_are_literal_and_coloured_by_group() -> None:
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(3)
    names = ["$x$", "<b>", "s3", "s4", "s5"]
    data = sample_mds(pd.DataFrame(rng.normal(size=(100, 5)), columns=names))
    groups = pd.Series(["a", "a", "b", "b", None], index=names, name="group")
    axes = plot_sample_mds(data, groups=groups).axes[0]
    assert sorted(t.get_text() for t in axes.texts) == sorted(names)
    assert all(not t.get_parse_math() for t in axes.texts)
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["a", "b", "(missing)"]
    assert axes.get_xlabel().startswith("Leading logFC dim 1 (")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"top": 0}, "top"), ({"gene_selection": "all"}, "gene_selection"),
    ({"n_dimensions": 9}, "n_dimensions")])
def test_bad_options(kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        sample_mds(np.ones((10, 4)), **kwargs)


def test_needs_three_samples_and_complete_rows() -> None:
    with pytest.raises(InputError, match="at least 3 samples"):
        sample_mds(np.ones((10, 2)))
    with pytest.raises(InputError, match="finite value in every sample"):
        sample_mds(np.array([[1.0, np.nan, 2.0, 3.0]] * 5))
