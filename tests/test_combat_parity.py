"""ComBat, ComBat-seq and remove_batch_effect against R (sva 3.46.0, limma 3.54.1, edgeR 3.40.2).

References: tests/reference/combat.R and tests/reference/combat/. Data: the real bladderbatch
arrays (batch = ``batch``, protecting ``~ cancer``), the real pasilla RNA-seq counts (batch =
library ``type``, group = ``condition``) and the synthetic NB counts with zero rows.

Tolerances (relative unless said): ComBat 1e-9 (measured 5e-14; the bar is 1e-6);
removeBatchEffect 1e-10 (measured 3e-14); ComBat-seq counts identical; its common dispersions
1e-7 (measured 1e-9: Brent's search on likelihood sums), gene-wise dispersions 1e-4 (measured
2e-5 for 3 genes with tiny dispersions where the likelihood is flat, below 1e-6 for the rest),
batch effects 1e-6 absolute (measured 1.3e-7: edgeR stops its Levenberg iterations at a
tolerance of 1e-6).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from manylm.confounders.batch_effect import remove_batch_effect
from manylm.confounders.combat import combat, fit_combat
from manylm.confounders.combat_seq import combat_seq, fit_combat_seq
from manylm.confounders.combat_seq_dispersion import brent_maximum, maximize_interpolant
from manylm.errors import DesignError, InputError, ManylmWarning
from reference_data import assert_close, read_reference

COMBAT_RTOL = 1e-9


@pytest.fixture(scope="module")
def bladder() -> dict[str, pd.DataFrame]:
    samples = read_reference("inputs/bladder_samples.tsv")
    extra = read_reference("combat/bladder_extra_samples.tsv")
    expression = read_reference("inputs/bladder_expr.tsv.gz")
    return {
        "full": expression,
        "subset": expression.iloc[:600],
        "missing": read_reference("combat/bladder_missing_expr.tsv.gz"),
        "edge": read_reference("combat/bladder_edge_expr.tsv.gz"),
        "weights": read_reference("inputs/bladder_weights.tsv.gz").iloc[:600],
        "samples": samples.join(extra),
    }


COMBAT_CASES = {
    "parametric": ("full", {"covariates": "~ cancer"}),
    "parametric_nomod": ("subset", {}),
    "nonparametric": ("subset", {"covariates": "~ cancer", "parametric": False}),
    "mean_only": ("subset", {"covariates": "~ cancer", "mean_only": True}),
    "mean_only_nonparametric": ("subset", {"covariates": "~ cancer", "mean_only": True,
                                           "parametric": False}),
    "reference": ("subset", {"covariates": "~ cancer", "reference_batch": 2}),
    "reference_nonparametric": ("subset", {"reference_batch": "5", "parametric": False}),
    "missing": ("missing", {"covariates": "~ cancer"}),
    "missing_reference": ("missing", {"covariates": "~ cancer", "reference_batch": 2}),
    "missing_nonparametric": ("missing", {"parametric": False}),
}


@pytest.mark.parametrize("case", list(COMBAT_CASES))
def test_combat_matches_sva(bladder: dict[str, pd.DataFrame], case: str) -> None:
    data, options = COMBAT_CASES[case]
    result = fit_combat(bladder[data], "batch", samples=bladder["samples"], **options)
    expected = read_reference(f"combat/{case}.tsv.gz")
    assert list(result.adjusted.index) == list(expected.index)
    assert list(result.adjusted.columns) == list(expected.columns)
    assert_close(result.adjusted, expected, COMBAT_RTOL, what=case)
    priors = read_reference(f"combat/{case}.priors.tsv")
    assert result.batches == [str(b) for b in priors.index]
    for ours, theirs in (("gamma_bar", "gamma_bar"), ("tau2", "t2")):
        assert_close(result.priors[ours], priors[theirs], 1e-10, what=f"{case} {ours}")
    if not options.get("mean_only"):
        # The reference batch's scale estimates are all (n - 1)/n up to rounding, so its
        # inverse-gamma prior is rounding noise (and unused: that batch is not adjusted).
        used = [b != str(options.get("reference_batch")) for b in result.batches]
        for ours in ("a_prior", "b_prior"):
            assert_close(result.priors[ours][used], priors[ours][used], 1e-10,
                         what=f"{case} {ours}")


def test_combat_posteriors_match_sva(bladder: dict[str, pd.DataFrame]) -> None:
    result = fit_combat(bladder["full"], "batch", covariates="~ cancer",
                        samples=bladder["samples"])
    expected = read_reference("combat/parametric.posteriors.tsv.gz")
    for batch in result.batches:
        assert_close(result.gamma_star[batch], expected[f"gamma_star:{batch}"], 1e-10,
                     what=f"gamma_star {batch}")
        assert_close(result.delta_star[batch], expected[f"delta_star:{batch}"], 1e-10,
                     what=f"delta_star {batch}")


def test_combat_leaves_constant_features_as_sva(bladder: dict[str, pd.DataFrame]) -> None:
    with pytest.warns(ManylmWarning, match="4 feature.*constant within a batch"):
        result = fit_combat(bladder["edge"], "batch", covariates="~ cancer",
                            samples=bladder["samples"])
    expected = read_reference("combat/edge.tsv.gz")
    assert_close(result.adjusted, expected, COMBAT_RTOL, what="edge")
    assert result.unadjusted == list(bladder["edge"].index[:4])
    np.testing.assert_array_equal(result.adjusted.iloc[:4], bladder["edge"].iloc[:4])


@pytest.mark.parametrize("parametric", [True, False])
def test_combat_does_not_depend_on_block_size(bladder: dict[str, pd.DataFrame],
                                              parametric: bool) -> None:
    data = bladder["missing"].iloc[:200]
    whole = combat(data, "batch", samples=bladder["samples"], parametric=parametric)
    blocked = combat(data, "batch", samples=bladder["samples"], parametric=parametric,
                     block_rows=7, n_jobs=2)
    assert_close(blocked, whole, 1e-13, what="block size")


def test_combat_arrays_in_arrays_out(bladder: dict[str, pd.DataFrame]) -> None:
    data = bladder["subset"]
    batch = bladder["samples"]["batch"]
    from_frame = combat(data, batch)  # a Series, matched by sample ID
    from_array = combat(data.to_numpy(), batch.to_numpy())
    assert isinstance(from_array, np.ndarray)
    np.testing.assert_allclose(from_array, from_frame.to_numpy(), rtol=1e-14)
    shuffled = batch.sample(frac=1.0, random_state=1)
    assert_close(combat(data, shuffled), from_frame, 1e-14, what="series aligned by ID")


def test_combat_bad_input(bladder: dict[str, pd.DataFrame]) -> None:
    data, samples = bladder["subset"], bladder["samples"]
    single = samples["batch"].astype(str).copy()
    single.iloc[0] = "lonely"
    with pytest.raises(InputError, match=r"Batch 'lonely' .* single sample"):
        combat(data, single)
    # sva switches to mean-only with a single-sample batch; here it is asked for explicitly
    assert combat(data, single, mean_only=True).shape == data.shape
    with pytest.raises(DesignError, match="confounded with batch"):
        combat(data, "batch", covariates="~ C(batch)", samples=samples)
    with pytest.raises(InputError, match="reference batch '9' is not one of the batches"):
        combat(data, "batch", samples=samples, reference_batch=9)
    with pytest.raises(DesignError, match="column 'plate' is not in the sample sheet"):
        combat(data, "plate", samples=samples)
    with pytest.raises(DesignError, match="Only one batch"):
        combat(data, np.ones(data.shape[1]))
    unlabelled = samples["batch"].astype(object).copy()
    unlabelled.iloc[3] = None
    with pytest.raises(DesignError, match=r"batch label is missing .*GSM71022"):
        combat(data, unlabelled)


RBE_CASES = {
    "rbe_batch": ("subset", {"batch": "batch"}),
    "rbe_design": ("subset", {"batch": "batch", "design": "~ cancer"}),
    "rbe_batch2_covariates": ("subset", {"batch": "batch", "batch2": "batch2",
                                         "covariates": ["age", "rin"], "design": "~ cancer"}),
    "rbe_covariates_only": ("subset", {"covariates": ["age"], "design": "~ cancer"}),
    "rbe_missing": ("missing", {"batch": "batch", "design": "~ cancer"}),
    "rbe_weights": ("subset", {"batch": "batch", "design": "~ cancer", "weights": True}),
}


@pytest.mark.parametrize("case", list(RBE_CASES))
def test_remove_batch_effect_matches_limma(bladder: dict[str, pd.DataFrame], case: str) -> None:
    data, options = RBE_CASES[case]
    options = dict(options)
    samples = bladder["samples"]
    if "covariates" in options:
        options["covariates"] = samples[options["covariates"]]
    if options.pop("weights", False):
        options["weights"] = bladder["weights"]
    result = remove_batch_effect(bladder[data], samples=samples, **options)
    assert_close(result, read_reference(f"combat/{case}.tsv.gz"), 1e-10, what=case)


def test_remove_batch_effect_without_effects_is_identity(
        bladder: dict[str, pd.DataFrame]) -> None:
    data = bladder["subset"]
    pd.testing.assert_frame_equal(remove_batch_effect(data), data)


SEQ_CASES = {
    "seq_pasilla_group": ("pasilla", {"batch": "type", "group": "condition"}),
    "seq_pasilla_null": ("pasilla", {"batch": "type"}),
    "seq_synth_group": ("synth", {"batch": "batch", "group": "group"}),
}


@pytest.fixture(scope="module")
def seq_results() -> dict[str, object]:
    inputs = {"pasilla": ("pasilla_counts", "pasilla_samples"),
              "synth": ("synth_counts", "synth_counts_samples")}
    results = {}
    for case, (dataset, options) in SEQ_CASES.items():
        counts_file, samples_file = inputs[dataset]
        counts = read_reference(f"inputs/{counts_file}.tsv.gz")
        samples = read_reference(f"inputs/{samples_file}.tsv")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ManylmWarning)
            results[case] = fit_combat_seq(counts, samples=samples, **options)
    return results


@pytest.mark.parametrize("case", list(SEQ_CASES))
def test_combat_seq_counts_are_identical_to_sva(seq_results: dict[str, object],
                                                case: str) -> None:
    result = seq_results[case]
    expected = read_reference(f"combat/{case}.tsv.gz")
    ours = result.adjusted  # type: ignore[attr-defined]
    assert list(ours.index) == list(expected.index)
    np.testing.assert_array_equal(ours.to_numpy(), expected.to_numpy(dtype=float))


@pytest.mark.parametrize("case", list(SEQ_CASES))
def test_combat_seq_estimates_match_edger(seq_results: dict[str, object], case: str) -> None:
    result = seq_results[case]
    common = read_reference(f"combat/{case}.common_dispersion.tsv")["common_dispersion"]
    assert_close(result.common_dispersion, common, 1e-7, what=f"{case} common")  # type: ignore
    estimates = read_reference(f"combat/{case}.estimates.tsv.gz")
    kept = estimates.index
    unadjusted = set(result.unadjusted)  # type: ignore[attr-defined]
    assert list(kept) == [g for g in result.dispersion.index  # type: ignore[attr-defined]
                          if g not in unadjusted]
    for batch in result.batches:  # type: ignore[attr-defined]
        assert_close(result.dispersion.loc[kept, batch],  # type: ignore[attr-defined]
                     estimates[f"dispersion:{batch}"], 1e-4, what=f"{case} dispersion {batch}")
        gamma = result.gamma_hat.loc[kept, batch].to_numpy()  # type: ignore[attr-defined]
        np.testing.assert_allclose(gamma, estimates[f"gamma_hat:{batch}"], rtol=0, atol=1e-6)


def test_combat_seq_arrays_and_bad_input() -> None:
    counts = read_reference("inputs/synth_counts.tsv.gz").iloc[:400]
    samples = read_reference("inputs/synth_counts_samples.tsv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ManylmWarning)
        labelled = combat_seq(counts, "batch", group="group", samples=samples)
        bare = combat_seq(counts.to_numpy(), samples["batch"].to_numpy(),
                          group=samples["group"].to_numpy())
    assert isinstance(bare, np.ndarray)
    np.testing.assert_array_equal(bare, labelled.to_numpy())
    single = samples["batch"].copy()
    single.iloc[0] = "b0"
    with pytest.raises(InputError, match=r"Batch 'b0' .* single sample"):
        combat_seq(counts, single)
    negative = counts.copy()
    negative.iloc[5, 2] = -1
    with pytest.raises(InputError, match="negative"):
        combat_seq(negative, "batch", samples=samples)
    with pytest.raises(DesignError, match="confounded with batch"):
        combat_seq(counts, "batch", covariates="~ batch", samples=samples)


def test_brent_search_matches_r_optimize() -> None:
    expected = read_reference("combat/brent.tsv")
    functions = {
        "sine_bump": lambda x: -(x - 0.3) ** 2 + 0.1 * np.sin(7 * x),
        "log_minus_square": lambda x: np.log(x + 1e-3) - x**2,
    }
    for name, function in functions.items():
        found = brent_maximum(function, 0.0, 2**0.5, tolerance=1e-5)
        assert found == pytest.approx(expected.loc[name, "maximum"], rel=1e-13, abs=0)


def test_spline_maximiser_matches_edger() -> None:
    table = read_reference("combat/maximize_interpolant.tsv")
    curves = table[[c for c in table.columns if c.startswith("apl")]].to_numpy()
    grid = np.linspace(-6.0, 6.0, 11)
    assert_close(maximize_interpolant(grid, curves), table["maximum"], 1e-12,
                 what="maximizeInterpolant")
