"""The README's Python example runs as written (on the reference data sets)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
INPUTS = ROOT / "tests" / "reference" / "inputs"


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## Python\n\n```python\n(.*?)```", text, re.S)
    assert code, "the README has no Python example"
    for source, target in [("bladder_expr.tsv.gz", "expression.tsv.gz"),
                           ("bladder_samples.tsv", "samples.tsv"),
                           ("pasilla_counts.tsv.gz", "counts.tsv.gz"),
                           ("pasilla_samples.tsv", "counts_samples.tsv")]:
        shutil.copy(INPUTS / source, tmp_path / target)
    for name in ("genotypes", "phenotypes"):
        shutil.copy(INPUTS.parent / "qtl" / f"{name}.tsv",
                    tmp_path / ("dosages.tsv" if name == "genotypes" else f"{name}.tsv"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # runs our own README
    assert namespace["table"].shape[0] == 2026  # type: ignore[attr-defined]
