"""Shims for public names that moved: a module-level ``__getattr__`` that still answers the
old name for one minor version, with a ``DeprecationWarning`` naming the new one."""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["moved_names", "moved_module", "destination_first", "renamed_argument"]


def moved_names(module: str, names: dict[str, str], *, removed_in: str) -> Callable[[str], object]:
    """A ``__getattr__`` for ``module`` (PEP 562) that answers each old name of ``names`` with
    the object at its new dotted path, warning that it will be removed in ``removed_in``.

    Examples
    --------
    >>> __getattr__ = moved_names("pkg.old", {"f": "svdimage._search.smallest_true"},
    ...                           removed_in="0.3")
    >>> import pytest
    >>> with pytest.deprecated_call(match="use svdimage._search.smallest_true"):
    ...     f = __getattr__("f")
    >>> f(lambda k: k >= 3, 1, 10)
    3
    """

    def module_getattr(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        home, _, new = names[name].rpartition(".")
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed in {removed_in}; use "
            f"{names[name]} (import it from {home}).",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), new)

    return module_getattr


def destination_first(
    destination: Any, data: Any, *, function: str, names: tuple[str, str]
) -> tuple[Any, Any]:
    """``(destination, data)`` of a writer that takes its destination first (as
    ``numpy.save(file, arr)`` and imageio's ``imwrite(uri, image)``); the order of before
    0.2, data first, still works until 0.3, with a ``DeprecationWarning``.

    ``names`` are the two parameters' names, destination first, for the message. The old
    order is told by the second argument being a path and the first not.
    """

    def is_path(value: Any) -> bool:
        return isinstance(value, (str, os.PathLike))

    if is_path(destination) or not is_path(data):
        return destination, data
    warnings.warn(
        f"{function}({names[1]}, {names[0]}) is deprecated and will stop working in 0.3: "
        f"writers take the destination first, {function}({names[0]}, {names[1]}).",
        DeprecationWarning,
        stacklevel=3,
    )
    return data, destination


def renamed_argument(value: Any, old_value: Any, *, new: str, old: str, function: str) -> Any:
    """The value of keyword ``new``, or of its spelling before 0.2, ``old`` (until 0.3, with a
    ``DeprecationWarning``); both at once is a ``TypeError``."""
    if old_value is None:
        return value
    if value is not None:
        raise TypeError(f"{function}() got both {new}= and its old spelling {old}=; give {new}=.")
    warnings.warn(
        f"{function}({old}=...) is deprecated and will stop working in 0.3; use {new}=.",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value


def moved_module(old: str, new: str, *, removed_in: str) -> None:
    """Make the module ``old`` (being imported) the module ``new``, with a
    ``DeprecationWarning`` saying it will be removed in ``removed_in``: for a module that
    moved into a package (``svdimage.criteria`` to ``svdimage.ranks.criteria``)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in {removed_in}; use {new}.",
        DeprecationWarning,
        stacklevel=3,
    )
    sys.modules[old] = importlib.import_module(new)
