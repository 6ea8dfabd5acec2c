"""Searches over integers, shared by rank selection and the codec: bisection for monotone
predicates, and the largest setting whose size fits each of several budgets."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["smallest_true", "largest_true", "smallest_reaching", "qualities_for_budgets"]


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


def smallest_reaching(score: Callable[[int], float], target: float, low: int, high: int) -> int:
    """Smallest ``k`` in ``[low, high]`` with ``score(k) >= target``, given that
    ``score(high)`` reaches it, for a score that grows with ``k`` (a quality
    against the rank).

    The answer of :func:`smallest_true` on ``score(k) >= target``, with fewer
    calls of ``score`` (each one measures a whole image): the next ``k`` is
    interpolated on ``log k`` between the bracket's ends, where quality curves
    are nearly straight, by the Illinois variant of regula falsi [1]_ (an end
    kept twice in a row has its value halved, so the bracket closes from both
    sides), and after four steps in a row that have not halved the bracket, one bisects it.
    On SSIM against the rank this takes 5-9 calls where bisection over
    ``1..512`` takes 10.

    Parameters
    ----------
    score : callable
        ``score(k) -> float``, called at most once per ``k``.
    target : float
    low, high : int
        The bracket; that ``score(high) >= target`` is the caller's to ensure.

    Returns
    -------
    k : int
        ``score(k) >= target`` and, unless ``k == low``, ``score(k - 1) < target``
        (both measured).

    References
    ----------
    .. [1] M. Dowell and P. Jarratt, "A modified regula falsi method for computing the
           root of an equation", BIT 11 (1971) 168-174. :doi:`10.1007/BF01934364`
    """
    g_low = float(score(low)) - target
    if g_low >= 0:
        return low
    g_high = float(score(high)) - target
    kept, slow = 0, 0  # which end was kept last (-1 low, +1 high); steps without halving
    while high - low > 1:
        width = high - low
        if slow < 4 and g_high > g_low:
            t = -g_low / (g_high - g_low)
            guess = math.exp(math.log(low) + t * (math.log(high) - math.log(low)))
            k = min(max(round(guess), low + 1), high - 1)
        else:
            k, slow = (low + high) // 2, 0
        g = float(score(k)) - target
        if g >= 0:
            high, g_high = k, g
            g_low = g_low / 2 if kept == -1 else g_low
            kept = -1
        else:
            low, g_low = k, g
            g_high = g_high / 2 if kept == 1 else g_high
            kept = 1
        slow = 0 if high - low <= width // 2 else slow + 1
    return high


def qualities_for_budgets(
    size_at: Callable[[int], int],
    budgets: Sequence[float],
    *,
    lowest: int = 1,
    highest: int = 100,
    first: int = 75,
    known: dict[int, int] | None = None,
    tolerance: float = 0.0,
    slope: float | None = None,
) -> list[int | None]:
    """The largest quality 1..100 whose file fits each budget (``None``: not even 1).

    Any integer parameter whose size grows with it works the same way: a rank
    in ``lowest..highest`` (``first`` is tried when nothing is known yet;
    ``known`` holds sizes already measured).

    The answer is the one bisection gives for a size that grows with the
    quality, found in fewer trial encodes: the bracket around each budget
    (the largest quality known to fit, the smallest known not to) is narrowed
    at the quality where the log of the size, drawn as a line through the two
    measured sizes nearest the budget, meets it (inter- or extrapolated), then
    at the next quality beyond that guess (which usually closes the bracket),
    with a plain bisection step whenever two steps failed to halve it; every
    size measured is remembered for the next budget.

    With ``tolerance`` > 0 the search stops at the first parameter whose size
    fits and is within that fraction of the budget (a near answer in fewer
    trials, for a parameter much finer than the tolerance); ``slope``, the
    expected growth of log(size) per unit of the parameter, makes the second
    trial a guess instead of a bisection step.
    """
    if any(not budget > 0 for budget in budgets):
        raise ValueError(f"size and bpp must be positive; got budgets {list(budgets)!r}.")
    sizes: dict[int, int] = dict(known or {})

    def size(quality: int) -> int:
        if quality not in sizes:
            sizes[quality] = size_at(quality)
        return sizes[quality]

    answers: dict[float, int | None] = {}
    for budget in sorted(set(budgets)):
        fits = [q for q, n in sizes.items() if n <= budget]
        low = max(fits, default=lowest - 1)  # below lowest: nothing known to fit yet
        high = min((q for q, n in sizes.items() if n > budget and q > low), default=highest + 1)
        mode, width, last, tries, boost = "secant", high - low, 0, 0, 1.0
        while high - low > 1 and not (
            tolerance > 0 and low >= lowest and sizes[low] >= (1 - tolerance) * budget
        ):
            aim = budget * (1 - tolerance / 2)  # the middle of the accepted window
            guess = _secant(sizes, aim, slope, nearest=tolerance > 0) if mode == "secant" else None
            beyond = low < lowest or high > highest  # every measured size on one side
            if guess is not None and slope and tolerance > 0 and beyond and len(sizes) > 1:
                guess, boost = _flat_secant(sizes, aim, slope, guess, boost)
            if mode == "neighbour":  # a secant guess is usually right: test the next step
                quality = low + 1 if last == low else high - 1
            elif guess is not None:
                quality = int(np.clip(np.rint(guess), low + 1, high - 1))
            else:
                bracketed = low >= lowest or high <= highest
                quality = (low + high + 1) // 2 if bracketed else min(max(first, lowest), highest)
            if size(quality) <= budget:
                low = quality
            else:
                high = quality
            last = quality
            if tolerance > 0:  # secant steps while each two halve the bracket
                tries += 1
                if mode == "bisect":
                    mode, width, tries = "secant", high - low, 0
                elif tries >= 2:
                    bracketed = low >= lowest and high <= highest
                    mode = "bisect" if bracketed and high - low > width / 2 else "secant"
                    width, tries = high - low, 0
            elif mode == "secant" and guess is not None:
                mode = "neighbour"
            elif high - low > width / 2:  # two steps did not halve the bracket
                mode, width = "bisect", high - low
            else:
                mode, width = "secant", high - low
        answers[budget] = low if low >= lowest else None
    return [answers[budget] for budget in budgets]


def _flat_secant(
    sizes: dict[int, int], aim: float, slope: float, guess: float, boost: float
) -> tuple[float, float]:
    """The next trial beyond every measurement, and the next boost. Where the two sizes
    nearest ``aim`` lie on a line less than a quarter as steep as the expected ``slope``
    (sizes that barely change, or fall, over a stretch: a file of a few kilobytes, mostly
    header and means, whose size wiggles as components and tables come and go), the
    secant ``guess`` points far off: step instead along ``slope`` from the nearest size,
    ``boost`` times as far, and twice as far each time that falls short again."""
    target = np.log(aim)
    (qa, na), (qb, nb) = sorted(sizes.items(), key=lambda item: abs(np.log(item[1]) - target))[:2]
    if (np.log(nb) - np.log(na)) / (qb - qa) >= slope / 4:
        return guess, 1.0
    return qa + boost * (target - np.log(na)) / slope, 2 * boost


def _secant(
    sizes: dict[int, int], budget: float, slope: float | None = None, *, nearest: bool = False
) -> float | None:
    """Where log(size) meets log(budget) on a line through two measurements: the nearest
    below and above the budget when there are both (interpolation), else (or always, with
    ``nearest``: the secant method) the two nearest; from one measurement, on a line of
    the given ``slope``."""
    if len(sizes) == 1 and slope:
        ((q, n),) = sizes.items()
        return float(q + (np.log(budget) - np.log(n)) / slope)
    if len(sizes) < 2:
        return None
    target = np.log(budget)
    below = [item for item in sizes.items() if item[1] <= budget]
    above = [item for item in sizes.items() if item[1] > budget]
    if below and above and not nearest:
        (qa, na), (qb, nb) = max(below, key=lambda i: i[1]), min(above, key=lambda i: i[1])
    else:
        closest = sorted(sizes.items(), key=lambda item: abs(np.log(item[1]) - target))
        (qa, na), (qb, nb) = closest[:2]
    if na == nb:
        return None
    return float(qa + (target - np.log(na)) * (qb - qa) / (np.log(nb) - np.log(na)))
