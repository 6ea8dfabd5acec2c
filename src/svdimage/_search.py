"""Bisection over integers for monotone predicates, shared by rank selection and the codec."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["smallest_true", "largest_true"]


def smallest_true(predicate: Callable[[int], bool], low: int, high: int) -> int:
    """Smallest ``k`` in ``[low, high]`` with ``predicate(k)``, given ``predicate(high)``.

    Assumes the predicate is monotone (false, then true); callers that cannot
    promise it verify the neighbours of the answer.
    """
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return low


def largest_true(predicate: Callable[[int], bool], low: int, high: int) -> int:
    """Largest ``k`` in ``[low, high]`` with ``predicate(k)``, given ``predicate(low)``."""
    while low < high:
        middle = (low + high + 1) // 2
        if predicate(middle):
            low = middle
        else:
            high = middle - 1
    return low
