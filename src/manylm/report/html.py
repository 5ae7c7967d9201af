"""The self-contained HTML report: one file, no network, opens offline in any browser.

Images are embedded as base64 PNG, the style and the small table-sorting script are inline, and
a Content-Security-Policy allows nothing else: no request leaves the page, and only the
report's own script (pinned by its SHA-256) may run, so even text that slipped past escaping
could not execute.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os

from manylm.report.figures import build_diagnostics
from manylm.report.inputs import ReportInputs, check_report_inputs
from manylm.report.sections import (
    diagnostics_section,
    escape,
    notes_section,
    run_section,
    samples_section,
    table_section,
)

__all__ = ["render_report", "write_report"]

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
  margin: 0 auto; max-width: 1100px; padding: 0 1.2em 3em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav a { margin-right: 1em; } code { font-size: 0.9em; word-break: break-all; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.88em; }
table.grid th, table.grid td, table.kv th, table.kv td { border: 1px solid #ddd;
  padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
table.kv th { background: #f6f6f6; font-weight: 600; }
table.results td[data-v] { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable thead th { cursor: pointer; background: #eef3f8; position: sticky; top: 0; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
div.scroll { max-height: 40em; overflow: auto; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; max-width: 52em; }
ul.notes li { margin: 0.4em 0; } li.warning { color: #8a1c00; } li.info { color: #333; }
p.ok { color: #1d6b2a; } p.missing { color: #8a1c00; }
"""

_SCRIPT = """
(function () {
  "use strict";
  function key(cell, numeric) {
    if (!numeric) { return cell.textContent; }
    var text = cell.getAttribute("data-v");
    return text === null || text === "" ? NaN : parseFloat(text);
  }
  function sortTable(table, column, header) {
    var body = table.tBodies[0];
    var numeric = header.getAttribute("data-type") === "number";
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var direction = ascending ? 1 : -1;
    var items = Array.prototype.map.call(body.rows, function (row, position) {
      return {row: row, key: key(row.cells[column], numeric), position: position};
    });
    items.sort(function (a, b) {
      if (numeric) {
        var aMissing = isNaN(a.key), bMissing = isNaN(b.key);
        if (aMissing || bMissing) {
          return aMissing === bMissing ? a.position - b.position : (aMissing ? 1 : -1);
        }
        if (a.key !== b.key) { return (a.key < b.key ? -1 : 1) * direction; }
      } else {
        var order = a.key.localeCompare(b.key);
        if (order !== 0) { return order * direction; }
      }
      return a.position - b.position;
    });
    Array.prototype.forEach.call(header.parentNode.cells, function (cell) {
      cell.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var fragment = document.createDocumentFragment();
    items.forEach(function (item) { fragment.appendChild(item.row); });
    body.appendChild(fragment);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.addEventListener("click", function () { sortTable(table, column, header); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortTable(table, column, header);
        }
      });
    });
  });
  // Tells a reader (and the tests) that the script was allowed to run.
  document.documentElement.setAttribute("data-sortable", "ready");
}());
"""


def _sha256_source(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _policy() -> str:
    return ("default-src 'none'; img-src data:; "
            f"style-src '{_sha256_source(_STYLE)}'; script-src '{_sha256_source(_SCRIPT)}'; "
            "base-uri 'none'; form-action 'none'")


def render_report(inputs: ReportInputs) -> str:
    """The whole report as one self-contained HTML document.

    Parameters
    ----------
    inputs : ReportInputs

    Returns
    -------
    str
        HTML5; images embedded as base64 PNG, no external resources.
    """
    check_report_inputs(inputs)
    record = dict(inputs.run_record)
    design_record = record.get("design")
    if inputs.design_columns is not None and (not isinstance(design_record, dict)
                                              or "coefficients" not in design_record):
        record["design"] = {**(design_record if isinstance(design_record, dict) else {}),
                            "coefficients": list(inputs.design_columns)}
    options = record.get("options") if isinstance(record.get("options"), dict) else {}
    assert isinstance(options, dict)
    adjust = inputs.adjust or str(options.get("adjust") or "BH")
    diagnostics, notes = build_diagnostics(inputs, adjust)
    fit = inputs.result.fit
    n_samples = len(getattr(fit.design, "sample_ids", [])) or len(inputs.samples)
    formula = (record.get("design") or {}).get("formula") if isinstance(
        record.get("design"), dict) else None
    summary = (f"{fit.n_features:,} features x {n_samples:,} samples"
               + (f"; design {formula}" if formula else "")
               + f"; testing {', '.join(inputs.tested)}"
               + ("" if inputs.result.moderated else " (ordinary least squares, no moderation)")
               + (f" (treat, |estimate| > {inputs.result.treat_lfc:g})"
                  if inputs.result.treat_lfc is not None else "") + ".")
    from manylm import __version__

    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "".join([
        f"<header><h1>{escape(inputs.title)}</h1><p>{escape(summary)}</p></header>",
        "<nav><a href=\"#notes\">What to check</a><a href=\"#run\">Run</a>"
        "<a href=\"#samples\">Samples</a><a href=\"#diagnostics\">Diagnostics</a>"
        "<a href=\"#table\">Top features</a></nav>",
        notes_section(notes),
        run_section(record),
        samples_section(inputs.samples, record),
        diagnostics_section(diagnostics),
        table_section(inputs.table, top_rows=inputs.top_rows, q_values=inputs.q_values,
                      feature_ids=inputs.result.feature_ids),
        f"<footer><p>Made by manylm {escape(__version__)} on {escape(generated)}.</p></footer>",
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_policy()}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(inputs.title)}</title><style>{_STYLE}</style></head>"
            f"<body>{body}<script>{_SCRIPT}</script></body></html>\n")


def write_report(path: str | os.PathLike[str], inputs: ReportInputs) -> None:
    """Render the report and write it to ``path`` atomically (never a half-written file).

    Parameters
    ----------
    path : str or path-like
        The ``.html`` file to create or replace; its directory must exist.
    inputs : ReportInputs
    """
    from manylm.io.atomic import atomic_path

    with atomic_path(path) as temporary:  # checks the directory before the work starts
        text = render_report(inputs)
        temporary.write_text(text, encoding="utf-8")
