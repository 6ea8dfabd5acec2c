"""Shims for public names that moved: a module-level ``__getattr__`` that still answers the
old name for one minor version, with a ``DeprecationWarning`` naming the new one."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

__all__ = ["moved_names"]


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
