"""The ``manylm`` command through its real entry point, on real files."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_user_error, manylm

from reference_data import read_reference

REFERENCE = Path(__file__).parent.parent / "reference"
EXPRESSION = REFERENCE / "inputs" / "bladder_expr.tsv.gz"
SAMPLES = REFERENCE / "inputs" / "bladder_samples.tsv"
T_COLUMNS = ["feature", "estimate", "ci_low", "ci_high", "mean", "t", "p_value", "adj_p_value",
             "lods"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(0)
    samples = pd.DataFrame({
        "sample": ["01005", "01006", "01007", "01008", "01009", "01010"],
        "group": ["A", "A", "A", "B", "B", "B"],
        "batch": ["x", "y", "x", "y", "x", "y"],
    })
    samples.to_csv(folder / "samples.tsv", sep="\t", index=False)
    values = rng.normal(5, 1, (30, 6))
    expression = pd.DataFrame(values, columns=samples["sample"])
    expression.insert(0, "feature", [f"g{i:02d}" for i in range(30)])
    expression.to_csv(folder / "expr.tsv", sep="\t", index=False)
    return {"dir": folder, "expr": folder / "expr.tsv", "samples": folder / "samples.tsv"}


def test_example_runs_offline(tmp_path: Path) -> None:
    result = manylm("example", "--out-dir", tmp_path / "ex", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "22283 probe sets x 57 samples" in result.stdout
    table = pd.read_csv(tmp_path / "ex" / "cancer_vs_normal.tsv", sep="\t")
    assert list(table.columns) == T_COLUMNS
    assert len(table) == 22283
    record = json.loads((tmp_path / "ex" / "cancer_vs_normal.tsv.run.json").read_text())
    assert record["design"]["coefficients"][2] == "cancer[T.Cancer]"


def test_fit_single_coefficient_matches_limma(tmp_path: Path) -> None:
    out = tmp_path / "res.tsv"
    result = manylm("fit", EXPRESSION, "--samples", SAMPLES, "--design", "~ cancer + C(batch)",
                    "--reference", "cancer=Normal", "--test", "cancer[Cancer]", "--sort", "none",
                    "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t", dtype={"feature": str})
    assert list(table.columns) == T_COLUMNS
    limma = pd.read_csv(REFERENCE / "limma" / "dense.top_cancerCancer.tsv.gz", sep="\t")
    assert list(table["feature"]) == list(limma["feature"])
    np.testing.assert_allclose(table["t"], limma["t"], rtol=1e-8)
    np.testing.assert_allclose(table["adj_p_value"], limma["adj.P.Val"], rtol=1e-8)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["inputs"]["expression"]["size"] == EXPRESSION.stat().st_size
    assert len(record["inputs"]["expression"]["sha256"]) == 64
    assert record["prior"]["df_prior"] == pytest.approx(3.4541850203719826, rel=1e-10)
    assert set(record) >= {"samples", "design", "options", "versions", "timings_seconds"}


def test_term_gives_f_table_and_formats(tmp_path: Path) -> None:
    for suffix in ("csv", "parquet"):
        out = tmp_path / f"f.{suffix}"
        result = manylm("fit", EXPRESSION, "--samples", SAMPLES, "--design",
                        "~ cancer + C(batch)", "--reference", "cancer=Normal", "--test",
                        "cancer", "--out", out, "--quiet")
        assert result.returncode == 0, result.stderr
        table = pd.read_parquet(out) if suffix == "parquet" else pd.read_csv(out)
        assert list(table.columns) == ["feature", "cancer[T.Biopsy]", "cancer[T.Cancer]", "mean",
                                       "F", "p_value", "adj_p_value"]
        assert table["p_value"].is_monotonic_increasing


def test_stdout_ids_as_strings_and_input_order(small: dict[str, Path]) -> None:
    result = manylm("fit", small["expr"], "--samples", small["samples"], "--design", "~ group",
                    "--sort", "none")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == T_COLUMNS
    assert [line.split("\t")[0] for line in lines[1:4]] == ["g00", "g01", "g02"]


@pytest.mark.parametrize(("option", "absent"), [("--no-moderation", "lods"),
                                                ("--treat-lfc=0.5", "lods")])
def test_variants_drop_lods(small: dict[str, Path], option: str, absent: str) -> None:
    result = manylm("fit", small["expr"], "--samples", small["samples"], "--design", "~ group",
                    option)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split("\t")
    assert absent not in header and header[:8] == T_COLUMNS[:8]


def test_contrast_and_design_verb(small: dict[str, Path]) -> None:
    design = manylm("design", small["samples"], "--design", "~ 0 + group + batch")
    assert design.returncode == 0, design.stderr
    assert "group[A]" in design.stdout and "batch[T.y]" in design.stdout
    result = manylm("fit", small["expr"], "--samples", small["samples"], "--design",
                    "~ 0 + group + batch", "--contrast", "BvA=group[B]-group[A]", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split("\t") == T_COLUMNS


def test_samples_matched_by_id_with_notices(small: dict[str, Path], tmp_path: Path) -> None:
    sheet = pd.read_csv(small["samples"], sep="\t", dtype=str)
    extra = pd.concat([sheet.iloc[::-1], pd.DataFrame([{"sample": "99999", "group": "A",
                                                         "batch": "x"}])])
    extra.loc[extra["sample"] == "01010", "group"] = np.nan
    path = tmp_path / "sheet.tsv"
    extra.to_csv(path, sep="\t", index=False)
    result = manylm("fit", small["expr"], "--samples", path, "--design", "~ group")
    assert result.returncode == 0, result.stderr
    assert "99999" in result.stderr and "01010" in result.stderr


def test_user_errors(small: dict[str, Path], tmp_path: Path) -> None:
    expr, samples = small["expr"], small["samples"]
    assert_user_error(manylm("fit", tmp_path / "nope.tsv", "--samples", samples, "--design",
                             "~ group"), "nope.tsv")
    assert_user_error(manylm("fit", expr, "--samples", samples, "--design", "~ group + sex"),
                      "'sex'", "Available columns")
    assert_user_error(manylm("fit", expr, "--samples", samples, "--design", "~ group + batch"),
                      "--test", "group", "batch")
    assert_user_error(manylm("fit", expr, "--samples", samples, "--design", "~ group",
                             "--test", "group[C]"), "group[C]", "group[T.B]")
    assert_user_error(manylm("fit", expr, "--samples", samples, "--design", "~ group",
                             "--reference", "group"), "COLUMN=LEVEL")
    assert_user_error(manylm("fit", expr, "--samples", samples, "--design", "~ 0 + group",
                             "--contrast", "x=group[Z]-group[A]"), "group[Z]")
    out = tmp_path / "out.xlsx"
    assert_user_error(manylm("fit", expr, "--samples", samples, "--design", "~ group",
                             "--out", out), ".xlsx")
    assert not out.exists()
    sheet = pd.read_csv(samples, sep="\t", dtype=str).iloc[:4]
    short = tmp_path / "short.tsv"
    sheet.to_csv(short, sep="\t", index=False)
    assert_user_error(manylm("fit", expr, "--samples", short, "--design", "~ group"), "01009")


def test_bad_matrix_values(small: dict[str, Path], tmp_path: Path) -> None:
    text = small["expr"].read_text().splitlines()
    cells = text[3].split("\t")
    cells[2] = "abc"
    bad = tmp_path / "bad.tsv"
    bad.write_text("\n".join([*text[:3], "\t".join(cells), *text[4:]]) + "\n")
    out = tmp_path / "never.tsv"
    assert_user_error(manylm("fit", bad, "--samples", small["samples"], "--design", "~ group",
                             "--out", out), "g02", "abc")
    assert not out.exists()
    duplicate = tmp_path / "dup.tsv"
    duplicate.write_text("\n".join([*text, text[1]]) + "\n")
    assert_user_error(manylm("fit", duplicate, "--samples", small["samples"], "--design",
                             "~ group"), "g00")


def test_formula_cannot_run_code(small: dict[str, Path], tmp_path: Path) -> None:
    for formula in ("~ __import__('os').system('touch pwned')",
                    "~ {__import__('os').system('touch pwned')}",
                    "~ group + {open('pwned', 'w')}"):
        result = manylm("fit", small["expr"], "--samples", small["samples"], "--design", formula,
                        cwd=tmp_path)
        assert_user_error(result)
        assert not (tmp_path / "pwned").exists()


def test_bad_usage_exit_code() -> None:
    result = manylm("fit", "--samples")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_trend_robust_and_adjust_match_limma(tmp_path: Path) -> None:
    out = tmp_path / "tr.tsv"
    result = manylm("fit", EXPRESSION, "--samples", SAMPLES, "--design", "~ cancer + C(batch)",
                    "--reference", "cancer=Normal", "--test", "cancer[Cancer]", "--trend",
                    "--robust", "--sort", "none", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t")
    limma = pd.read_csv(REFERENCE / "limma" / "trend_robust.top_cancerCancer.tsv.gz", sep="\t")
    np.testing.assert_allclose(table["t"], limma["t"], rtol=1e-6)
    np.testing.assert_allclose(table["adj_p_value"], limma["adj.P.Val"], rtol=1e-6)


def test_weights_file_matches_limma(tmp_path: Path) -> None:
    out = tmp_path / "w.tsv"
    weights = REFERENCE / "inputs" / "bladder_weights.tsv.gz"
    result = manylm("fit", EXPRESSION, "--samples", SAMPLES, "--design", "~ cancer + C(batch)",
                    "--reference", "cancer=Normal", "--test", "cancer[Cancer]", "--weights",
                    weights, "--sort", "none", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t")
    limma = pd.read_csv(REFERENCE / "limma" / "weights.top_cancerCancer.tsv.gz", sep="\t")
    np.testing.assert_allclose(table["t"], limma["t"], rtol=1e-8)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["inputs"]["weights"]["size"] == weights.stat().st_size


def test_h5ad_and_gzip_inputs_give_the_same_table(small: dict[str, Path], tmp_path: Path) -> None:
    anndata = pytest.importorskip("anndata")
    expression = pd.read_csv(small["expr"], sep="\t", index_col=0)
    samples = pd.read_csv(small["samples"], sep="\t", index_col=0, dtype={"sample": str})
    samples.index = samples.index.astype(str)
    adata = anndata.AnnData(X=expression.T.to_numpy(), obs=pd.DataFrame(index=expression.columns),
                            var=pd.DataFrame(index=expression.index))
    adata.write_h5ad(tmp_path / "expr.h5ad")
    expression.to_csv(tmp_path / "expr.csv.gz")
    tables = []
    for path in (small["expr"], tmp_path / "expr.h5ad", tmp_path / "expr.csv.gz"):
        result = manylm("fit", path, "--samples", small["samples"], "--design", "~ group",
                        "--sort", "none", "--quiet")
        assert result.returncode == 0, result.stderr
        tables.append(pd.read_csv(io.StringIO(result.stdout), sep="\t", index_col=0))
    # The same numbers; the AnnData matrix arrives transposed, so BLAS may round differently.
    for other in tables[1:]:
        pd.testing.assert_frame_equal(other, tables[0], rtol=1e-12)


PASILLA = REFERENCE / "inputs" / "pasilla_counts.tsv.gz"
PASILLA_SAMPLES = REFERENCE / "inputs" / "pasilla_samples.tsv"


def pasilla_through_the_api(weigh: Callable[..., Any]) -> tuple[pd.DataFrame, Any]:
    """What ``fit --counts --filter`` with ``weigh`` (voom or voom_with_quality_weights) should
    give on pasilla: the unsorted top table of condition[treated], and ``weigh``'s result.

    The command's steps, one API call each: filterByExpr, TMM-scaled library sizes, ``weigh``,
    lm_fit, ebayes.
    """
    import manylm as api
    from manylm.counts import filter_by_expr, norm_factors

    counts = pd.read_csv(PASILLA, sep="\t", index_col=0)
    samples = pd.read_csv(PASILLA_SAMPLES, sep="\t", index_col=0)
    design = api.design_matrix("~ condition + type", samples,
                               reference={"condition": "untreated"})
    kept = counts.loc[filter_by_expr(counts.to_numpy(), design=design.matrix)]
    sizes = kept.to_numpy().sum(axis=0) * norm_factors(kept.to_numpy())
    weighted = weigh(kept, design, lib_size=sizes)
    fit = api.lm_fit(weighted.expression, design, weights=weighted.weights)
    return api.ebayes(fit).top_table("condition[treated]", sort_by="none"), weighted


def test_counts_filter_voom_matches_the_api(tmp_path: Path) -> None:
    from manylm.counts import voom

    out = tmp_path / "voom.tsv"
    result = manylm("fit", PASILLA, "--samples", PASILLA_SAMPLES, "--design",
                    "~ condition + type", "--reference", "condition=untreated", "--test",
                    "condition[treated]", "--counts", "--filter", "--voom", "--sort", "none",
                    "--out", out)
    assert result.returncode == 0, result.stderr
    assert "kept 8066 of 14599 features" in result.stderr
    table = pd.read_csv(out, sep="\t", index_col=0)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["transform"]["features_dropped_by_filter"] == 14599 - 8066
    assert record["transform"]["normalization"] == "TMM"
    expected, _ = pasilla_through_the_api(voom)
    assert list(table.index) == list(expected.index)
    np.testing.assert_allclose(table["t"], expected["t"], rtol=1e-10)


def test_counts_and_methylation_errors(tmp_path: Path, small: dict[str, Path]) -> None:
    assert_user_error(manylm("fit", PASILLA, "--samples", PASILLA_SAMPLES, "--design",
                             "~ condition", "--voom"), "--voom", "--counts")
    assert_user_error(manylm("fit", small["expr"], "--samples", small["samples"], "--design",
                             "~ group", "--counts"), "whole number")
    assert_user_error(manylm("fit", small["expr"], "--samples", small["samples"], "--design",
                             "~ group", "--methylation", "beta"), "outside [0, 1]")
    betas = pd.read_csv(small["expr"], sep="\t", index_col=0)
    betas = (betas - betas.min().min()) / (betas.max().max() - betas.min().min())
    path = tmp_path / "betas.tsv"
    betas.to_csv(path, sep="\t")
    ok = manylm("fit", path, "--samples", small["samples"], "--design", "~ group",
                "--methylation", "beta", "--quiet")
    assert ok.returncode == 0, ok.stderr


BLOCKED = REFERENCE / "inputs" / "blocked_expr.tsv.gz"
BLOCKED_SAMPLES = REFERENCE / "inputs" / "blocked_samples.tsv"


def test_block_matches_limma(tmp_path: Path) -> None:
    out = tmp_path / "blocked.tsv"
    result = manylm("fit", BLOCKED, "--samples", BLOCKED_SAMPLES, "--design",
                    "~ treatment + batch", "--test", "treatment[trt]", "--block", "patient",
                    "--sort", "none", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "intra-block correlation for patient: 0.2045" in result.stderr
    table = pd.read_csv(out, sep="\t")
    limma = pd.read_csv(REFERENCE / "blocks" / "gls_complete_top.tsv.gz", sep="\t")
    np.testing.assert_allclose(table["t"], limma["t"], rtol=1e-8)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["transform"]["block"]["consensus_correlation"] == pytest.approx(
        0.2044968083852431, rel=1e-10)


def test_block_errors(tmp_path: Path) -> None:
    assert_user_error(manylm("fit", BLOCKED, "--samples", BLOCKED_SAMPLES, "--design",
                             "~ treatment", "--block", "nope"), "'nope'", "patient")
    sheet = pd.read_csv(BLOCKED_SAMPLES, sep="\t")
    sheet["single"] = sheet["sample"]
    path = tmp_path / "sheet.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    assert_user_error(manylm("fit", BLOCKED, "--samples", path, "--design", "~ treatment",
                             "--block", "single"), "single sample")


def test_array_weights_option(tmp_path: Path) -> None:
    out = tmp_path / "aw.tsv"
    result = manylm("fit", BLOCKED, "--samples", BLOCKED_SAMPLES, "--design",
                    "~ treatment + batch", "--test", "treatment[trt]", "--array-weights",
                    "--sort", "none", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t")
    limma = pd.read_csv(REFERENCE / "blocks" / "array_weights_top.tsv.gz", sep="\t")
    np.testing.assert_allclose(table["t"], limma["t"], rtol=1e-8)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["transform"]["array_weights"]["P02_b"] == pytest.approx(0.2314, abs=1e-4)


def test_quality_weights_match_the_api(tmp_path: Path) -> None:
    """--voom --quality-weights runs voom_with_quality_weights (checked against limma's
    voomWithQualityWeights in tests/test_counts_parity.py) on the filtered counts."""
    from manylm.counts import voom_with_quality_weights

    out = tmp_path / "vqw.tsv"
    result = manylm("fit", PASILLA, "--samples", PASILLA_SAMPLES, "--design",
                    "~ condition + type", "--reference", "condition=untreated", "--test",
                    "condition[treated]", "--counts", "--filter", "--voom", "--quality-weights",
                    "--sort", "none", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t", index_col=0)
    expected, weighted = pasilla_through_the_api(voom_with_quality_weights)
    assert list(table.index) == list(expected.index)
    np.testing.assert_allclose(table["t"], expected["t"], rtol=1e-10)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert weighted.sample_weights is not None
    found = pd.Series(record["transform"]["quality_weights"])
    np.testing.assert_allclose(found[weighted.sample_weights.index], weighted.sample_weights,
                               atol=1e-6)
    assert_user_error(manylm("fit", PASILLA, "--samples", PASILLA_SAMPLES, "--design",
                             "~ condition", "--counts", "--quality-weights"), "--voom")


def test_qvalue_columns_and_pi0(tmp_path: Path) -> None:
    """--qvalue adds q_value and lfdr after adj_p_value and records pi0 (qvalue's defaults)."""
    from manylm.inference.qvalue import qvalue

    out = tmp_path / "q.tsv"
    result = manylm("fit", EXPRESSION, "--samples", SAMPLES, "--design",
                    "~ cancer + C(batch)", "--reference", "cancer=Normal", "--test",
                    "cancer[Cancer]", "--qvalue", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t", index_col=0)
    columns = list(table.columns)
    assert columns[columns.index("adj_p_value") + 1: columns.index("adj_p_value") + 3] == [
        "q_value", "lfdr"]
    expected = qvalue(table["p_value"].to_numpy())
    np.testing.assert_allclose(table["q_value"], expected.q_values, rtol=1e-9)  # text: 11 digits
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["qvalue"]["pi0"] == pytest.approx(expected.pi0)
    assert 0 < record["qvalue"]["pi0"] <= 1


def test_surrogates_match_sva_and_limma(tmp_path: Path) -> None:
    """--surrogates 2: R's sva(edata, ~cancer + batch, ~batch, n.sv = 2), then limma's F test of
    cancer with the SVs in the design (tests/reference/sva.R), on the bundled float32 data."""
    from manylm.io import example_paths

    expression, samples = example_paths()
    out = tmp_path / "sv.tsv"
    result = manylm("fit", expression, "--samples", samples, "--design", "~ cancer + C(batch)",
                    "--reference", "cancer=Biopsy", "--test", "cancer", "--surrogates", "2",
                    "--sort", "none", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "2 surrogate variable(s) added to the design (sv1, sv2)" in result.stderr
    table = pd.read_csv(out, sep="\t", index_col=0)
    expected = read_reference("sva/irw_cancer_batch_pvalues.tsv.gz")
    assert list(table.index) == list(expected.index)
    np.testing.assert_allclose(table["p_value"], expected["limma_p"], rtol=1e-6)
    surrogates = pd.read_csv(f"{out}.surrogates.tsv", sep="\t", index_col=0)
    assert list(surrogates.columns) == ["sv1", "sv2"] and len(surrogates) == 57
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["transform"]["surrogates"]["n_sv"] == 2
    assert record["design"]["coefficients"][-2:] == ["sv1", "sv2"]
    assert_user_error(manylm("fit", expression, "--samples", samples, "--design", "~ cancer",
                             "--surrogates", "many"), "--surrogates", "auto")


def test_memory_option_streams_the_same_table(tmp_path: Path) -> None:
    """manylm fit --memory streams a Parquet matrix too large for the budget: the same table."""
    rng = np.random.default_rng(7)
    samples = pd.DataFrame({"group": np.repeat(["A", "B"], 10)},
                           index=pd.Index([f"s{i}" for i in range(20)], name="sample"))
    values = rng.normal(size=(400_000, 20))
    values[:50, 10:] += 2.0
    matrix = pd.DataFrame(values, index=pd.Index([f"f{i}" for i in range(400_000)],
                                                 name="feature"), columns=samples.index)
    parquet = tmp_path / "expr.parquet"
    matrix.to_parquet(parquet)
    samples.to_csv(tmp_path / "samples.tsv", sep="\t")
    common = ["--samples", tmp_path / "samples.tsv", "--design", "~ group", "--quiet"]
    streamed = manylm("fit", parquet, *common, "--memory", "160M", "--out", tmp_path / "s.tsv")
    assert streamed.returncode == 0, streamed.stderr
    record = json.loads((tmp_path / "s.tsv.run.json").read_text())
    assert "engine" in record, "the run was not streamed"
    import manylm as api

    expected = api.ebayes(api.lm_fit(matrix, "~ group", samples=samples)).top_table("group")
    table = pd.read_csv(tmp_path / "s.tsv", sep="\t", index_col=0)
    assert list(table.index[:50]) == list(expected.index[:50])
    np.testing.assert_allclose(table["t"], expected.loc[table.index, "t"], rtol=1e-9)
    refused = manylm("fit", parquet, *common, "--memory", "160M", "--qvalue")
    assert refused.returncode == 2 and "--qvalue" in refused.stderr


@pytest.mark.parametrize("engine_options", [[], ["--memory", "300M"]])
def test_checksum_of_large_inputs_only_when_asked(small: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  engine_options: list[str]) -> None:
    """Inputs above the size limit are recorded by size and time; --checksum hashes them."""
    import hashlib

    import manylm.io.run_record as run_record
    from manylm.cli.main import main

    expression = small["expr"]
    if engine_options:  # streamed: from Parquet
        expression = tmp_path / "expr.parquet"
        assert main(["convert", str(small["expr"]), str(expression), "--quiet"]) == 0
    monkeypatch.setattr(run_record, "CHECKSUM_MAX_BYTES", 1000)  # the matrix is larger
    out = tmp_path / "t.tsv"
    base = ["fit", str(expression), "--samples", str(small["samples"]), "--design",
            "~ group", "--test", "group[T.B]", "--out", str(out), "--quiet", *engine_options]
    assert main(base) == 0
    inputs = json.loads(Path(f"{out}.run.json").read_text())["inputs"]
    assert inputs["expression"]["sha256"] is None and inputs["expression"]["modified"]
    assert inputs["samples"]["sha256"] == hashlib.sha256(small["samples"].read_bytes()).hexdigest()
    assert main([*base, "--checksum"]) == 0
    inputs = json.loads(Path(f"{out}.run.json").read_text())["inputs"]
    assert inputs["expression"]["sha256"] == hashlib.sha256(expression.read_bytes()).hexdigest()


def test_help_names_every_matrix_format() -> None:
    """--help of the verbs that read a matrix whole lists what read_matrix reads."""
    import re

    from manylm.cli.options import MATRIX_FORMATS
    from manylm.io import MATRIX_SUFFIXES

    for suffix in MATRIX_SUFFIXES:
        name = suffix.removesuffix(".gz")
        if name in (".tsv", ".txt", ".tab", ".csv"):
            assert "TSV/CSV (gz)" in MATRIX_FORMATS
        elif name == ".parquet":
            assert "Parquet" in MATRIX_FORMATS
        else:
            assert re.search(re.escape(name) + r"\b(?!\.)", MATRIX_FORMATS), name


def test_weights_without_some_features_are_counted_in_the_matrix_order() -> None:
    from manylm.cli.inputs import align_weights
    from manylm.errors import InputError

    ids = [f"g{i}" for i in range(120)]
    expression = pd.DataFrame(np.ones((120, 2)), index=ids, columns=["A", "B"])
    weights = expression.iloc[:3]
    with pytest.raises(InputError, match=r"w.tsv: no weights for 117 feature\(s\) \('g3', "
                                         r"'g4', 'g5', 'g6', 'g7' and 112 more"):
        align_weights(weights, expression, "w.tsv")
