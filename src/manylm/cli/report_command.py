"""``manylm report RUN.json``: re-create a ``manylm fit`` run from its record and write the
self-contained HTML report.

The run record names the input files with their SHA-256; each is checked before the fit is run
again, and a file that changed since the run is said so on stderr and at the top of the
report (the report then describes the files as they are now).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from manylm.cli.file_roles import declare_files
from manylm.cli.options import notices_to_stderr
from manylm.errors import InputError

__all__ = ["add_parser", "changed_inputs", "default_report_path", "read_run_record"]


def add_parser(verbs: Any) -> None:
    parser = verbs.add_parser(
        "report", help="write the HTML report of a 'manylm fit' run",
        description="Re-run the analysis recorded in RUN.json (written by 'manylm fit --out "
        "FILE' as FILE.run.json) and write one self-contained HTML file: the run record, the "
        "sample sheet, diagnostic plots, the top features and notes that flag trouble.",
    )
    parser.add_argument("run_record", metavar="RUN.json",
                        help="run record of 'manylm fit' (FILE.run.json)")
    parser.add_argument("--out", metavar="FILE.html", default=None,
                        help="report to write (default: RUN.json's name with .html)")
    parser.add_argument("--title", default=None, help="title of the report")
    parser.add_argument("--quiet", action="store_true", help="no notes on stderr")
    parser.set_defaults(run=run)
    declare_files(parser, inputs=("run_record",),
                  outputs=("out",))


def run(args: argparse.Namespace) -> int:
    record_path = Path(args.run_record)
    record = read_run_record(record_path)
    out = Path(args.out) if args.out else default_report_path(record_path)
    if not out.parent.is_dir():  # fail before the fit, not after it
        raise InputError(f"{out}: cannot write the report: directory {str(out.parent)!r} does "
                         "not exist; create it first.")
    if out.is_dir():
        raise InputError(f"{out} is a directory; give a file name with --out.")
    from manylm.cli.fit_command import report_inputs_from_run_record
    from manylm.report import write_report

    with notices_to_stderr(args.quiet) as notices:
        changed = changed_inputs(record, record_path)
        for message in changed:
            notices.append(message)
            if not args.quiet:
                sys.stderr.write(f"manylm: note: {message}\n")
        inputs = report_inputs_from_run_record(record, record_path)
        inputs.extra_notes = [*changed, *inputs.extra_notes]
        if args.title:
            inputs.title = args.title
        write_report(out, inputs)
    if not args.quiet:
        sys.stderr.write(f"manylm: report written to {out}\n")
    return 0


def read_run_record(path: Path) -> dict[str, Any]:
    """Read a run record of ``manylm fit``, with errors that say what is wrong."""
    if not path.is_file():
        raise InputError(f"{path}: no such run record. 'manylm fit --out FILE' writes "
                         "FILE.run.json beside its table.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not a JSON run record ({error}).") from error
    if not isinstance(record, dict) or record.get("command") != "fit":
        raise InputError(f"{path}: not a run record of 'manylm fit' (its \"command\" is "
                         f"{record.get('command') if isinstance(record, dict) else None!r}); "
                         "reports are made for fits.")
    inputs = record.get("inputs")
    if not isinstance(inputs, dict) or "expression" not in inputs or "samples" not in inputs:
        raise InputError(f"{path}: the run record lists no expression and samples inputs; "
                         "run manylm fit again to get a complete record.")
    return record


def _recorded_path(info: Any, record_path: Path) -> Path:
    location = Path(str(info.get("path", ""))) if isinstance(info, dict) else Path(str(info))
    return location if location.is_absolute() else record_path.parent / location


def changed_inputs(record: dict[str, Any], record_path: Path) -> list[str]:
    """Messages for recorded inputs whose contents changed since the run.

    By SHA-256 when the record has one, else (an input too large to be hashed by default) by
    size and modification time. Raises :class:`InputError` when a recorded input no longer
    exists.
    """
    from manylm.io import file_fingerprint

    messages = []
    for role, info in record["inputs"].items():
        location = _recorded_path(info, record_path)
        if not location.is_file():
            raise InputError(f"{record_path}: the {role} file {location} of the recorded run "
                             "no longer exists; restore it, or run manylm fit again.")
        if not isinstance(info, dict):
            continue
        recorded = info.get("sha256")
        if recorded:
            current = file_fingerprint(location, checksum=True)["sha256"]
            if current != recorded:
                messages.append(
                    f"The {role} file {location} changed since the run recorded in "
                    f"{record_path} (SHA-256 {recorded[:12]}... then, {current[:12]}... now): "
                    "this report describes the file as it is now, not the recorded run."
                )
        elif "modified" in info:
            now = file_fingerprint(location, checksum=False)
            if (now["size"], now["modified"]) != (info.get("size"), info["modified"]):
                messages.append(
                    f"The {role} file {location} changed since the run recorded in "
                    f"{record_path} (size {info.get('size')} bytes, modified "
                    f"{info['modified']} then; {now['size']} bytes, modified {now['modified']} "
                    "now): this report describes the file as it is now, not the recorded run."
                )
    return messages


def default_report_path(record_path: Path) -> Path:
    """``results.tsv.run.json`` -> ``results.tsv.html``; ``x.json`` -> ``x.html``."""
    name = record_path.name
    for suffix in (".run.json", ".json"):
        if name.endswith(suffix):
            return record_path.with_name(name[: -len(suffix)] + ".html")
    return record_path.with_name(name + ".html")
