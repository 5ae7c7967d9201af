"""Ctrl-C and ``kill`` (SIGTERM) during a command: one clean interruption, never lost.

Only the standard library is imported here, so that the command can hold interruptions from
its very first import (:func:`interruptions_held`) before it loads NumPy and the rest.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["interruptions_held", "raise_if_interrupted", "sigterm_as_interrupt"]


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """During a run, ``kill`` (SIGTERM) interrupts like Ctrl-C, so that clean-up runs.

    Both signals are also remembered: an interruption that Python delivers while the main thread
    runs a finaliser is printed and dropped there, so the run checks
    :func:`raise_if_interrupted` before it makes its output visible. Ctrl-C keeps its own
    handler when the caller installed one (only Python's default one is replaced).

    Nested (an engine's run inside ``manylm``'s command, which also uses it), the inner block
    keeps what the outer one remembered: an interruption swallowed before the engine started
    still stops the output.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not _interrupt:
        _INTERRUPTED.clear()
    signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.getsignal(signal.SIGINT)
    replace_int = previous_int is signal.default_int_handler
    if replace_int:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if replace_int:
            signal.signal(signal.SIGINT, previous_int)


_INTERRUPTED = threading.Event()


def _interrupt(signum: int, frame: Any) -> None:
    """The handler of SIGTERM (and Ctrl-C) during a run: remembered, then an interruption."""
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if the current run was interrupted, even if that was swallowed."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interruptions_held() -> Iterator[None]:
    """Ctrl-C and ``kill`` (SIGTERM) in the block are noted, then raised as KeyboardInterrupt
    when it ends; a second one is raised at once (an import that never ends: a hung file
    system).

    For blocks that import modules: the start-up, which imports the verbs' modules (about a
    second: pandas, SciPy, numba, pyarrow), and the imports a run makes on the way (Dask's
    ``distributed``). A KeyboardInterrupt raised inside an import can be swallowed by a
    library's own ``except`` and leave a module's import lock held: a run then went on and hung
    on that lock as soon as a thread imported the module. Handlers are replaced only in the
    main thread, and only Python's default ones or a run's own (:func:`sigterm_as_interrupt`,
    which also remembers the interruption): an embedding program keeps its own.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted = threading.Event()
    replaced: dict[signal.Signals, Any] = {}

    def note(signum: int, frame: Any) -> None:
        if _interrupt in replaced.values():  # in a run: remembered, as its handler does
            _INTERRUPTED.set()
        if noted.is_set():
            raise KeyboardInterrupt
        noted.set()

    for number, default in ((signal.SIGINT, signal.default_int_handler),
                            (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(number) in (default, _interrupt):
            replaced[number] = signal.signal(number, note)
    try:
        yield
    except BaseException as error:
        if noted.is_set() and not isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt from error  # the interruption comes first
        raise
    finally:
        for number, previous in replaced.items():
            signal.signal(number, previous)
    if noted.is_set():
        raise KeyboardInterrupt
