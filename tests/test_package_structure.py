"""The public API follows its own conventions (scverse-style structure test)."""

from __future__ import annotations

import importlib
import inspect
import itertools
import subprocess
import sys

import pytest

import manylm

SUBPACKAGES = ["manylm.design", "manylm.fit", "manylm.moderate", "manylm.inference",
               "manylm.engine", "manylm.io", "manylm.cli", "manylm.counts",
               "manylm.confounders", "manylm.report", "manylm.qtl"]


@pytest.mark.parametrize("name", ["manylm", *SUBPACKAGES])
def test_all_names_exist_and_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no docstring"
    for attribute in module.__all__:
        obj = getattr(module, attribute)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, f"{name}.{attribute} has no docstring"


def test_importing_the_package_is_light() -> None:
    """``import manylm`` (and the command line's first modules: its own, and the one that
    holds Ctrl-C while the rest loads) imports none of the heavy libraries: the API's names
    and the subpackages load on first use, so that the command handles Ctrl-C from its first
    moments (:func:`manylm.cli.main.main`)."""
    code = ("import sys, manylm, manylm.cli.main, manylm.interruptions\n"
            "heavy = {'numpy', 'pandas', 'scipy', 'numba', 'pyarrow', 'formulaic'} & "
            "set(sys.modules)\n"
            "print(sorted(heavy))\n"
            "print(manylm.lm_fit.__module__, manylm.engine.fit_dask.__name__,\n"
            "      manylm.qtl.__name__, 'top_table' in dir(manylm))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.splitlines() == ["[]", "manylm.fit.lmfit fit_dask manylm.qtl True"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        manylm.nothing  # noqa: B018


@pytest.mark.parametrize("first", [
    "manylm.engine.run_control", "manylm.engine.inmemory", "manylm.fit.lmfit",
    "manylm.confounders", "manylm.cli.sva_command", "manylm.cli.convert_command"])
def test_a_module_imported_first_finds_no_import_cycle(first: str) -> None:
    """Whichever module a program imports first: with the package's names loaded on first
    use, the import order is the program's (a cycle between the fitters and the in-memory
    engine failed when the engine came first; every module was checked once this way)."""
    subprocess.run([sys.executable, "-c", f"import {first}"], capture_output=True,
                   timeout=120, check=True)


def test_public_errors_share_one_base() -> None:
    for attribute in manylm.__all__:
        obj = getattr(manylm, attribute)
        if inspect.isclass(obj) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, manylm.ManylmError)


@pytest.mark.parametrize("function", [manylm.lm_fit, manylm.ebayes, manylm.treat,
                                      manylm.top_table, manylm.decide_tests,
                                      manylm.design_matrix])
def test_options_are_keyword_only(function) -> None:
    parameters = list(inspect.signature(function).parameters.values())
    options = [p for p in parameters[2:] if p.default is not inspect.Parameter.empty]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in options), function.__name__


def test_progress_bar_only_on_a_terminal(monkeypatch) -> None:
    from manylm.cli import progress

    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    with progress.FeatureProgress(100, "fitting") as bar:
        bar(50)
    assert bar.done == 50 and bar._progress is None
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True, raising=False)
    ticks = itertools.count(0.0, 5.0)  # every reading of the clock is 5 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(ticks))
    with progress.FeatureProgress(100, "fitting") as bar:
        bar(40)
        bar(60)
    assert bar.done == 100 and bar._progress is not None
