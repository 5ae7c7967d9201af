"""``manylm sva`` through its real entry point, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_user_error, manylm

from manylm.confounders.sva import sva
from manylm.io import read_matrix, read_sample_sheet

REFERENCE = Path(__file__).parent.parent / "reference"
EXPRESSION = REFERENCE / "inputs" / "bladder_expr.tsv.gz"
SAMPLES = REFERENCE / "inputs" / "bladder_samples.tsv"
COUNTS = REFERENCE / "inputs" / "pasilla_counts.tsv.gz"
COUNT_SAMPLES = REFERENCE / "inputs" / "pasilla_samples.tsv"


def test_sva_writes_the_surrogates_and_a_run_record(tmp_path: Path) -> None:
    out, probabilities = tmp_path / "sv.tsv", tmp_path / "pprob.tsv"
    result = manylm("sva", EXPRESSION, "--samples", SAMPLES, "--design", "~ cancer", "--null",
                    "~ 1", "--n-sv", "2", "--out", out, "--probabilities", probabilities)
    assert result.returncode == 0, result.stderr
    assert "2 surrogate variable(s) (irw; number given)" in result.stderr
    table = pd.read_csv(out, sep="\t", dtype={"sample": str})
    assert list(table.columns) == ["sample", "sv1", "sv2"]
    expected = sva(read_matrix(EXPRESSION), "~ cancer", "~ 1",
                   samples=read_sample_sheet(SAMPLES), n_sv=2)
    assert list(table["sample"]) == list(expected.surrogates.index)
    np.testing.assert_allclose(table[["sv1", "sv2"]], expected.surrogates, rtol=1e-12,
                               atol=1e-15)
    pprob = pd.read_csv(probabilities, sep="\t")
    assert list(pprob.columns) == ["feature", "pprob_gam", "pprob_b"]
    assert len(pprob) == 2026
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["command"] == "sva" and record["n_sv"] == 2
    assert record["design"] == {"full": "~ cancer", "null": "~ 1", "references": {}}


def test_auto_count_is_seeded_and_zero_is_said(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    samples = [f"S{i}" for i in range(6)]
    noise = pd.DataFrame(rng.normal(8, 1, (1000, 6)), columns=samples,
                         index=pd.Index([f"g{i:04d}" for i in range(1000)], name="feature"))
    noise.to_csv(tmp_path / "noise.tsv", sep="\t")
    pd.DataFrame({"sample": samples, "group": ["A", "B"] * 3}).to_csv(
        tmp_path / "samples.tsv", sep="\t", index=False)
    out = tmp_path / "sv.tsv"
    result = manylm("sva", tmp_path / "noise.tsv", "--samples", tmp_path / "samples.tsv",
                    "--design", "~ group", "--n-sv", "auto", "--seed", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "no surrogate variables (num_sv 'be', seed 3); nothing written" in result.stderr
    assert not out.exists() and not Path(f"{out}.run.json").exists()


def test_svaseq_leaves_constant_features_out_with_a_note(tmp_path: Path) -> None:
    out = tmp_path / "sv.csv"
    result = manylm("sva", COUNTS, "--samples", COUNT_SAMPLES, "--design", "~ condition",
                    "--counts", "--n-sv", "auto", "--method", "leek", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "2240 feature(s) with a constant value were left out" in result.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == ["sample", "sv1"]  # leek finds 1 on pasilla (as R)
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["n_sv_chosen_by"] == "leek" and record["n_features_used"] == 14599 - 2240


def test_supervised_with_a_controls_file(tmp_path: Path) -> None:
    features = read_matrix(EXPRESSION).index
    controls = pd.DataFrame({"feature": features,
                             "control": np.random.default_rng(2).uniform(size=len(features))})
    controls.to_csv(tmp_path / "controls.tsv", sep="\t", index=False)
    out = tmp_path / "sv.tsv"
    result = manylm("sva", EXPRESSION, "--samples", SAMPLES, "--design", "~ cancer",
                    "--controls", tmp_path / "controls.tsv", "--n-sv", "3", "--out", out,
                    "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert list(pd.read_csv(out, sep="\t").columns) == ["sample", "sv1", "sv2", "sv3"]
    controls.iloc[:-1].to_csv(tmp_path / "short.tsv", sep="\t", index=False)
    result = manylm("sva", EXPRESSION, "--samples", SAMPLES, "--design", "~ cancer",
                    "--controls", tmp_path / "short.tsv", "--n-sv", "3", "--out", out)
    assert_user_error(result, "no control probability for 1 feature(s)", features[-1])


@pytest.mark.parametrize(("options", "fragments"), [
    (["--design", "~ cancer", "--n-sv", "60"],
     ["n_sv = 60 is more than the data allow", "at most 53 surrogate variable(s)"]),
    (["--design", "~ cancer", "--null", "~ C(batch)", "--n-sv", "2"],
     ["not nested in the full model", "C(batch)[T.2]"]),
    (["--design", "~ cancer + outcome", "--n-sv", "2"],
     ["full model is rank-deficient", "outcome[T.Normal]"]),
    (["--design", "~ cancer", "--n-sv", "two"], ["--n-sv must be a whole number or 'auto'"]),
])
def test_bad_requests_are_one_line_errors(tmp_path: Path, options: list[str],
                                          fragments: list[str]) -> None:
    out = tmp_path / "sv.tsv"
    result = manylm("sva", EXPRESSION, "--samples", SAMPLES, *options, "--out", out)
    assert_user_error(result, *fragments)
    assert not out.exists()
