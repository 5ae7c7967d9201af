"""A ``manylm`` command's output appears whole or not at all: its files (the table, its run
record) are renamed together at the end, so a failure, a full disk or ``kill`` at any point
leaves none of them; temporary files of killed runs are removed by the next run."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_user_error, in_process

from manylm.cli import fit_command, streaming_fit
from manylm.engine.spill import PREFIX

ENGINES = {"in memory": [], "streamed": ["--memory", "60M"]}


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    samples = pd.DataFrame({"sample": [f"s{i}" for i in range(8)],
                            "group": ["A"] * 4 + ["B"] * 4})
    expression = pd.DataFrame(rng.normal(5, 1, (400, 8)), columns=samples["sample"])
    expression.insert(0, "feature", [f"g{i:03d}" for i in range(400)])
    folder = tmp_path / "in"
    folder.mkdir()
    samples.to_csv(folder / "samples.tsv", sep="\t", index=False)
    expression.to_parquet(folder / "expr.parquet", index=False)
    out = tmp_path / "out"
    out.mkdir()
    return {"expr": folder / "expr.parquet", "samples": folder / "samples.tsv", "out": out}


def fit(capsys: pytest.CaptureFixture[str], inputs: dict[str, Path], *options: str
        ) -> subprocess.CompletedProcess[str]:
    return in_process(capsys, "fit", inputs["expr"], "--samples", inputs["samples"],
                      "--design", "~ group", "--test", "group[T.B]",
                      "--out", inputs["out"] / "t.tsv", "--quiet", *options)


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    return int(finished.stdout)


@pytest.mark.parametrize("options", ENGINES.values(), ids=ENGINES.keys())
def test_table_and_record_appear_together(capsys, inputs, options: list[str]) -> None:
    assert fit(capsys, inputs, *options).returncode == 0
    assert sorted(p.name for p in inputs["out"].iterdir()) == ["t.tsv", "t.tsv.run.json"]


@pytest.mark.parametrize("options", ENGINES.values(), ids=ENGINES.keys())
def test_full_disk_at_the_run_record_leaves_no_table(capsys, inputs, monkeypatch,
                                                     options: list[str]) -> None:
    """The table is complete when the disk fills up writing its record: neither appears, the
    error is one line naming the folder, and an older table stays as it was."""
    def no_space(path: Any, record: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fit_command, "write_run_record", no_space)
    monkeypatch.setattr(streaming_fit, "write_run_record", no_space)
    (inputs["out"] / "t.tsv").write_text("the previous results\n")
    result = fit(capsys, inputs, *options)
    assert_user_error(result, "No space left on the device while writing the output in "
                      f"{inputs['out']}", only_line=True)
    assert [p.name for p in inputs["out"].iterdir()] == ["t.tsv"]
    assert (inputs["out"] / "t.tsv").read_text() == "the previous results\n"


@pytest.mark.parametrize("options", ENGINES.values(), ids=ENGINES.keys())
def test_kill_after_the_table_leaves_nothing(capsys, inputs, monkeypatch,
                                             options: list[str]) -> None:
    """SIGTERM once the table is complete, before its record: exit 130, no file."""
    real = fit_command.write_run_record

    def killed_first(path: Any, record: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real(path, record)

    monkeypatch.setattr(fit_command, "write_run_record", killed_first)
    monkeypatch.setattr(streaming_fit, "write_run_record", killed_first)
    previous = signal.getsignal(signal.SIGTERM)
    result = fit(capsys, inputs, *options)
    assert result.returncode == 130
    assert result.stderr.strip() == "manylm: interrupted; no output was written."
    assert list(inputs["out"].iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == previous


@pytest.mark.parametrize(("arguments", "written", "read"), [
    (["fit", "m.tsv", "--samples", "s.tsv", "--design", "~ g", "--out", "s.tsv"],
     "--out s.tsv: it", "--samples (s.tsv)"),
    (["fit", "m.tsv", "--samples", "s.tsv", "--design", "~ g", "--weights", "w.tsv", "--out",
      "./w.tsv", "--memory", "300M"], "--out ./w.tsv: it", "--weights (w.tsv)"),
    (["fit", "m.tsv", "--samples", "s.tsv", "--design", "~ g", "--out", "t.tsv", "--report",
      "link.tsv"], "--report link.tsv: it", "EXPRESSION (m.tsv)"),
    (["fit", "m.tsv", "--samples", "s.tsv", "--design", "~ g", "--out", "r"],
     "--out r: its run record r.run.json", "--samples (s.tsv)"),
    (["combat", "m.tsv", "--samples", "s.tsv", "--batch", "g", "--out", "m.tsv"],
     "--out m.tsv: it", "EXPRESSION (m.tsv)"),
    (["sva", "m.tsv", "--samples", "s.tsv", "--design", "~ g", "--out", "sv.tsv",
      "--probabilities", "s.tsv"], "--probabilities s.tsv: it", "--samples (s.tsv)"),
    (["report", "s.tsv", "--out", "s.tsv"], "--out s.tsv: it", "RUN_RECORD (s.tsv)"),
    (["scan", "m.tsv", "--phenotypes", "s.tsv", "--out", "m.tsv"], "--out m.tsv: it",
     "GENOTYPES (m.tsv)"),
])
def test_an_output_over_an_input_is_refused_before_any_work(
        capsys, tmp_path: Path, monkeypatch, arguments: list[str], written: str,
        read: str) -> None:
    """An output (a table, a report, a run record) named as one of the inputs, however
    spelled (``./``, a link), is refused: it would replace the input (the file is kept)."""
    monkeypatch.chdir(tmp_path)
    for name in ("m.tsv", "s.tsv", "w.tsv"):
        (tmp_path / name).write_text(f"{name}\n")
    (tmp_path / "r.run.json").symlink_to("s.tsv")
    (tmp_path / "link.tsv").symlink_to("m.tsv")
    result = in_process(capsys, *arguments)
    assert_user_error(result, written, f"is the file given as {read}",
                      "choose another output name", only_line=True)
    assert all((tmp_path / name).read_text() == f"{name}\n" for name in ("m.tsv", "s.tsv",
                                                                         "w.tsv"))


def test_leftovers_of_killed_runs_are_removed(capsys, inputs) -> None:
    """A spill folder and a temporary table of a process killed outright (SIGKILL) go at the
    next run into the same folder, even one that does not stream; those of a live process
    stay."""
    host, dead = os.uname().nodename, dead_pid()
    out = inputs["out"]
    spill_folder = out / f"{PREFIX}{host}-{dead}-0a1b2c3d"
    spill_folder.mkdir()
    (spill_folder / "fit.residual_variance").write_bytes(b"\0" * 64)
    partial = out / f".t.tsv.tmp-{host}-{dead}-0a1b2c3d"
    partial.write_text("feature\testimate\n")
    live = out / f".t.tsv.tmp-{host}-{os.getppid()}-0a1b2c3d"
    live.write_text("another run's table\n")
    assert fit(capsys, inputs).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([live.name, "t.tsv",
                                                            "t.tsv.run.json"])


@pytest.mark.parametrize("how", ["Ctrl-C", "Ctrl-C twice", "raised"])
def test_ctrl_c_while_starting_is_one_line(capsys, monkeypatch, how: str) -> None:
    """Ctrl-C while the verbs' modules are imported (most of the start-up) is the usual
    message, not a traceback. The signal is noted, not raised inside the imports (where a
    library's ``except`` could swallow it and leave an import lock held: a run that then
    hung): the start-up finishes first. A KeyboardInterrupt raised all the same (the
    handlers of an embedding program) gives the same message."""
    import importlib

    cli_main = importlib.import_module("manylm.cli.main")  # the module (manylm.cli.main is
    # also the name of its function, in manylm.cli)
    finished = []

    def interrupted() -> None:
        if how == "raised":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs between two bytecodes of this thread
        if how == "Ctrl-C twice":  # a start-up that does not end: the second one stops it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        finished.append(True)

    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(cli_main, "build_parser", interrupted)
    assert cli_main.main(["fit", "--help"]) == 130
    assert capsys.readouterr().err == "manylm: interrupted; no output was written.\n"
    assert finished == ([] if how != "Ctrl-C" else [True])
    assert signal.getsignal(signal.SIGINT) is handler


def test_the_streaming_engine_is_imported_with_the_start_up() -> None:
    """The fit's streaming and Dask engines load with the verbs (under the start-up's held
    interruptions), not in the middle of a run; Dask itself only when asked for."""
    code = ("import sys, importlib\n"
            "importlib.import_module('manylm.cli.main').build_parser()\n"
            "print(sorted(m for m in ('manylm.engine.streaming', 'manylm.engine.dask_backend',\n"
            "    'distributed') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["['manylm.engine.dask_backend',", "'manylm.engine.streaming']"]


def test_kill_while_starting_is_one_line() -> None:
    """``kill`` (SIGTERM) while the verbs' modules are imported: noted like Ctrl-C, the start-up
    finished, the usual message and status (in a process of its own: the signal's default
    action would end this one)."""
    code = ("import os, signal, time, sys\n"
            "import importlib\n"
            "cli = importlib.import_module('manylm.cli.main')\n"
            "def starting():\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(0.05)\n"
            "    print('started')\n"
            "cli.build_parser = starting\n"
            "sys.exit(cli.main(['fit', '--help']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (
        130, "started\n", "manylm: interrupted; no output was written.\n")


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """``manylm fit ... | head``: the table goes to standard output and its reader stops after
    a line; the command stops quietly with the status of a process that SIGPIPE ends (it
    printed a BrokenPipeError traceback)."""
    from manylm.io import example_paths

    expression, samples = example_paths()
    process = subprocess.Popen(
        [sys.executable, "-m", "manylm", "fit", str(expression), "--samples", str(samples),
         "--design", "~ cancer + C(batch)", "--test", "cancer[T.Cancer]", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"feature\t")
    process.stdout.close()
    errors = process.stderr.read()
    assert (process.wait(timeout=120), errors) == (141, b"")
