"""Interrupted, killed and disk-full runs leave no partial output and no spill files behind.

Ctrl-C and ``kill`` (SIGTERM) are sent to this process from inside a run; SIGKILL, which no
clean-up survives, to a child process, whose spill directory the next run removes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from manylm.engine import ArraySource, fit_streaming, spill, streaming_table
from manylm.errors import ManylmError

FORMULA = "~ group"

# A run that reads its blocks slowly, so that it can be interrupted in the middle: the first
# read creates a marker file, then every block takes 50 ms.
SLOW_RUN = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np, pandas as pd
    from manylm.engine import ArraySource, fit_streaming
    from manylm.errors import ManylmError

    class SlowSource(ArraySource):
        def read(self, start, stop, samples=None):
            Path(sys.argv[2]).touch()
            time.sleep(0.05)
            return super().read(start, stop, samples)

    rng = np.random.default_rng(0)
    samples = pd.DataFrame({"group": ["A"] * 4 + ["B"] * 4},
                           index=[f"s{i}" for i in range(8)])
    data = pd.DataFrame(rng.normal(size=(4000, 8)), columns=samples.index,
                        index=[f"g{i}" for i in range(4000)])
    try:
        fit_streaming(SlowSource(data), "~ group", samples=samples, coef="group[B]",
                      out=sys.argv[1], block_rows=20, spill=True)
    except ManylmError as error:
        sys.stderr.write(f"manylm: error: {error}\\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("manylm: interrupted; no output was written.\\n")
        sys.exit(130)
""")


@pytest.fixture
def small() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(1)
    samples = pd.DataFrame({"group": ["A"] * 4 + ["B"] * 4}, index=[f"s{i}" for i in range(8)])
    data = pd.DataFrame(rng.normal(size=(300, 8)), columns=samples.index,
                        index=[f"g{i}" for i in range(300)])
    return {"samples": samples, "data": data}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "started")


def start_slow_run(folder: Path) -> subprocess.Popen[str]:
    marker = folder / "started"
    process = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(folder / "out.tsv"),
                                str(marker)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the run did not start"
        time.sleep(0.02)
    time.sleep(0.2)  # well inside the first pass (4000 rows / 20 per block x 50 ms)
    return process


class SignalledSource(ArraySource):
    """Sends this process a signal while the third block is read (mid-run, deterministic)."""

    def __init__(self, data: pd.DataFrame, how: signal.Signals) -> None:
        super().__init__(data)
        self.how = how
        self.reads = 0

    def read(self, start: int, stop: int, samples=None):
        self.reads += 1
        if self.reads == 3:
            os.kill(os.getpid(), self.how)
        return super().read(start, stop, samples)


