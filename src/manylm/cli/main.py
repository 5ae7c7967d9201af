"""``manylm``: parse the command line, run a verb, turn user errors into one-line messages.

Exit status: 0 on success, 2 for bad usage or bad input (one line on stderr naming the file,
row or column, and what to do) or a full disk, 130 when interrupted (Ctrl-C or ``kill``).
``--debug`` shows the traceback.

A verb's output files (a table, its run record, a report...) appear together when it succeeds
and not at all when it fails or is interrupted (:func:`manylm.io.atomic.committed_together`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from manylm.errors import ManylmError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 2 and our one-line error style."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"manylm: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from manylm import __version__
    from manylm.cli import (
        combat_command,
        convert_command,
        design_command,
        example_command,
        fit_command,
        report_command,
        scan_command,
        sva_command,
    )

    parser = _Parser(
        prog="manylm",
        description="Fit one linear model to every feature of a genomics matrix, with limma's "
        "moderated statistics.",
    )
    parser.add_argument("--version", action="version", version=f"manylm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    fit_command.add_parser(verbs)
    design_command.add_parser(verbs)
    example_command.add_parser(verbs)
    sva_command.add_parser(verbs)
    combat_command.add_parser(verbs)
    scan_command.add_parser(verbs)
    report_command.add_parser(verbs)
    convert_command.add_parser(verbs)
    # The fit's streaming and Dask engines (~30 ms) load with the start-up, under its held
    # interruptions, rather than in the middle of a run.
    importlib.import_module("manylm.cli.streaming_fit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``manylm`` with ``argv`` (default: the process arguments); return the exit status."""
    from manylm.interruptions import interruptions_held  # standard library only

    try:
        with interruptions_held():
            parser = build_parser()  # imports the verbs' modules: most of the start-up
    except KeyboardInterrupt:  # held to the end, or raised where the handlers stayed
        sys.stderr.write("manylm: interrupted; no output was written.\n")
        return 130
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return 2
    from manylm.cli.file_roles import refuse_outputs_over_inputs
    from manylm.engine.spill import disk_full_as_error
    from manylm.interruptions import raise_if_interrupted, sigterm_as_interrupt
    from manylm.io.atomic import InterruptedAfterOutput, committed_together

    # Event loops of Dask's client and of zarr log the tasks an interruption or an error
    # abandoned ("Task exception was never retrieved"); the error itself is reported here.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        with sigterm_as_interrupt(), disk_full_as_error("writing the output"), \
                committed_together():
            refuse_outputs_over_inputs(args)
            status = int(args.run(args) or 0)
            raise_if_interrupted()  # one swallowed in a finaliser: the files stay unwritten
        return status
    except ManylmError as error:
        if args.debug:
            raise
        sys.stderr.write(f"manylm: error: {error}\n")
        return 2
    except InterruptedAfterOutput:
        sys.stderr.write("manylm: interrupted as the output was complete; it was written.\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("manylm: interrupted; no output was written.\n")
        return 130
    except BrokenPipeError:
        # What reads standard output stopped early (``| head``): stop quietly, as other
        # command-line tools do, with the status of a process that SIGPIPE ends.
        _quiet_standard_output()
        return 141
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        if args.debug:
            raise
        sys.stderr.write(f"manylm: error: {error.strerror}: {error.filename}\n")
        return 2


def _quiet_standard_output() -> None:
    """Point standard output at ``/dev/null``: the interpreter flushes it at exit, and a
    flush into the closed pipe would print a second error."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
