"""Running an engine twice, made late and not, to compare the tables' bytes."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


def late_then_stored(monkeypatch: pytest.MonkeyPatch, engine: ModuleType,
                     run: Callable[[str], bytes]) -> tuple[bytes, bytes, list[bool]]:
    """``run("late.tsv")`` as ``engine`` decides, then ``run("stored.tsv")`` with its
    ``late_table_applies`` turned off; the two files' bytes, and the first run's decisions
    (whether each table was made late)."""
    decisions: list[bool] = []
    real = engine.late_table_applies

    def applies(*args: Any, **kwargs: Any) -> bool:
        decisions.append(real(*args, **kwargs))
        return decisions[-1]

    monkeypatch.setattr(engine, "late_table_applies", applies)
    late = run("late.tsv")
    monkeypatch.setattr(engine, "late_table_applies", lambda *args, **kwargs: False)
    return late, run("stored.tsv"), decisions
