"""The ``svdimage`` command: parses arguments, calls the library, prints.

No mathematics lives here. One module per group of commands:

* :mod:`~svdimage.cli.explore`: ``demo``, ``sweep``, ``reconstruct``, ``info``, ``animate``;
* :mod:`~svdimage.cli.ranks`: ``choose``, ``denoise``;
* :mod:`~svdimage.cli.compression`: ``compress``, ``decompress``, ``inspect``;
* :mod:`~svdimage.cli.batch`: ``survey``;

and :mod:`~svdimage.cli._app` for what they share (the app, errors and exit
codes, options, number formats), :mod:`~svdimage.cli._batch` for the batch
modes (several images, a folder or a glob, on :mod:`svdimage.batch`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Optional

from svdimage._fileutil import remove_live_temporaries
from svdimage.cli._app import (
    EXIT_BAD_INPUT,
    EXIT_CODES,
    EXIT_FILES,
    EXIT_INTERNAL,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_USAGE,
    app,
)

# Importing a group registers its commands; --help lists them in this order.
for _group in ("explore", "ranks", "compression", "batch"):
    importlib.import_module(f"svdimage.cli.{_group}")

__all__ = [
    "app",
    "main",
    "EXIT_CODES",
    "EXIT_OK",
    "EXIT_INTERNAL",
    "EXIT_USAGE",
    "EXIT_BAD_INPUT",
    "EXIT_FILES",
    "EXIT_NETWORK",
]


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of the ``svdimage`` script.

    ``--quiet``/``-q`` and ``--debug`` are options of ``svdimage`` itself, and
    may also be written after the command (``svdimage compress -q ...``).
    SIGTERM and SIGINT remove the output being written and exit with 143 or
    130 (128 + the signal's number), as shells report a killed command.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    end = args.index("--") if "--" in args else len(args)
    hoisted = [a for a in args[:end] if a in _GLOBAL_FLAGS]
    args = hoisted + [a for a in args[:end] if a not in _GLOBAL_FLAGS] + args[end:]
    _exit_cleanly_on_signals()
    app(args=args, prog_name="svdimage")


_GLOBAL_FLAGS = ("--quiet", "-q", "--debug")


def _stop_children() -> None:
    """SIGKILL this process's child processes and reap them (Linux ``/proc``; else nothing)."""
    children: set[int] = set()
    with contextlib.suppress(OSError):
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as listed:
                children.update(int(pid) for pid in listed.read().split())
    for pid in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _exit_cleanly_on_signals() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_signal)


def _silence_stderr() -> int:
    """Point descriptor 2 at the null device; return a descriptor of the old stderr."""
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except OSError:
        return 2
    return saved


def _on_signal(signum: int, frame: object) -> None:
    """Remove the partial output, say so in one line, exit 128 + signum at once.

    Exiting from the handler (``os._exit``) rather than raising an exception
    means no library code on the stack (a fork in progress, a C call) can
    swallow or delay the stop.
    """

    # From here on this process's threads (Dask's, a progress bar's) and what they start
    # write to the null device: the stop is said in one line, on the saved descriptor.
    report = _silence_stderr()
    _stop_children()  # an encoder (ffmpeg) would otherwise go on writing, or create its file
    remove_live_temporaries()
    with contextlib.suppress(Exception):  # buffered output, if its lock is free
        sys.stdout.flush()
    if os.isatty(report):
        with contextlib.suppress(OSError):
            os.write(report, b"\x1b[?25h")  # a spinner may have hidden the cursor
    name = signal.Signals(signum).name
    with contextlib.suppress(OSError):
        os.write(report, f"svdimage: stopped by {name}; no partial output was left.\n".encode())
    os._exit(128 + signum)
