"""The streaming engine gives the in-memory table (lm_fit + ebayes + top_table), to rtol 1e-9.

Whatever the block size, the number of threads, or whether the per-feature summaries stay in
memory or are spilled to files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import manylm
from late_tables import late_then_stored
from manylm.engine import ArraySource, fit_streaming
from reference_data import assert_close

FORMULA = "~ group + batch + age"
RTOL = 1e-9


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    samples = pd.DataFrame(
        {"group": np.repeat(["A", "B"], 7), "batch": np.tile(["x", "y"], 7),
         "age": rng.uniform(20, 80, 14)},
        index=[f"S{i:02d}" for i in range(14)],
    )
    n = 600
    sd = np.sqrt(4 * 0.05 / rng.chisquare(4, n))
    y = 8 + rng.normal(size=(n, 14)) * sd[:, None] + rng.normal(0, 1, (n, 1))
    y[:30, 7:] += rng.choice([-1.0, 1.0], (30, 1)) * 1.5  # some real group effects
    missing = y.copy()
    missing[rng.random(y.shape) < 0.04] = np.nan
    missing[5] = np.nan  # a feature with no data
    missing[9, :12] = np.nan  # too few values to estimate anything
    ids = [f"g{i:04d}" for i in range(n)]
    weights = rng.gamma(4.0, 0.25, y.shape)
    return {
        "samples": samples,
        "dense": pd.DataFrame(y, index=ids, columns=samples.index),
        "missing": pd.DataFrame(missing, index=ids, columns=samples.index),
        "weights": pd.DataFrame(weights, index=ids, columns=samples.index),
    }


def reference(expression: pd.DataFrame, samples: pd.DataFrame, coef: Any, *, weights: Any = None,
              contrasts: list[str] | None = None, moderate: bool = True, trend: bool = False,
              robust: bool = False, treat_lfc: float | None = None, sort_by: str = "p",
              adjust: str = "BH") -> pd.DataFrame:
    fit = manylm.lm_fit(expression, FORMULA, samples=samples, weights=weights)
    if contrasts:
        fit = manylm.contrasts_fit(fit, contrasts)
    if not moderate:
        result = manylm.ordinary_statistics(fit)
    elif treat_lfc is not None:
        result = manylm.treat(fit, lfc=treat_lfc, trend=trend, robust=robust)
    else:
        result = manylm.ebayes(fit, trend=trend, robust=robust)
    return result.top_table(coef, sort_by=sort_by, adjust=adjust)


def assert_same_table(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same columns and rows, in order; values to rtol 1e-9 (floor: 1e-9 x a column's median)."""
    assert list(ours.columns) == list(expected.columns)
    assert list(ours.index) == list(expected.index)
    for column in expected.columns:
        assert_close(ours[column], expected[column], RTOL, what=str(column))


@pytest.mark.parametrize("block_rows", [7, 64, 5000])
@pytest.mark.parametrize("spill", [False, True])
def test_dense_any_block_size_and_spill(data, block_rows: int, spill: bool) -> None:
    expected = reference(data["dense"], data["samples"], "group[B]")
    got = fit_streaming(data["dense"], FORMULA, samples=data["samples"], coef="group[B]",
                        block_rows=block_rows, spill=spill)
    assert_same_table(got.table, expected)
    assert got.engine["spill"] == ("disk" if spill else "memory")


@pytest.mark.parametrize("options", [
    {},
    {"trend": True},
    {"robust": True},
    {"trend": True, "robust": True},
    {"moderate": False},
    {"treat_lfc": 0.3},
    {"treat_lfc": 0.3, "trend": True, "robust": True},
], ids=lambda o: "-".join(f"{k}" for k in o) or "plain")
def test_missing_values_and_moderation_options(data, options: dict[str, Any]) -> None:
    expected = reference(data["missing"], data["samples"], "group[B]", **options)
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                        block_rows=50, spill=True, **options)
    assert_same_table(got.table, expected)


@pytest.mark.parametrize("coef", [["group[B]", "age"], None, "batch"])
def test_f_tables(data, coef: Any) -> None:
    expected = reference(data["missing"], data["samples"], coef, trend=True)
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef=coef,
                        trend=True, block_rows=97, spill=True)
    assert_same_table(got.table, expected)


def test_contrasts(data) -> None:
    contrasts = ["BvsA = group[B]", "agexB = age + group[B]"]
    for coef in ("agexB", ["BvsA", "agexB"]):
        expected = reference(data["missing"], data["samples"], coef, contrasts=contrasts)
        got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef=coef,
                            contrasts=contrasts, block_rows=64)
        assert_same_table(got.table, expected)