@pytest.fixture
def default_ctrl_c() -> Iterator[None]:
    """Python's own Ctrl-C handler, whatever this process inherited.

    A process started in the background by a non-interactive shell inherits SIGINT ignored, and
    Python then leaves it ignored (as a run should: it respects that).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_ctrl_c")
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_interrupted_run_leaves_nothing(tmp_path: Path, small, how: signal.Signals) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        fit_streaming(SignalledSource(small["data"], how), FORMULA, samples=small["samples"],
                      coef="group[B]", out=tmp_path / "out.tsv", spill=True, block_rows=10)
    assert leftovers(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == previous  # the run's handler is gone


def test_killed_run_spill_is_removed_by_the_next_run(tmp_path: Path, small) -> None:
    process = start_slow_run(tmp_path)
    process.kill()  # SIGKILL: no clean-up can run
    process.wait(timeout=60)
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".manylm-spill-")
    result = fit_streaming(small["data"], FORMULA, samples=small["samples"], coef="group[B]",
                           out=tmp_path / "next.tsv", spill=True)
    assert leftovers(tmp_path) == ["next.tsv"]
    assert any(stale[0] in note for note in result.notes)


def test_spill_directory_of_a_live_process_is_kept(tmp_path: Path, small) -> None:
    live = tmp_path / f"{spill.PREFIX}{os.uname().nodename}-{os.getppid()}-abcd"
    live.mkdir()
    fit_streaming(small["data"], FORMULA, samples=small["samples"], coef="group[B]",
                  out=tmp_path / "out.tsv", spill=True)
    assert live.exists()


def test_full_disk_before_the_run(tmp_path: Path, small, monkeypatch) -> None:
    def no_space(fd: int, size: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spill, "_reserve", no_space)
    with pytest.raises(ManylmError, match="No space left on the device while reserving"):
        fit_streaming(small["data"], FORMULA, samples=small["samples"], coef="group[B]",
                      out=tmp_path / "out.tsv", spill=True)
    assert leftovers(tmp_path) == []


def test_full_disk_while_spilling(tmp_path: Path, small, monkeypatch) -> None:
    calls = {"n": 0}
    real = spill._pwrite_all

    def fill_up(fd: int, data: memoryview, offset: int) -> None:
        calls["n"] += 1
        if calls["n"] > 25:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data, offset)

    monkeypatch.setattr(spill, "_pwrite_all", fill_up)
    with pytest.raises(ManylmError, match="No space left on the device while writing temporary"):
        fit_streaming(small["data"], FORMULA, samples=small["samples"], coef="group[B]",
                      out=tmp_path / "out.tsv", spill=True, block_rows=10)
    assert leftovers(tmp_path) == []


def test_full_disk_while_writing_the_table(tmp_path: Path, small, monkeypatch) -> None:
    real = streaming_table.TableWriter.append

    def fill_up(self, prepared) -> None:
        real(self, prepared)
        if self.rows > 100:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(streaming_table.TableWriter, "append", fill_up)
    monkeypatch.setattr(streaming_table, "WRITE_BLOCK_ROWS", 50)
    (tmp_path / "out.tsv").write_text("the previous results\n")
    with pytest.raises(ManylmError, match="No space left on the device while writing the table"):
        fit_streaming(small["data"], FORMULA, samples=small["samples"], coef="group[B]",
                      out=tmp_path / "out.tsv", block_rows=50)
    assert leftovers(tmp_path) == ["out.tsv"]
    assert (tmp_path / "out.tsv").read_text() == "the previous results\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_standard_output_is_one_line() -> None:
    script = textwrap.dedent("""
        import sys
        import numpy as np, pandas as pd
        from manylm.engine import fit_streaming
        from manylm.errors import ManylmError
        samples = pd.DataFrame({"group": ["A"] * 4 + ["B"] * 4},
                               index=[f"s{i}" for i in range(8)])
        data = pd.DataFrame(np.random.default_rng(0).normal(size=(20000, 8)),
                            columns=samples.index)
        try:
            fit_streaming(data, "~ group", samples=samples, coef="group[B]", out="-")
        except ManylmError as error:
            sys.stderr.write(f"manylm: error: {error}\\n")
            sys.exit(2)
    """)
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-c", script], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "No space left on the device while writing the table to standard output" in \
        result.stderr


@pytest.mark.usefixtures("default_ctrl_c")
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_interruption_during_a_runs_imports_is_raised_when_they_end(how: signal.Signals) -> None:
    """Imports made during a run (Dask's) hold Ctrl-C and kill to the end of the block, then
    raise it, remembered as the run's; a second one is raised at once; the run's handlers are
    back after."""
    from manylm.interruptions import (
        interruptions_held,
        raise_if_interrupted,
        sigterm_as_interrupt,
    )

    passed = []
    with sigterm_as_interrupt():
        handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt), interruptions_held():
            os.kill(os.getpid(), how)
            time.sleep(0.05)  # the handler runs between two bytecodes: noted only
            passed.append(True)
        assert passed == [True]
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
        with pytest.raises(KeyboardInterrupt), interruptions_held():
            os.kill(os.getpid(), how)
            time.sleep(0.05)
            os.kill(os.getpid(), how)  # a block that does not end: raised here
            time.sleep(0.05)
            passed.append(True)
        assert passed == [True]
        with pytest.raises(KeyboardInterrupt) as raised, interruptions_held():
            os.kill(os.getpid(), how)
            time.sleep(0.05)
            raise ImportError("a module the block needed")  # the interruption still comes
        assert isinstance(raised.value.__cause__, ImportError)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(("how", "nested"), [(signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["ctrl-c", "kill, then a nested run"])
def test_interruption_swallowed_in_a_finaliser_still_stops_the_output(
        tmp_path: Path, how: signal.Signals, nested: bool) -> None:
    # Python drops an exception raised inside a finaliser (__del__, weakref callbacks); the
    # run remembers the signal and refuses to make its output visible. Nested (manylm's
    # command holds the handlers, the engine's run takes them again), what the command
    # remembered before the run started is kept.
    from manylm.interruptions import sigterm_as_interrupt

    target = tmp_path / "table.tsv"
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), how)
            time.sleep(1)  # the handler runs here
        except KeyboardInterrupt:
            pass  # as if lost in a finaliser
        with sigterm_as_interrupt() if nested else contextlib.nullcontext(), \
                streaming_table.open_table(target, special_characters=set()) as writer:
            writer.write(np.arange(3), {"p_value": np.array([0.1, 0.2, 0.3])})
    assert not target.exists() and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
