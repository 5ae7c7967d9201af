"""``manylm scan`` through its real entry point, on the R reference files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reference_data import assert_close, read_reference

QTL = Path(__file__).parent.parent / "reference" / "qtl"
GENOTYPES = QTL / "genotypes.tsv"
PHENOTYPES = QTL / "phenotypes.tsv"
COVARIATES = QTL / "covariates.tsv"
SAMPLES = QTL / "samples.tsv"


def manylm(*args: object) -> subprocess.CompletedProcess[str]:
    command = [shutil.which("manylm")] if shutil.which("manylm") else [sys.executable, "-m",
                                                                       "manylm"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=False)


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("manylm: error:"), result.stderr
    for fragment in fragments:
        assert fragment in message, message


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return read_reference("qtl/lm_pairs.tsv.gz").reset_index().set_index(
        ["variant", "phenotype"])


def test_scan_with_a_covariate_file(tmp_path: Path, pairs: pd.DataFrame) -> None:
    out = tmp_path / "pairs.tsv"
    result = manylm("scan", GENOTYPES, "--phenotypes", PHENOTYPES, "--covariates", COVARIATES,
                    "--p-threshold", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "585 trans tests" in result.stderr
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == ["variant", "phenotype", "beta", "se", "t", "p_value",
                                   "adj_p_value"]
    joined = table.set_index(["variant", "phenotype"]).join(pairs, rsuffix="_r")
    assert_close(joined["p_value"], joined["p_default"], 1e-8, what="p")
    assert_close(joined["adj_p_value"], joined["adj_default"], 1e-8, what="BH")
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["n_tests"] == {"trans": 585, "cis": 0}
    assert record["variant_status"]["monomorphic"] == 1 and record["n_imputed"] == 1
    assert record["inputs"]["genotypes"]["sha256"]


def test_formula_covariates_cis_and_parquet(tmp_path: Path, pairs: pd.DataFrame) -> None:
    out = tmp_path / "cis.parquet"
    result = manylm("scan", GENOTYPES, "--phenotypes", PHENOTYPES, "--samples", SAMPLES,
                    "--covariates", "~ age + sex + C(batch)", "--cis-window", 25000,
                    "--positions", QTL / "variant_positions.tsv",
                    "--positions", QTL / "phenotype_positions.tsv",
                    "--p-threshold", 1e-4, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    table = pd.read_parquet(out)
    tested = pairs.index.get_level_values(0) != "rs011"
    cis = table[table["region"] == "cis"].set_index(["variant", "phenotype"])
    expected_cis = pairs.index[tested & (pairs["cis"] == 1)]
    assert set(cis.index) == set(expected_cis)
    joined = cis.join(pairs, rsuffix="_r")
    assert_close(joined["adj_p_value"], joined["adj_cis_family"], 1e-8, what="cis BH")
    trans = table[table["region"] == "trans"]
    assert (trans["p_value"] <= 1e-4).all()
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["n_tests"]["cis"] == len(expected_cis)


def test_outcome_from_the_sample_sheet(tmp_path: Path) -> None:
    out = tmp_path / "gwas.tsv.gz"
    result = manylm("scan", GENOTYPES, "--samples", SAMPLES, "--outcome", "status",
                    "--covariates", "~ sex + C(batch)", "--p-threshold", 1,
                    "--max-missing-exact", 60, "--out", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out, sep="\t").set_index("variant")
    reference = read_reference("qtl/lm_outcome.tsv").loc[table.index]
    assert_close(table["t"], reference["t"], 1e-8, what="t")
    assert (table["phenotype"] == "status").all()


def run_in_process(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """The same command without a new interpreter (for the error paths)."""
    from manylm.cli.main import main

    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse usage errors
        status = int(exit_.code or 0)
    return status, capsys.readouterr().err


def test_mismatched_samples_are_listed(tmp_path: Path, capsys) -> None:
    phenotypes = pd.read_csv(PHENOTYPES, sep="\t", index_col=0)
    phenotypes["EXTRA1"] = 0.0
    phenotypes["EXTRA2"] = 1.0
    path = tmp_path / "pheno.tsv"
    phenotypes.to_csv(path, sep="\t")
    out = tmp_path / "out.tsv"
    status, err = run_in_process(capsys, "scan", GENOTYPES, "--phenotypes", path,
                                 "--covariates", COVARIATES, "--out", out)
    assert status == 2
    assert "have no genotypes" in err and "have no covariates: 'EXTRA1', 'EXTRA2'" in err
    assert not out.exists() and not Path(f"{out}.run.json").exists()


def test_dosage_out_of_range_leaves_no_output(tmp_path: Path, capsys) -> None:
    genotypes = pd.read_csv(GENOTYPES, sep="\t", index_col=0)
    genotypes.iloc[3, 2] = 4.0
    path = tmp_path / "geno.tsv"
    genotypes.to_csv(path, sep="\t", na_rep="NA")
    out = tmp_path / "out.tsv"
    status, err = run_in_process(capsys, "scan", path, "--phenotypes", PHENOTYPES, "--out", out)
    assert status == 2
    assert "variant 'rs004'" in err and "dosage 4 is outside [0, 2]" in err
    assert [p.name for p in tmp_path.iterdir()] == ["geno.tsv"]


@pytest.mark.parametrize(("args", "fragments"), [
    (["--outcome", "status"], ["give --samples"]),
    (["--phenotypes", PHENOTYPES, "--covariates", "~ sex"], ["formula", "give --samples"]),
    (["--phenotypes", PHENOTYPES, "--cis-window", "1000"], ["needs --positions"]),
    (["--phenotypes", PHENOTYPES, "--samples", SAMPLES, "--outcome", "status"],
     ["not allowed with argument"]),
    (["--samples", SAMPLES, "--outcome", "batch"], ["must be numeric"]),
])
def test_usage_errors(tmp_path: Path, capsys, args: list[object], fragments: list[str]) -> None:
    status, err = run_in_process(capsys, "scan", GENOTYPES, *args, "--out", tmp_path / "o.tsv")
    assert status == 2 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_collinear_covariates_are_named(tmp_path: Path, capsys) -> None:
    covariates = pd.read_csv(COVARIATES, sep="\t", index_col=0)
    covariates.loc["age_months"] = covariates.loc["age"] * 12
    path = tmp_path / "cov.tsv"
    covariates.to_csv(path, sep="\t")
    status, err = run_in_process(capsys, "scan", GENOTYPES, "--phenotypes", PHENOTYPES,
                                 "--covariates", path, "--out", tmp_path / "o.tsv")
    assert status == 2
    assert "covariates collinear with each other: 'age_months' = a combination of 'age'" in err
