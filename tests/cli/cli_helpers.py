"""Running the ``manylm`` command in the CLI tests, and checking the errors it reports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["assert_user_error", "in_process", "manylm"]


def manylm(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``manylm`` (else ``python -m manylm``) in a new process."""
    command = [shutil.which("manylm")] if shutil.which("manylm") else [sys.executable, "-m",
                                                                       "manylm"]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, check=False)


def in_process(capsys: pytest.CaptureFixture[str], *args: object
               ) -> subprocess.CompletedProcess[str]:
    """The same command through ``manylm.cli.main.main`` (starting Python costs seconds)."""
    from manylm.cli.main import main

    argv = [str(a) for a in args]
    code = main(argv)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, captured.out, captured.err)


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str,
                      only_line: bool = False) -> None:
    """Exit status 2 and no traceback; the last line of stderr (with ``only_line``, the only
    line) is ``manylm: error: ...`` and holds every fragment."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    if only_line:
        assert len(lines) == 1, result.stderr
    message = lines[-1]
    assert message.startswith("manylm: error:"), result.stderr
    for fragment in fragments:
        assert fragment in message, message
