"""The HTML report, parsed and checked structurally (no browser needed)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from html_structure import parse
from report_data import HOSTILE, HOSTILE_IMG

import manylm
from manylm.errors import InputError
from manylm.report import ReportInputs, render_report, write_report

pytest.importorskip("matplotlib")


def test_one_self_contained_document(report_html: str) -> None:
    assert report_html.startswith("<!DOCTYPE html>")
    page = parse(report_html)
    for tag in ("link", "iframe", "object", "embed", "form", "base"):
        assert not page.find(tag), tag
    images = page.find("img")
    assert len(images) >= 8
    for image in images:
        source = image["src"] or ""
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for anchor in page.find("a"):
        assert (anchor.get("href") or "").startswith("#")
    assert all("url(" not in style and "@import" not in style for style in page.styles)
    assert len(report_html.encode()) < 3_000_000


def test_policy_allows_only_the_reports_own_script_and_style(report_html: str) -> None:
    page = parse(report_html)
    assert len(page.scripts) == 1 and len(page.styles) == 1
    policy = next(m["content"] for m in page.find("meta")
                  if m.get("http-equiv") == "Content-Security-Policy")
    assert policy is not None and "default-src 'none'" in policy
    for source, directive in ((page.scripts[0], "script-src"), (page.styles[0], "style-src")):
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in policy


def test_sections_and_notes(report_html: str) -> None:
    page = parse(report_html)
    ids = {attributes.get("id") for _, attributes in page.tags}
    assert {"notes", "run", "samples", "diagnostics", "table", "pvalue-histogram", "pvalue-qq",
            "volcano-0", "md-0", "sa-plot", "residual-structure", "estimates", "mds"} <= ids
    text = " ".join(page.texts)
    # batch is left out of the design on purpose: a residual component follows it.
    assert "tied to batch" in text
    assert "60% of the features are significant" in text
    assert "~ cancer" in text and "ab" * 32 in text  # the run record


def test_feature_and_sample_names_are_text(report_html: str) -> None:
    page = parse(report_html)
    assert HOSTILE in page.cell_texts and HOSTILE_IMG in page.cell_texts
    assert "<b>sample&1</b>" in page.cell_texts
    assert HOSTILE not in report_html and "<img src=x" not in report_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report_html
    assert "&lt;b&gt;sample&amp;1&lt;/b&gt;" in report_html
    assert len(page.find("script")) == 1


def test_sortable_top_table(report_html: str, bladder) -> None:
    page = parse(report_html)
    headers = page.header_cells
    assert [h.get("data-type") for h in headers][:2] == ["text", "number"]
    assert all(h.get("aria-sort") == "none" and h.get("tabindex") == "0" for h in headers)
    assert page.body_rows_in_results == len(bladder.table)
    assert "q_value" in report_html


def test_top_rows_are_the_smallest_p_values(report_inputs) -> None:
    small = dataclasses.replace(report_inputs, top_rows=5, expression=None,
                                residual_structure=None)
    from manylm.report import sections

    html = sections.table_section(small.table, top_rows=5)
    page = parse(html)
    expected = small.table.sort_values("p_value", kind="stable")["feature"].iloc[:5]
    shown = [text for text in page.cell_texts if text in set(small.table["feature"])]
    assert shown == list(expected)
    assert page.body_rows_in_results == 5


def _small_inputs(**changes) -> ReportInputs:
    rng = np.random.default_rng(5)
    sheet = pd.DataFrame({"group": ["A", "B"] * 4, "dose": np.arange(8.0)},
                         index=pd.Index([f"s{i}" for i in range(8)], name="sample"))
    values = pd.DataFrame(rng.normal(size=(300, 8)), columns=sheet.index,
                          index=[f"f{i}" for i in range(300)])
    design = manylm.design_matrix("~ group + dose", sheet)
    result = manylm.ordinary_statistics(manylm.lm_fit(values, design))
    tested = ["group[T.B]", "dose"]
    table = result.top_table(tested)
    base = ReportInputs(run_record={"command": "fit"}, samples=sheet, result=result,
                        table=table, tested=tested)
    return dataclasses.replace(base, **changes)


def test_f_test_without_optional_inputs_or_matplotlib(monkeypatch) -> None:
    from manylm.report import figures

    monkeypatch.setattr(figures, "_can_draw", lambda: False)
    html = render_report(_small_inputs())
    page = parse(html)
    assert not page.find("img")
    text = " ".join(page.texts)
    assert "matplotlib is not installed" in text
    assert "F test of group[T.B], dose" in text or "No feature is significant" in text
    assert "ordinary least squares" in text


def test_f_test_plots_each_coefficient(monkeypatch) -> None:
    from manylm.report import figures

    # Every plot is drawn; only its PNG encoding is skipped, to keep the test fast.
    monkeypatch.setattr(figures, "figure_png", lambda figure: b"\x89PNG\r\n\x1a\n")
    html = render_report(_small_inputs(max_points=100))
    ids = {a.get("id") for _, a in parse(html).tags}
    assert {"volcano-0", "volcano-1", "md-0", "md-1"} <= ids and "mds" not in ids


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="not coefficients"):
        render_report(_small_inputs(tested=["nope"]))
    with pytest.raises(InputError, match="pi0"):
        render_report(_small_inputs(pi0=2.0))
    with pytest.raises(InputError, match="q_values"):
        render_report(_small_inputs(q_values=np.ones(3)))


def test_write_report_is_atomic(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_report(tmp_path / "missing" / "r.html", _small_inputs())
    target = tmp_path / "r.html"
    target.write_text("old")
    from manylm.report import html as html_module

    def broken(inputs):
        raise RuntimeError("boom")
    monkeypatch.setattr(html_module, "render_report", broken)
    with pytest.raises(RuntimeError):
        write_report(target, _small_inputs())
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