def test_sample_weights_and_weights_matrix(data) -> None:
    sample_weights = np.linspace(0.5, 2.0, 14)
    expected = reference(data["missing"], data["samples"], "group[B]", weights=sample_weights)
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                        weights=sample_weights, block_rows=64)
    assert_same_table(got.table, expected)
    zero = sample_weights.copy()
    zero[3] = 0.0  # a zero weight sends lm_fit to the weighted path: the same here
    expected = reference(data["dense"], data["samples"], "group[B]", weights=zero)
    got = fit_streaming(data["dense"], FORMULA, samples=data["samples"], coef="group[B]",
                        weights=zero, block_rows=64)
    assert_same_table(got.table, expected)
    expected = reference(data["missing"], data["samples"], "group[B]",
                         weights=data["weights"].to_numpy(), robust=True)
    source = ArraySource(data["weights"], path="weights.parquet")
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                        weights=source, robust=True, block_rows=64, spill=True)
    assert_same_table(got.table, expected)


@pytest.mark.parametrize("kind", ["dense", "missing"])
def test_one_residual_df_is_stored_as_one_value(data, kind: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Complete rows: the stored df is made one value (the moderation's one-df paths)."""
    from manylm.engine.spill import FeatureStore

    made: list[tuple[str, float]] = []
    original = FeatureStore.set_constant

    def recorded(store: FeatureStore, name: str, value: float) -> None:
        made.append((name, value))
        original(store, name, value)

    monkeypatch.setattr(FeatureStore, "set_constant", recorded)
    expected = reference(data[kind], data["samples"], "group[B]")
    got = fit_streaming(data[kind], FORMULA, samples=data["samples"], coef="group[B]",
                        block_rows=64, spill=True)
    assert_same_table(got.table, expected)
    assert made == ([("df_residual", 10.0)] if kind == "dense" else [])


@pytest.mark.parametrize("sort_by", ["p", "B"])
def test_b_statistics_when_a_chunk_has_no_complete_row(data, sort_by: str) -> None:
    """A chunk whose largest df is below the overall one: its candidates for the B prior's
    top are proposed again at the overall df (the second pass of _coefficient_prior)."""
    y = data["missing"].copy()
    y.iloc[:64, 3] = np.nan  # the first chunk of 64 rows has no complete row
    expected = reference(y, data["samples"], "group[B]", sort_by=sort_by)
    got = fit_streaming(y, FORMULA, samples=data["samples"], coef="group[B]", block_rows=64,
                        sort_by=sort_by)
    assert_same_table(got.table, expected)


def test_a_weights_file_is_matched_to_the_samples_by_name(data, tmp_path: Path) -> None:
    """Weights stored with their sample columns in another order (and one more) are matched
    by name, as the data's are, not by position."""
    from manylm.io.block_sources import open_feature_blocks

    weights = data["weights"]
    shuffled = weights[list(weights.columns[::-1])].copy()
    shuffled.insert(3, "S_extra", 5.0)
    path = tmp_path / "w.parquet"
    shuffled.reset_index(names="feature").to_parquet(path)
    expected = reference(data["missing"], data["samples"], "group[B]", weights=weights)
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                        weights=open_feature_blocks(path), block_rows=64)
    assert_same_table(got.table, expected)


def test_bad_weight_is_named_by_feature_id(data, tmp_path: Path) -> None:
    """Chunks are fitted with features by position; an error still names the feature ID."""
    from manylm.cli.inputs import align_weights
    from manylm.errors import DataError
    from manylm.io import read_weights
    from manylm.io.block_sources import open_feature_blocks

    weights = data["weights"].copy()
    weights.iloc[130, 2] = -1.0
    path = tmp_path / "w.parquet"
    weights.reset_index(names="feature").to_parquet(path)
    with pytest.raises(DataError, match=r"w.parquet: feature 'g0130', sample 'S02': weight "
                                        r"-1.0 is negative; weights must be finite and "
                                        r"non-negative \(0 leaves the observation out\)"):
        fit_streaming(data["dense"], FORMULA, samples=data["samples"], coef="group[B]",
                      weights=open_feature_blocks(path), block_rows=64)
    weights.iloc[130, 2] = np.nan  # as the in-memory reader says, naming the file
    weights.reset_index(names="feature").to_parquet(path)
    with pytest.raises(DataError, match=r"w.parquet: feature 'g0130', sample 'S02': weight "
                                        r"nan is missing"):
        fit_streaming(data["dense"], FORMULA, samples=data["samples"], coef="group[B]",
                      weights=open_feature_blocks(path), block_rows=64)
    expression = data["dense"]
    with pytest.raises(DataError, match=r"w.parquet: feature 'g0130', sample 'S02': weight "
                                        r"nan is missing"):
        align_weights(read_weights(path), expression, str(path))
    weights.insert(0, "S_extra", np.nan)  # cells the fit does not use may be missing
    weights.iloc[130, 3] = 1.0
    weights.reset_index(names="feature").to_parquet(path)
    aligned = align_weights(read_weights(path), expression, str(path))
    assert list(aligned.columns) == list(expression.columns)


@pytest.mark.parametrize("sort_by", ["none", "t", "estimate", "B", "mean"])
def test_every_sort_order(data, sort_by: str) -> None:
    for coef in ("group[B]", ["group[B]", "age"]):
        if sort_by == "B" and isinstance(coef, list):
            continue
        expected = reference(data["missing"], data["samples"], coef, sort_by=sort_by)
        got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef=coef,
                            sort_by=sort_by, block_rows=128, spill=True)
        assert_same_table(got.table, expected)


