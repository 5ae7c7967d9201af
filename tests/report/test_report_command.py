"""``manylm report RUN.json``: from a real ``manylm fit`` run record to the HTML file.

The run is re-created from the record's request (manylm.cli.fit_report).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from html_structure import parse
from report_data import INPUTS

from manylm.cli.main import main
from manylm.cli.report_command import default_report_path

pytest.importorskip("matplotlib")


@pytest.fixture
def fitted(tmp_path: Path) -> Path:
    shutil.copy(INPUTS / "blocked_expr.tsv.gz", tmp_path / "expr.tsv.gz")
    shutil.copy(INPUTS / "blocked_samples.tsv", tmp_path / "samples.tsv")
    status = main(["fit", str(tmp_path / "expr.tsv.gz"), "--samples",
                   str(tmp_path / "samples.tsv"), "--design", "~ treatment", "--test",
                   "treatment", "--out", str(tmp_path / "res.tsv"), "--quiet"])
    assert status == 0
    return tmp_path / "res.tsv.run.json"


def test_report_from_a_run_record(fitted: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    from manylm.report import figures

    monkeypatch.setattr(figures, "_can_draw", lambda: False)  # the plots are tested elsewhere
    assert main(["report", str(fitted), "--title", "Blocked <demo>"]) == 0
    out = fitted.with_name("res.tsv.html")
    assert out.is_file()
    assert f"report written to {out}" in capsys.readouterr().err
    record = json.loads(fitted.read_text())
    page = parse(out.read_text())
    text = " ".join(page.texts)
    assert "Blocked <demo>" in text and "~ treatment" in text
    assert record["inputs"]["expression"]["sha256"] in text
    assert page.body_rows_in_results == 300
    assert "changed since the run" not in text


def test_changed_input_is_said(fitted: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from manylm.report import figures

    monkeypatch.setattr(figures, "_can_draw", lambda: False)
    samples = fitted.parent / "samples.tsv"
    samples.write_text(samples.read_text() + "\n")  # same table, different bytes
    out = fitted.parent / "custom.html"
    assert main(["report", str(fitted), "--out", str(out)]) == 0
    assert "samples file" in capsys.readouterr().err
    assert "changed since the run" in " ".join(parse(out.read_text()).texts)


def test_input_without_checksum_is_compared_by_size_and_time(
        fitted: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An input too large to be hashed by default: changed when its size or time differ."""
    import os

    from manylm.report import figures

    monkeypatch.setattr(figures, "_can_draw", lambda: False)
    record = json.loads(fitted.read_text())
    expression = record["inputs"]["expression"]
    expression["sha256"] = None
    expression["sha256_skipped"] = "larger than 1 GiB"
    fitted.write_text(json.dumps(record))
    out = fitted.parent / "same.html"
    assert main(["report", str(fitted), "--out", str(out)]) == 0
    text = " ".join(parse(out.read_text()).texts)
    assert "changed since the run" not in text and "not computed" in text
    path = Path(expression["path"])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert main(["report", str(fitted), "--out", str(out)]) == 0
    assert "expression file" in capsys.readouterr().err
    assert "changed since the run" in " ".join(parse(out.read_text()).texts)


def test_user_errors(fitted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "none.json")]) == 2
    assert "no such run record" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", str(tmp_path / "bad.json")]) == 2
    assert "not a JSON run record" in capsys.readouterr().err
    (tmp_path / "other.json").write_text(json.dumps({"command": "sva"}))
    assert main(["report", str(tmp_path / "other.json")]) == 2
    assert "not a run record of 'manylm fit'" in capsys.readouterr().err
    assert main(["report", str(fitted), "--out", str(tmp_path / "no" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (fitted.parent / "expr.tsv.gz").unlink()
    assert main(["report", str(fitted)]) == 2
    assert "no longer exists" in capsys.readouterr().err
    assert not fitted.with_name("res.tsv.html").exists()


def test_real_entry_point_reports_a_missing_record(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "manylm", "report",
                             str(tmp_path / "x.run.json")], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("manylm: error:")


def test_default_report_path() -> None:
    assert default_report_path(Path("a/res.tsv.run.json")) == Path("a/res.tsv.html")
    assert default_report_path(Path("run.json")) == Path("run.html")
    assert default_report_path(Path("record")) == Path("record.html")


def test_fit_report_with_voom_and_batch(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """manylm fit --report on counts: voom's trend, residual components against the sheet's
    columns, q-values; and the same report again from the run record."""
    out = tmp_path / "voom.tsv"
    report = tmp_path / "voom.html"
    status = main(["fit", str(INPUTS / "pasilla_counts.tsv.gz"), "--samples",
                   str(INPUTS / "pasilla_samples.tsv"), "--design", "~ condition + type",
                   "--test", "condition[treated]", "--reference", "condition=untreated",
                   "--counts", "--filter", "--voom", "--out", str(out), "--report",
                   str(report), "--quiet"])
    assert status == 0, capsys.readouterr().err
    record = json.loads(Path(f"{out}.run.json").read_text())
    assert record["report"] == str(report)
    text = " ".join(parse(report.read_text()).texts)
    assert "voom" in text.lower() and "type" in text
    assert main(["report", f"{out}.run.json", "--out", str(tmp_path / "again.html"),
                 "--quiet"]) == 0
    assert (tmp_path / "again.html").stat().st_size > 10_000


def test_fit_report_bad_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["fit", str(INPUTS / "blocked_expr.tsv.gz"), "--samples",
                   str(INPUTS / "blocked_samples.tsv"), "--design", "~ treatment",
                   "--out", str(tmp_path / "r.tsv"), "--report", str(tmp_path / "r.pdf")])
    assert status == 2 and ".html" in capsys.readouterr().err
    assert not (tmp_path / "r.tsv").exists()


def test_fit_qvalue_report_computes_q_values_once(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With --qvalue the report reuses the table's q-values (and their pi0)."""
    from manylm.cli import fit_command
    from manylm.report import figures

    qvalue_module = sys.modules["manylm.inference.qvalue"]  # the name is also the function's

    monkeypatch.setattr(figures, "_can_draw", lambda: False)
    calls = []
    original = qvalue_module.qvalue

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fit_command, "qvalue", counting)
    monkeypatch.setattr(qvalue_module, "qvalue", counting)
    shutil.copy(INPUTS / "blocked_expr.tsv.gz", tmp_path / "expr.tsv.gz")
    shutil.copy(INPUTS / "blocked_samples.tsv", tmp_path / "samples.tsv")
    status = main(["fit", str(tmp_path / "expr.tsv.gz"), "--samples",
                   str(tmp_path / "samples.tsv"), "--design", "~ treatment", "--test",
                   "treatment", "--qvalue", "--out", str(tmp_path / "res.tsv"), "--report",
                   str(tmp_path / "res.html"), "--quiet"])
    assert status == 0 and len(calls) == 1
    text = " ".join(parse((tmp_path / "res.html").read_text()).texts)
    assert "q_value" in text
