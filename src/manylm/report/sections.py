"""HTML fragments of the report: run record, sample sheet, notes, figures, results table.

Every piece of text that comes from the data or the user (feature and sample names, column
names, paths, options) goes through :func:`escape`, so a feature called
``<script>alert(1)</script>`` is shown as those characters and never runs.
"""

from __future__ import annotations

import html
import json
import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from manylm.report.figures import Diagnostic
from manylm.report.notes import Note

__all__ = ["diagnostics_section", "escape", "notes_section", "run_section",
           "samples_section", "table_section"]

_MAX_SAMPLE_ROWS = 2_000
_MAX_LEVELS = 12
_JSON_LIMIT = 4_000


def escape(value: Any) -> str:
    """Text for HTML element content or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _JSON_LIMIT else text[:_JSON_LIMIT] + " …"


def _value_html(value: Any) -> str:
    if isinstance(value, (Mapping, list, tuple)):
        if isinstance(value, (list, tuple)) and all(not isinstance(v, (Mapping, list, tuple))
                                                    for v in value):
            return escape(", ".join(map(str, value))) if value else "<em>none</em>"
        return f"<code>{escape(_json(value))}</code>"
    if value is None:
        return "<em>none</em>"
    return escape(value)


def key_value_table(mapping: Mapping[str, Any], *, css: str = "kv") -> str:
    """A two-column table of a mapping; nested values shown as compact JSON."""
    if not mapping:
        return "<p><em>none</em></p>"
    rows = "".join(f"<tr><th scope=\"row\">{escape(k)}</th><td>{_value_html(v)}</td></tr>"
                   for k, v in mapping.items())
    return f"<table class=\"{css}\"><tbody>{rows}</tbody></table>"


def notes_section(notes: Sequence[Note]) -> str:
    """The list of trouble flags (or a line saying none were raised)."""
    warnings = [n for n in notes if n.level == "warning"]
    if not notes:
        body = "<p class=\"ok\">No trouble flagged by the automatic checks.</p>"
    else:
        items = "".join(
            f"<li class=\"note {escape(n.level)}\"><strong>{escape(n.topic)}:</strong> "
            f"{escape(n.message)}</li>" for n in notes)
        lead = (f"<p>{len(warnings)} thing(s) to check.</p>" if warnings
                else "<p class=\"ok\">No trouble flagged by the automatic checks.</p>")
        body = f"{lead}<ul class=\"notes\">{items}</ul>"
    return f"<section id=\"notes\"><h2>What to check</h2>{body}</section>"


_RUN_KEYS = ("command", "argv", "inputs", "n_features", "samples", "design", "tests",
             "contrasts", "options", "prior", "transform", "output", "notices", "versions",
             "timings_seconds", "cpu_count")


def run_section(record: Mapping[str, Any]) -> str:
    """Inputs (with checksums), design, options, versions and timings of the run."""
    parts = []
    argv = record.get("argv")
    if isinstance(argv, list) and argv:
        parts.append(f"<p>Command: <code>{escape('manylm ' + shlex.join(map(str, argv)))}"
                     "</code></p>")
    inputs = record.get("inputs")
    if isinstance(inputs, Mapping) and inputs:
        rows = []
        for role, info in inputs.items():
            info = info if isinstance(info, Mapping) else {"path": info}
            size = info.get("size")
            size_text = f"{int(size):,} bytes" if isinstance(size, (int, float)) else ""
            checksum = info.get("sha256") or ""
            shown = (f"<code>{escape(checksum)}</code>" if checksum
                     else escape(f"not computed (modified {info['modified']})")
                     if "modified" in info else "")
            rows.append(f"<tr><td>{escape(role)}</td><td><code>{escape(info.get('path', ''))}"
                        f"</code></td><td>{escape(size_text)}</td><td>{shown}</td></tr>")
        parts.append("<h3>Inputs</h3><table class=\"grid\"><thead><tr><th>role</th>"
                     "<th>path</th><th>size</th><th>SHA-256</th></tr></thead><tbody>"
                     + "".join(rows) + "</tbody></table>")
    design = record.get("design")
    if isinstance(design, Mapping):
        parts.append("<h3>Design</h3>" + key_value_table(design))
    tested = {k: record[k] for k in ("tests", "contrasts") if record.get(k)}
    if tested:
        parts.append("<h3>Tests</h3>" + key_value_table(tested))
    for key, heading in (("options", "Options"), ("prior", "Prior (empirical Bayes)"),
                         ("transform", "Transformation of the data"),
                         ("versions", "Versions"), ("timings_seconds", "Timings (seconds)")):
        value = record.get(key)
        if isinstance(value, Mapping) and value:
            parts.append(f"<h3>{heading}</h3>" + key_value_table(value))
    notices = record.get("notices")
    if isinstance(notices, list) and notices:
        parts.append("<h3>Notes printed during the run</h3><ul>"
                     + "".join(f"<li>{escape(n)}</li>" for n in notices) + "</ul>")
    others = {k: v for k, v in record.items() if k not in _RUN_KEYS}
    scalars = {k: record[k] for k in ("command", "n_features", "output", "cpu_count")
               if k in record}
    if scalars or others:
        parts.append("<h3>Other</h3>" + key_value_table({**scalars, **others}))
    return "<section id=\"run\"><h2>Run</h2>" + "".join(parts) + "</section>"


def _column_summary(values: pd.Series) -> tuple[str, str]:
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
            and present.nunique() > _MAX_LEVELS:
        numbers = present.astype(float)
        return "number", (f"min {numbers.min():.4g}, median {numbers.median():.4g}, "
                          f"max {numbers.max():.4g}" if len(numbers) else "")
    counts = present.astype(str).value_counts(sort=True)
    shown = ", ".join(f"{level} ({count})" for level, count in counts.iloc[:_MAX_LEVELS].items())
    more = f", … and {len(counts) - _MAX_LEVELS} more" if len(counts) > _MAX_LEVELS else ""
    return f"{len(counts)} levels", shown + more


def samples_section(samples: pd.DataFrame, record: Mapping[str, Any]) -> str:
    """Counts of samples used and dropped, a summary per column, and the sheet itself."""
    info = record.get("samples") if isinstance(record.get("samples"), Mapping) else {}
    assert isinstance(info, Mapping)
    used = info.get("used")
    lines = [f"<p>{len(samples):,} samples in the sheet, {samples.shape[1]} column(s)"
             + (f"; {len(used):,} used in the model" if isinstance(used, list) else "")
             + ".</p>"]
    for key, text in (("dropped_missing_covariates", "Dropped for a missing covariate"),
                      ("not_in_expression", "In the sheet but not in the matrix")):
        dropped = info.get(key)
        if isinstance(dropped, list) and dropped:
            lines.append(f"<p>{text}: {escape(', '.join(map(str, dropped[:50])))}"
                         f"{' …' if len(dropped) > 50 else ''}</p>")
    rows = []
    for column in samples.columns:
        kind, summary = _column_summary(samples[column])
        missing = int(samples[column].isna().sum())
        rows.append(f"<tr><td>{escape(column)}</td><td>{escape(kind)}</td><td>{missing}</td>"
                    f"<td>{escape(summary)}</td></tr>")
    lines.append("<table class=\"grid\"><thead><tr><th>column</th><th>kind</th>"
                 "<th>missing</th><th>values</th></tr></thead><tbody>" + "".join(rows)
                 + "</tbody></table>")
    shown = samples.iloc[:_MAX_SAMPLE_ROWS]
    header = "".join(f"<th>{escape(c)}</th>" for c in [samples.index.name or "sample",
                                                        *samples.columns])
    body = "".join(
        "<tr>" + f"<td>{escape(index)}</td>"
        + "".join(f"<td>{escape('' if _missing(v) else v)}</td>" for v in row) + "</tr>"
        for index, row in zip(shown.index, shown.itertuples(index=False), strict=True))
    more = f" (first {_MAX_SAMPLE_ROWS:,})" if len(samples) > _MAX_SAMPLE_ROWS else ""
    lines.append(f"<details><summary>The sample sheet{more}</summary><table class=\"grid "
                 f"sortable\"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
                 "</details>")
    return "<section id=\"samples\"><h2>Samples</h2>" + "".join(lines) + "</section>"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or \
        value is pd.NA


def diagnostics_section(diagnostics: Iterable[Diagnostic]) -> str:
    """The figures, each with a heading, the image (base64 PNG) and its caption."""
    figures = []
    for item in diagnostics:
        if item.png is None:
            figures.append(f"<figure id=\"{escape(item.key)}\"><h3>{escape(item.title)}</h3>"
                           f"<p class=\"missing\">Not drawn: {escape(item.problem or '')}</p>"
                           "</figure>")
            continue
        figures.append(f"<figure id=\"{escape(item.key)}\"><h3>{escape(item.title)}</h3>"
                       f"<img src=\"{item.data_uri}\" alt=\"{escape(item.title)}\">"
                       f"<figcaption>{escape(item.caption)}</figcaption></figure>")
    body = "".join(figures) or "<p><em>No plots.</em></p>"
    return f"<section id=\"diagnostics\"><h2>Diagnostics</h2>{body}</section>"


def _number_cell(value: float, column: str) -> str:
    if not np.isfinite(value):
        text = "NA" if np.isnan(value) else ("Inf" if value > 0 else "-Inf")
        return f"<td data-v=\"\">{text}</td>"
    digits = 3 if "p_value" in column or column.startswith("q_") else 4
    return f"<td data-v=\"{value!r}\">{value:.{digits}g}</td>"


def table_section(table: pd.DataFrame, *, top_rows: int, q_values: Any = None,
                  feature_ids: pd.Index | None = None) -> str:
    """The first ``top_rows`` rows of the results table by p-value, sortable by column."""
    frame = table
    if "feature" not in frame.columns:
        frame = frame.rename_axis("feature").reset_index()
    if q_values is not None and "q_value" not in frame.columns:
        q = q_values if isinstance(q_values, pd.Series) else pd.Series(
            np.asarray(q_values, dtype=np.float64), index=feature_ids)
        if q.index.is_unique:  # matched by feature ID; ambiguous IDs get no q column
            q = q.set_axis(q.index.astype(str))
            frame = frame.assign(q_value=frame["feature"].astype(str).map(q)
                                 .to_numpy(dtype=np.float64))
    if "p_value" in frame.columns:
        order = np.argsort(frame["p_value"].to_numpy(dtype=np.float64), kind="stable")
        frame = frame.iloc[order]
    shown = frame.iloc[:top_rows]
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) for c in shown.columns]
    header = "".join(
        f"<th scope=\"col\" tabindex=\"0\" aria-sort=\"none\" data-type=\""
        f"{'number' if is_number else 'text'}\">{escape(c)}</th>"
        for c, is_number in zip(shown.columns, numeric, strict=True))
    columns = [shown[c].to_numpy() for c in shown.columns]
    names = [str(c) for c in shown.columns]
    rows = []
    for i in range(len(shown)):
        cells = []
        for values, name, is_number in zip(columns, names, numeric, strict=True):
            value = values[i]
            cells.append(_number_cell(float(value), name) if is_number
                         else f"<td>{escape(value)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = (f"The {len(shown):,} features with the smallest p-values of {len(frame):,}"
               " (click a column header to sort)." if len(frame) > len(shown)
               else f"All {len(frame):,} features (click a column header to sort).")
    return (f"<section id=\"table\"><h2>Top features</h2><p>{escape(caption)}</p>"
            f"<div class=\"scroll\"><table class=\"grid sortable results\"><thead><tr>{header}"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>")