@pytest.mark.parametrize("adjust", ["BY", "holm", "bonferroni", "none", "fdr"])
def test_adjustments(data, adjust: str) -> None:
    expected = reference(data["missing"], data["samples"], "group[B]", adjust=adjust)
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                        adjust=adjust, block_rows=200)
    assert_same_table(got.table, expected)


def test_one_thread_and_float32(data) -> None:
    single = data["missing"].astype(np.float32)
    expected = reference(single, data["samples"], "group[B]")
    got = fit_streaming(single, FORMULA, samples=data["samples"], coef="group[B]",
                        block_rows=33, n_jobs=1)
    assert_same_table(got.table, expected)


def test_bare_array_is_indexed_by_position(data) -> None:
    design = manylm.design_matrix(FORMULA, data["samples"])
    values = data["missing"].to_numpy()
    expected = manylm.lm_fit(values, design).ebayes().top_table("group[B]")
    got = fit_streaming(values, design, coef="group[B]", block_rows=100)
    assert_same_table(got.table, expected)


def test_samples_are_matched_by_id(data) -> None:
    shuffled = data["missing"][list(reversed(data["samples"].index))]
    expected = reference(data["missing"], data["samples"], "group[B]")
    got = fit_streaming(shuffled, FORMULA, samples=data["samples"], coef="group[B]",
                        block_rows=64)
    assert_same_table(got.table, expected)


