"""Which arguments of a verb name the files it reads and which the files it writes, so that no
output is written over an input (``manylm fit m.tsv --samples s.tsv --out s.tsv`` would
replace the sample sheet with the table).

Each verb declares its file arguments (:func:`declare_files`); the command checks them
(:func:`refuse_outputs_over_inputs`) before any work. A file is the same when it is the same
file on disk (``os.path.samefile``: through a link, ``./``, another spelling), and an output's
run record (``OUT.run.json``) counts as an output.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from manylm.errors import InputError

__all__ = ["declare_files", "refuse_outputs_over_inputs"]


def declare_files(parser: argparse.ArgumentParser, *, inputs: tuple[str, ...],
                  outputs: tuple[str, ...]) -> None:
    """Record the destinations (``args`` attribute names) of a verb's input and output files;
    an attribute may hold one path, None, or a list of paths."""
    parser.set_defaults(input_files=inputs, output_files=outputs)


def refuse_outputs_over_inputs(args: argparse.Namespace) -> None:
    """InputError when an output file of the parsed command is one of its input files."""
    inputs = [(dest, path) for dest in getattr(args, "input_files", ())
              for path in _paths(getattr(args, dest, None))]
    for dest in getattr(args, "output_files", ()):
        for output in _paths(getattr(args, dest, None)):
            for written in (output, f"{output}.run.json"):
                for source_dest, source in inputs:
                    if _same_file(written, source):
                        raise InputError(
                            f"{_option(dest)} {output}: "
                            + ("its run record " + written if written != output else "it")
                            + f" is the file given as {_option(source_dest)} ({source}): the "
                            f"output would overwrite an input; choose another output name"
                        )


def _paths(value: object) -> Iterator[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, (str, os.PathLike)) and os.fspath(item) not in ("", "-"):
            yield os.fspath(item)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # either one missing (a new output), or an odd name
        return False


def _option(dest: str) -> str:
    """How the user wrote the argument: ``--samples``, or the positional ``EXPRESSION``."""
    return dest.upper() if dest in _POSITIONAL else "--" + dest.replace("_", "-")


_POSITIONAL = frozenset({"expression", "genotypes", "run_record"})
