"""The ``svdimage`` command: parses arguments, calls the library, prints.

No mathematics lives here. One module per group of commands:

* :mod:`~svdimage.cli.explore`: ``demo``, ``sweep``, ``reconstruct``, ``info``, ``animate``;
* :mod:`~svdimage.cli.ranks`: ``choose``, ``denoise``;
* :mod:`~svdimage.cli.compression`: ``compress``, ``decompress``, ``inspect``;

and :mod:`~svdimage.cli._app` for what they share (the app, errors and exit
codes, options, number formats).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Optional

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
for _group in ("explore", "ranks", "compression"):
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
    """Entry point of the ``svdimage`` script."""
    app(args=list(argv) if argv is not None else None, prog_name="svdimage")
