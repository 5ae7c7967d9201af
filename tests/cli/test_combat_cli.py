"""``manylm combat`` through its real entry point, on real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.cli.main import main

REFERENCE = Path(__file__).parent.parent / "reference"
INPUTS = REFERENCE / "inputs"
BLADDER = INPUTS / "bladder_expr.tsv.gz"
BLADDER_SAMPLES = INPUTS / "bladder_samples.tsv"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def assert_one_line_error(status: int, stderr: str, *fragments: str) -> None:
    assert status == 2, stderr
    assert "Traceback" not in stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("manylm: error:"), stderr
    for fragment in fragments:
        assert fragment in message, message


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", index_col=0, dtype={0: str})


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """12 samples in batches a, b, c (4 each) plus d (1); features with edge cases."""
    folder = tmp_path_factory.mktemp("combat")
    rng = np.random.default_rng(3)
    samples = pd.DataFrame({
        "sample": [f"S{i:02d}" for i in range(13)],
        "batch": ["a"] * 4 + ["b"] * 4 + ["c"] * 4 + ["d"],
        "merged": ["a"] * 4 + ["b"] * 4 + ["c"] * 5,
        "group": ["x", "y"] * 6 + ["x"],
        "plate": ["p"] * 4 + ["q"] * 4 + ["r"] * 5,
    })
    samples.to_csv(folder / "samples.tsv", sep="\t", index=False)
    values = rng.normal(8, 1, (30, 13))
    values[0, :4] = 5.0       # constant within batch a
    values[1] = np.nan        # no observed value
    values[2, 6] = np.nan     # one missing value
    expression = pd.DataFrame(values, columns=samples["sample"])
    expression.insert(0, "feature", [f"g{i:02d}" for i in range(30)])
    expression.to_csv(folder / "expr.tsv", sep="\t", index=False)
    return {"dir": folder, "expr": folder / "expr.tsv", "samples": folder / "samples.tsv"}


def test_combat_writes_the_input_layout_and_matches_sva(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "adjusted.tsv.gz"
    status, stderr = run(capsys, "combat", BLADDER, "--samples", BLADDER_SAMPLES, "--batch",
                         "batch", "--protect", "~ cancer", "--out", out)
    assert status == 0, stderr
    ours = read_tsv(out)
    expected = read_tsv(REFERENCE / "combat" / "parametric.tsv.gz")
    assert list(ours.index) == list(expected.index)
    assert list(ours.columns) == list(expected.columns)
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-9)
    record = json.loads((tmp_path / "adjusted.tsv.gz.run.json").read_text())
    assert record["command"] == "combat"
    assert record["batches"] == {"1": 11, "2": 18, "3": 4, "4": 5, "5": 19}
    assert record["options"]["protect"] == "~ cancer"
    assert set(record["priors"]["3"]) == {"gamma_bar", "tau2", "a_prior", "b_prior"}
    assert record["inputs"]["expression"]["sha256"]


def test_combat_seq_counts_stay_counts(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "adjusted.parquet"
    status, stderr = run(capsys, "combat", INPUTS / "synth_counts.tsv.gz", "--samples",
                         INPUTS / "synth_counts_samples.tsv", "--batch", "batch", "--counts",
                         "--group", "group", "--out", out)
    assert status == 0, stderr
    assert "only zero counts in some batch" in stderr  # sva leaves those genes alone too
    ours = pd.read_parquet(out).set_index("feature")
    assert all(pd.api.types.is_integer_dtype(t) for t in ours.dtypes)
    expected = read_tsv(REFERENCE / "combat" / "seq_synth_group.tsv.gz")
    np.testing.assert_array_equal(ours.to_numpy(), expected.to_numpy())
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["method"].startswith("ComBat-seq")
    assert record["unadjusted_features"]["count"] == 87


def test_notices_for_features_left_alone(small: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    status, stderr = run(capsys, "combat", small["expr"], "--samples", small["samples"],
                         "--batch", "merged", "--out", out)
    assert status == 0, stderr
    assert "constant within a batch and were left unadjusted, as sva's ComBat does: " \
           "'g00 (batch a)'" in stderr
    assert "have no observed value and were left as missing: 'g01'" in stderr
    assert "1 missing value(s): each feature is fitted on its observed samples" in stderr
    ours = pd.read_csv(out, index_col=0)
    original = read_tsv(small["expr"])
    np.testing.assert_array_equal(ours.loc["g00"], original.loc["g00"])
    assert ours.loc["g01"].isna().all()
    assert np.isnan(ours.loc["g02", "S06"]) and ours.loc["g02"].notna().sum() == 12
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["unadjusted_features"] == {"count": 2, "first": ["g00", "g01"]}
    assert len(record["notices"]) == 3


@pytest.mark.parametrize(("arguments", "fragments"), [
    (["--batch", "batch"], ["Batch 'd' (sample S12) has a single sample", "--mean-only"]),
    (["--batch", "merged", "--protect", "~ plate"], ["confounded with batch",
                                                     "plate[T.q]"]),
    (["--batch", "merged", "--reference-batch", "z"],
     ["reference batch 'z' is not one of the batches: 'a', 'b', 'c'"]),
    (["--batch", "lab"], ["--batch column 'lab' is not in the sample sheet"]),
    (["--batch", "merged", "--counts", "--mean-only"], ["--mean-only applies to ComBat"]),
    (["--batch", "merged", "--group", "group"], ["--group is ComBat-seq's condition"]),
    (["--batch", "merged", "--counts"], ["missing value(s), e.g. gene 'g01'"]),
])
def test_bad_input_is_one_line_and_leaves_no_output(
        small: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        arguments: list[str], fragments: list[str]) -> None:
    out = tmp_path / "out.tsv"
    status, stderr = run(capsys, "combat", small["expr"], "--samples", small["samples"],
                         *arguments, "--out", out)
    assert_one_line_error(status, stderr, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_single_sample_batch_with_mean_only(small: dict[str, Path], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.tsv"
    status, stderr = run(capsys, "combat", small["expr"], "--samples", small["samples"],
                         "--batch", "batch", "--mean-only", "--quiet", "--out", out)
    assert status == 0, stderr
    assert stderr == ""
    assert read_tsv(out).shape == (30, 13)


def test_console_script(small: dict[str, Path], tmp_path: Path) -> None:
    command = ([shutil.which("manylm")] if shutil.which("manylm")
               else [sys.executable, "-m", "manylm"])
    out = tmp_path / "out.tsv"
    result = subprocess.run(
        [*command, "combat", str(small["expr"]), "--samples", str(small["samples"]),
         "--batch", "merged", "--non-parametric", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False)
    assert result.returncode == 0, result.stderr
    assert read_tsv(out).shape == (30, 13)


def test_help_mentions_combat_seq(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["combat", "--help"])
    help_text = capsys.readouterr().out
    assert "--counts" in help_text and "ComBat-seq" in help_text


def test_combat_checksum_option(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs above the size limit are recorded by size and time; --checksum hashes them."""
    import hashlib

    import manylm.io.run_record as run_record

    monkeypatch.setattr(run_record, "CHECKSUM_MAX_BYTES", 1000)
    out = tmp_path / "adjusted.tsv"
    base = ["combat", BLADDER, "--samples", BLADDER_SAMPLES, "--batch", "batch", "--out", out]
    for extra, hashed in (([], False), (["--checksum"], True)):
        status, stderr = run(capsys, *base, *extra)
        assert status == 0, stderr
        inputs = json.loads((tmp_path / "adjusted.tsv.run.json").read_text())["inputs"]
        digest = hashlib.sha256(Path(BLADDER).read_bytes()).hexdigest()
        assert inputs["expression"]["sha256"] == (digest if hashed else None)
