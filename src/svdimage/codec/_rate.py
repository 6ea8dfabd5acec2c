"""Rate control: the quality that meets a PSNR target or fits a byte budget.

Package-internal. Rate control picks the quantizer step (through the integer
quality 1-100, monotone in rate and distortion), never the target itself:
:func:`search_quality` bisects it; the JPEG comparison uses the same search
over Pillow's quality. :func:`qualities_for_budgets` answers several byte
budgets from one shared set of trial encodes (a survey asks for four).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from svdimage._search import largest_true, smallest_true

__all__ = ["search_quality", "quality_for_psnr", "qualities_for_budgets"]


def search_quality(accept: Callable[[int], bool], *, prefer: str, target: str) -> int:
    """Bisect the integer quality 1..100 for a monotone ``accept``.

    ``prefer='low'``: the smallest quality that meets a quality target;
    ``'high'``: the largest quality that fits a budget. Raises ``ValueError``
    naming ``target`` when no quality qualifies.
    """
    if prefer == "low":
        if not accept(100):
            raise ValueError(f"even quality 100 does not reach {target}.")
        return smallest_true(accept, 1, 100)
    if not accept(1):
        raise ValueError(f"even quality 1 does not fit {target}.")
    return largest_true(accept, 1, 100)


def quality_for_psnr(image: np.ndarray, encode: Callable[[float], bytes], psnr: float) -> int:
    """Smallest quality whose decoded file reaches ``psnr`` dB against ``image``."""
    from svdimage.codec._decode import decode
    from svdimage.metrics import peak_signal_noise_ratio

    def good(quality: int) -> bool:
        decoded = decode(encode(quality), max_pixels=None)
        return peak_signal_noise_ratio(image, decoded) >= psnr

    return search_quality(good, prefer="low", target=f"{psnr:g} dB")


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
        mode, width, last, tries = "secant", high - low, 0, 0
        while high - low > 1 and not (
            tolerance > 0 and low >= lowest and sizes[low] >= (1 - tolerance) * budget
        ):
            aim = budget * (1 - tolerance / 2)  # the middle of the accepted window
            guess = _secant(sizes, aim, slope, nearest=tolerance > 0) if mode == "secant" else None
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
