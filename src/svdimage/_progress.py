"""Progress of the library's long steps, told to whoever listens (nobody by default).

A step is opened with :func:`task` (a name, and a total when its work can be
counted: channels of an SVD, ranks measured, frames) and advanced as its
units finish. The command line listens (:mod:`svdimage.cli._app` shows Rich
bars with an ETA on a terminal, one line per finished step otherwise); the
Python API stays silent unless a caller installs a listener with
:func:`listening`. The listener lives in a context variable, so threads and
Dask workers that do not inherit it stay silent too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol

__all__ = ["Task", "Listener", "task", "listening"]


class Task:
    """One running step: its name, its total (``None`` when it cannot be counted), progress."""

    def __init__(self, name: str, total: int | None, unit: str, listener: Listener | None) -> None:
        self.name, self.total, self.unit, self.done = name, total, unit, 0
        self.started = time.perf_counter()
        self._listener = listener

    def advance(self, units: int = 1) -> None:
        """``units`` more of the work are done."""
        self.done += units
        if self._listener is not None:
            self._listener.advanced(self)

    @property
    def seconds(self) -> float:
        """Seconds since the step started."""
        return time.perf_counter() - self.started


class Listener(Protocol):
    """What hears about steps (the CLI's progress display)."""

    def started(self, task: Task) -> None: ...

    def advanced(self, task: Task) -> None: ...

    def finished(self, task: Task) -> None: ...


_LISTENER: ContextVar[Listener | None] = ContextVar("svdimage_progress", default=None)


@contextlib.contextmanager
def task(name: str, total: int | None = None, *, unit: str = "") -> Iterator[Task]:
    """Report a step while the block runs; the yielded :class:`Task` is advanced by it.

    ``unit`` names what is counted (``"channels"``, ``"ranks measured"``).
    """
    listener = _LISTENER.get()
    step = Task(name, total, unit, listener)
    if listener is None:
        yield step
        return
    listener.started(step)
    try:
        yield step
    finally:
        listener.finished(step)


@contextlib.contextmanager
def listening(listener: Listener | None) -> Iterator[None]:
    """Send the steps of this block to ``listener`` (``None``: to nobody)."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