@pytest.mark.parametrize("suffix", [".tsv", ".csv.gz", ".parquet"])
@pytest.mark.parametrize("sort_by", ["p", "none"])
def test_files_match_the_in_memory_writer(data, tmp_path: Path, suffix: str,
                                          sort_by: str) -> None:
    expected = reference(data["missing"], data["samples"], "group[B]", sort_by=sort_by)
    manylm.io.write_table(expected.reset_index(), tmp_path / f"memory{suffix}")
    out = tmp_path / f"stream{suffix}"
    result = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                           sort_by=sort_by, out=out, block_rows=64, spill=True)
    assert result.table is None
    read = pd.read_parquet if suffix == ".parquet" else lambda path: pd.read_csv(
        path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False, na_values=["NA"])
    ours, theirs = read(out), read(tmp_path / f"memory{suffix}")
    assert_same_table(ours.set_index("feature"), theirs.set_index("feature"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("options", [
    {},
    {"moderate": False},
    {"treat_lfc": 0.3},
    {"confint": 0.9},
    {"robust": True},
], ids=lambda o: "-".join(f"{k}" for k in o) or "plain")
def test_late_table_is_the_stored_table(data, tmp_path: Path, monkeypatch,
                                        options: dict[str, Any]) -> None:
    """A spilled t table sorted by p is made late, from the fit's fields in output order (not
    with a per-feature prior: robust); its file is byte for byte the one made from the
    stored table columns, and it has the in-memory numbers."""
    from manylm.engine import streaming

    def run(name: str) -> bytes:
        fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                      out=tmp_path / name, block_rows=50, spill=True, **options)
        return (tmp_path / name).read_bytes()

    late, stored, made_late = late_then_stored(monkeypatch, streaming, run)
    assert made_late == ["robust" not in options]
    assert late == stored
    expected = reference(data["missing"], data["samples"], "group[B]",
                         **{k: v for k, v in options.items() if k != "confint"})
    ours = pd.read_csv(tmp_path / "late.tsv", sep="\t", keep_default_na=False,
                       na_values=["NA"], float_precision="round_trip").set_index("feature")
    if "confint" in options:  # the interval differs from the reference's 95%
        ours, expected = (table.drop(columns=["ci_low", "ci_high"]) for table in (ours, expected))
    assert_same_table(ours, expected)


def test_late_table_of_features_without_ids(data, tmp_path: Path, monkeypatch) -> None:
    """A bare array (features known by row number) gives the same late table as stored."""
    from manylm.engine import streaming

    values = data["missing"][data["samples"].index].to_numpy()  # samples in the sheet's order

    def run(name: str) -> bytes:
        fit_streaming(values, FORMULA, samples=data["samples"], coef="group[B]",
                      out=tmp_path / name, block_rows=50, spill=True)
        return (tmp_path / name).read_bytes()

    late, stored, _ = late_then_stored(monkeypatch, streaming, run)
    assert late == stored
    assert late.splitlines()[1].split(b"\t")[0].isdigit()  # row numbers


@pytest.mark.parametrize("block_rows", [64, 100])  # a row group: read by the workers
def test_parquet_blocks_are_fitted_as_stored_by_column(data, tmp_path: Path, monkeypatch,
                                                       block_rows: int) -> None:
    """A Parquet file's sample columns reach the fit side by side in Fortran order (no
    interleave), read by the workers or cut from row groups by the main thread; the table is
    the in-memory one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from manylm.engine import fit_pass

    frame = data["missing"].astype(np.float32)
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"feature": list(frame.index),
                             **{s: frame[s].to_numpy() for s in frame.columns}}),
                   path, row_group_size=100)
    layouts: list[bool] = []
    real = fit_pass.fit_chunk

    def spy(model: Any, values: np.ndarray, *args: Any) -> Any:
        layouts.append(bool(values.flags.f_contiguous and values.shape[0] > 1))
        return real(model, values, *args)

    monkeypatch.setattr(fit_pass, "fit_chunk", spy)
    from manylm.io.block_sources import open_feature_blocks

    result = fit_streaming(open_feature_blocks(path), FORMULA, samples=data["samples"],
                           coef="group[B]", block_rows=block_rows)
    assert layouts and all(layouts[:-1])
    expected = reference(frame.astype(np.float64), data["samples"], "group[B]")
    assert_same_table(result.table, expected)


def test_text_is_the_in_memory_text(data, tmp_path: Path) -> None:
    """Same header, quoting, NA and float format (shortest round trip): same bytes."""
    expected = reference(data["dense"], data["samples"], "group[B]", sort_by="none")
    table = expected.reset_index()
    manylm.io.write_table(table, tmp_path / "memory.tsv")
    fit_streaming(data["dense"], FORMULA, samples=data["samples"], coef="group[B]",
                  sort_by="none", out=tmp_path / "stream.tsv", block_rows=64)
    ours = pd.read_csv(tmp_path / "stream.tsv", sep="\t", float_precision="round_trip")
    assert_same_table(ours.set_index("feature"), table.set_index("feature"))
    # Rewriting our numbers with the in-memory writer gives our file, byte for byte.
    manylm.io.write_table(ours, tmp_path / "rewritten.tsv")
    assert (tmp_path / "rewritten.tsv").read_bytes() == (tmp_path / "stream.tsv").read_bytes()


def test_ids_that_need_quotes(data, tmp_path: Path) -> None:
    expression = data["dense"].iloc[:40].copy()
    expression.index = [f'gene "{i}", tab\there' if i % 7 == 0 else f"g{i}" for i in range(40)]
    expected = reference(expression, data["samples"], "group[B]")
    for suffix in (".tsv", ".csv"):
        manylm.io.write_table(expected.reset_index(), tmp_path / f"memory{suffix}")
        fit_streaming(expression, FORMULA, samples=data["samples"], coef="group[B]",
                      out=tmp_path / f"stream{suffix}", block_rows=8, spill=True)
        ours = (tmp_path / f"stream{suffix}").read_text()
        theirs = (tmp_path / f"memory{suffix}").read_text()
        assert ours.splitlines()[0] == theirs.splitlines()[0]  # the header quoted alike
        assert '"gene ""0"", tab\there"' in ours
        separator = "\t" if suffix == ".tsv" else ","
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / f"stream{suffix}", sep=separator),
            pd.read_csv(tmp_path / f"memory{suffix}", sep=separator), rtol=RTOL)


def test_prior_summary(data) -> None:
    fit = manylm.lm_fit(data["missing"], FORMULA, samples=data["samples"])
    result = manylm.ebayes(fit, robust=True)
    got = fit_streaming(data["missing"], FORMULA, samples=data["samples"], coef="group[B]",
                        robust=True, block_rows=64)
    assert got.prior["s2_prior"] == pytest.approx(result.s2_prior, rel=1e-12)
    assert got.prior["df_prior"]["median"] == pytest.approx(
        float(np.nanmedian(result.df_prior)), rel=1e-12)
    assert got.n_features == 600 and got.moderated
