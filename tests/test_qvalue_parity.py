"""q-values, pi0, local FDR and propTrueNull against R qvalue 2.30.0 / limma 3.54.1 / stats 4.2.2.

References: tests/reference/qvalue.R and tests/reference/qvalue/ (README.md there). Five p-value
vectors: limma p-values of the bladder data, uniform nulls, a strong signal, one with NaNs, ties
and exact 0/1, and the 200 committed p-values. Achieved: pi0 and q-values to ~1e-14 (bar 1e-6),
local FDR to ~1e-12 (bar 1e-4), the bootstrap pi0 and its q-values bit for bit, propTrueNull
to 1e-16, smooth.spline fits, leverages and predictions to ~1e-12. The tolerances below keep
a margin over that for other platforms' BLAS/FFT rounding.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtri

from manylm.errors import DataError, InputError, ManylmWarning
from manylm.inference import (
    local_fdr,
    pi0_estimate,
    prop_true_null,
    qvalue,
    smooth_spline,
)
from manylm.inference.kernel_density import gaussian_density
from reference_data import REFERENCE, assert_close

CASES = ["bladder", "uniform", "strong", "nan_ties", "small"]
SPLINES = ["df3", "gcv512", "ties_weights_spar", "cv30", "df6_allknots"]
Q_TOL = 1e-9
LFDR_TOL = 1e-8
SPLINE_TOL = 1e-8
# df6_allknots has 122 B-spline coefficients for 120 points and a tiny penalty: the system's
# condition number is ~1e10, so R's own rounding moves its df in the 8th digit and the spar
# search lands ~2e-8 away; 1e-5 is what such a fit can be compared to.
ILL_CONDITIONED_TOL = 1e-5


def read_exact(name: str) -> pd.DataFrame:
    """A reference table parsed with correct rounding (pandas' default parser can be 1 ulp off).

    Used where the comparison is for equality.
    """
    return pd.read_csv(REFERENCE / name, sep="\t", index_col=0, na_values=["NA", "NaN"],
                       keep_default_na=False, dtype={0: str}, float_precision="round_trip")


@pytest.fixture(scope="module")
def scalars() -> pd.DataFrame:
    return read_exact("qvalue/scalars.tsv")


def scalar(table: pd.DataFrame, case: str, name: str) -> float:
    rows = table[(table.index == case) & (table["name"] == name)]
    assert len(rows) == 1, (case, name)
    return float(rows["value"].iloc[0])


def case_table(case: str) -> pd.DataFrame:
    return read_exact(f"qvalue/{case}.tsv.gz")


@pytest.mark.parametrize("case", CASES)
def test_smoother_pi0_q_values_and_lfdr(case: str, scalars: pd.DataFrame) -> None:
    reference = case_table(case)
    result = qvalue(reference["p"])
    assert result.pi0 == pytest.approx(scalar(scalars, case, "pi0_smoother"), rel=Q_TOL)
    assert_close(result.q_values, reference["q"], Q_TOL, what=f"{case} q")
    assert result.lfdr is not None
    assert_close(result.lfdr, reference["lfdr"], LFDR_TOL, what=f"{case} lfdr")
    curve = read_exact(f"qvalue/{case}.pi0.tsv")
    assert result.lambdas is not None and result.pi0_by_lambda is not None
    np.testing.assert_array_equal(result.lambdas, curve.index.astype(float))
    np.testing.assert_array_equal(result.pi0_by_lambda, curve["pi0_lambda"])
    assert_close(result.pi0_smoothed, curve["pi0_smooth"], Q_TOL, what=f"{case} pi0 smooth")


@pytest.mark.parametrize("case", CASES)
def test_bootstrap_pi0_is_exact(case: str, scalars: pd.DataFrame) -> None:
    # qvalue's "bootstrap" is a closed-form MSE estimate, deterministic: bit-for-bit agreement.
    reference = case_table(case)
    result = qvalue(reference["p"], pi0_method="bootstrap")
    assert result.pi0 == scalar(scalars, case, "pi0_bootstrap")
    np.testing.assert_array_equal(result.q_values, reference["q_bootstrap"])
    assert_close(result.lfdr, reference["lfdr_bootstrap"], LFDR_TOL, what=f"{case} lfdr")
    estimate = pi0_estimate(reference["p"], method="bootstrap")
    assert estimate.pi0 == result.pi0 and estimate.pi0_smoothed is None


@pytest.mark.parametrize("case", CASES)
def test_q_value_options(case: str, scalars: pd.DataFrame) -> None:
    reference = case_table(case)
    p = reference["p"]
    log_smoothed = qvalue(p, smooth_log_pi0=True, lfdr=False)
    assert log_smoothed.pi0 == pytest.approx(scalar(scalars, case, "pi0_log"), rel=Q_TOL)
    assert_close(log_smoothed.q_values, reference["q_log"], Q_TOL, what="smooth.log.pi0")
    curve = read_exact(f"qvalue/{case}.pi0.tsv")
    assert_close(log_smoothed.pi0_smoothed, curve["pi0_smooth_log"], Q_TOL, what="log curve")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManylmWarning)
        positive = qvalue(p, pfdr=True, lfdr=False)
    # qvalue's pFDR is 0/0 = NaN at p = 0; assert_close checks the NaN pattern too.
    assert_close(positive.q_values, reference["q_pfdr"], Q_TOL, what="pfdr")
    single = qvalue(p, lambdas=[0.5])
    assert single.pi0 == pytest.approx(scalar(scalars, case, "pi0_lambda_0.5"), rel=1e-15)
    assert single.pi0_by_lambda is not None
    assert single.pi0_by_lambda[0] == pytest.approx(
        scalar(scalars, case, "pi0_lambda_0.5_raw"), rel=1e-15)
    assert_close(single.q_values, reference["q_lambda_0.5"], Q_TOL, what="lambda 0.5")
    assert_close(single.lfdr, reference["lfdr_lambda_0.5"], LFDR_TOL, what="lambda 0.5 lfdr")
    fixed = qvalue(p, pi0=0.8)
    assert fixed.pi0_method == "given" and fixed.lambdas is None
    assert_close(fixed.q_values, reference["q_pi0_0.8"], Q_TOL, what="pi0 0.8")
    assert_close(fixed.lfdr, reference["lfdr_pi0_0.8"], LFDR_TOL, what="pi0 0.8 lfdr")
    level = qvalue(p, fdr_level=0.1, lfdr=False)
    expected = reference["significant_0.1"].to_numpy()
    assert level.significant is not None
    np.testing.assert_array_equal(level.significant, expected == 1)  # NA p-values: False


@pytest.mark.parametrize("case", CASES)
def test_pi0_on_other_grids(case: str, scalars: pd.DataFrame) -> None:
    p = case_table(case)["p"]
    # R's seq(0.1, 0.8, 0.1) is 0.1 + i * 0.1 (0.30000000000000004, not 0.3): it matters here
    # because the nan_ties p-values are rounded to 3 decimals.
    grid = pi0_estimate(p, lambdas=0.1 + np.arange(8) * 0.1)
    assert grid.pi0 == pytest.approx(scalar(scalars, case, "pi0_grid_0.1_0.8"), rel=Q_TOL)
    wiggly = pi0_estimate(p, smooth_df=4.5)
    assert wiggly.pi0 == pytest.approx(scalar(scalars, case, "pi0_df_4.5"), rel=Q_TOL)


@pytest.mark.parametrize("case", CASES)
def test_local_fdr_options(case: str, scalars: pd.DataFrame) -> None:
    reference = case_table(case)
    p, pi0 = reference["p"], scalar(scalars, case, "pi0_smoother")
    assert_close(local_fdr(p, pi0=pi0, transform="logit"), reference["lfdr_logit"], LFDR_TOL,
                 what="logit")
    assert_close(local_fdr(p, pi0=pi0, truncate=False, monotone=False), reference["lfdr_raw"],
                 LFDR_TOL, what="untruncated, not monotone")
    assert_close(local_fdr(p, pi0=pi0, adjust=0.8), reference["lfdr_adj_0.8"], LFDR_TOL,
                 what="adjust 0.8")
    assert_close(local_fdr(p), reference["lfdr"], LFDR_TOL, what="pi0 estimated inside")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["lfdr", "mean", "hist", "convest"])
def test_prop_true_null(case: str, method: str, scalars: pd.DataFrame) -> None:
    p = case_table(case)["p"]
    expected = scalar(scalars, case, f"propTrueNull_{method}")
    assert prop_true_null(p, method=method) == pytest.approx(expected, rel=1e-12)
    if method == "hist":
        assert prop_true_null(p, method="hist", n_bins=7) == pytest.approx(
            scalar(scalars, case, "propTrueNull_hist_nbins_7"), rel=1e-12)


@pytest.mark.parametrize("name", SPLINES)
def test_smooth_spline_matches_r(name: str, scalars: pd.DataFrame) -> None:
    data = read_exact(f"qvalue/spline_{name}.input.tsv").reset_index()
    options: dict[str, object] = {
        "df3": {"df": 3}, "gcv512": {}, "ties_weights_spar": {"spar": 0.6},
        "cv30": {"cv": True}, "df6_allknots": {"df": 6, "all_knots": True},
    }[name]
    weights = data["w"] if name == "ties_weights_spar" else None
    tol = ILL_CONDITIONED_TOL if name == "df6_allknots" else SPLINE_TOL
    spline = smooth_spline(data["x"], data["y"], weights=weights, **options)  # type: ignore[arg-type]
    fit = read_exact(f"qvalue/spline_{name}.fit.tsv")
    np.testing.assert_array_equal(spline.x, fit.index.astype(float))
    assert_close(spline.weights, fit["w"], 1e-14, what="weights")
    assert_close(spline.y_mean, fit["yin"], 1e-14, what="yin")
    assert_close(spline.fitted, fit["fitted"], tol, what=f"{name} fitted")
    assert_close(spline.leverage, fit["lev"], tol, what=f"{name} leverage")
    assert spline.df == pytest.approx(scalar(scalars, name, "df"), rel=tol)
    assert spline.lambda_ == pytest.approx(scalar(scalars, name, "lambda"), rel=tol)
    assert spline.criterion == pytest.approx(scalar(scalars, name, "crit"), rel=tol)
    if "spar" not in options:
        assert spline.spar == pytest.approx(scalar(scalars, name, "spar"), rel=tol)
        assert spline.iterations == scalar(scalars, name, "iterations")
    predicted = read_exact(f"qvalue/spline_{name}.predict.tsv")
    at = predicted.index.astype(float)
    for derivative, column in enumerate(["y", "d1", "d2"]):
        assert_close(spline.predict(at, derivative=derivative), predicted[column], tol,
                     what=f"{name} predict derivative {derivative}")


def test_density_matches_r(scalars: pd.DataFrame) -> None:
    p = case_table("strong")["p"].to_numpy()
    density = gaussian_density(ndtri(np.clip(p, 1e-8, 1 - 1e-8)), adjust=1.5)
    reference = read_exact("qvalue/density_strong.tsv")
    assert density.bandwidth == pytest.approx(scalar(scalars, "density", "bw"), rel=1e-13)
    assert_close(density.x, reference.index.astype(float), 1e-14, what="density grid")
    assert_close(density.y, reference["y"], 1e-10, what="density")


# ------------------------------------------------------------------- behaviour beyond parity
def test_shape_labels_and_missing_values_are_kept() -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(size=(300, 3))
    p[::10, 1] = np.nan
    result = qvalue(p)
    assert result.q_values.shape == p.shape and result.lfdr is not None
    np.testing.assert_array_equal(np.isnan(result.q_values), np.isnan(p))
    flat = qvalue(p.ravel())
    np.testing.assert_array_equal(result.q_values.ravel(), flat.q_values)
    series = pd.Series(p[:, 0], index=[f"g{i}" for i in range(300)])
    frame = qvalue(series, fdr_level=0.05).to_frame()
    assert list(frame.columns) == ["q_value", "lfdr", "significant"]
    assert list(frame.index) == list(series.index)
    summary = qvalue(p).summary()
    assert summary["n_tests"] == 870 and summary["n_missing"] == 30
    json.dumps(summary)  # goes into the run record as is


def test_pfdr_warns_about_zero_p_values() -> None:
    p = np.concatenate([[0.0], np.linspace(0.001, 1, 99)])
    with pytest.warns(ManylmWarning, match="exactly 0"):
        result = qvalue(p, pfdr=True, lfdr=False)
    assert np.isnan(result.q_values[0]) and not np.isnan(result.q_values[1:]).any()


@pytest.mark.parametrize("bad", [[0.1, 1.5, 0.2], [0.1, -0.01], [0.3, np.inf]])
def test_out_of_range_p_values_are_named(bad: list[float]) -> None:
    with pytest.raises(InputError, match="position 1"):
        qvalue(bad)
    labelled = pd.Series(bad, index=[f"g{i}" for i in range(len(bad))])
    with pytest.raises(InputError, match="'g1'"):
        prop_true_null(labelled)


@pytest.mark.parametrize(("options", "message"), [
    ({"lambdas": [0.1, 0.5]}, "at least four"),
    ({"lambdas": [0.1, 0.2, 0.5, 1.0]}, r"\[0, 1\)"),
    ({"pi0": 0.0}, "'pi0'"),
    ({"fdr_level": 1.5}, "'fdr_level'"),
    ({"pi0_method": "spline"}, "'pi0_method'"),
    ({"smooth_df": 25}, "'smooth_df'"),
    ({"lfdr_transform": "log"}, "'lfdr_transform'"),
])
def test_bad_options(options: dict[str, object], message: str) -> None:
    p = np.linspace(0.001, 0.999, 100)
    with pytest.raises(InputError, match=message):
        qvalue(p, **options)  # type: ignore[arg-type]


def test_data_that_cannot_give_pi0() -> None:
    with pytest.raises(DataError, match="all 3 are missing"):
        qvalue([np.nan, np.nan, np.nan])
    with pytest.raises(DataError, match="largest lambda"):
        qvalue(np.linspace(0.0, 0.9, 50))  # qvalue errors here too
    assert qvalue(np.linspace(0.0, 0.9, 50), lambdas=[0.5]).pi0 > 0
    with pytest.raises(DataError, match="at least 2"):
        qvalue([0.96])  # R's density() stops here
    assert qvalue([0.96], lfdr=False, lambdas=[0.5]).q_values[0] == pytest.approx(0.96)
    with pytest.raises(InputError, match="'method'"):
        prop_true_null([0.1, 0.2], method="median")
