"""Rate control: the quality that meets a PSNR target, the step that fits a byte budget.

Package-internal. Rate control picks the quantizer step, never the target itself.
A PSNR target: :func:`search_quality` bisects the integer quality 1-100 (monotone
in rate and distortion); the JPEG comparison uses the same search over Pillow's
quality. A byte budget: :func:`level_for_budget` searches integer step levels
(:func:`level_to_step`) from a first guess (:func:`first_guess`, from the format-2
size estimate), with :func:`svdimage._search.qualities_for_budgets`, which answers
several budgets from one shared set of trial encodes (a survey asks for four);
for ``tile="auto"``, :func:`side_for_budget` first picks the patch side to search.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from svdimage._search import largest_true, qualities_for_budgets, smallest_true
from svdimage.codec._decode import decode
from svdimage.codec._format import read_head
from svdimage.codec._patches import KEEP_FACTOR, PatchTrials
from svdimage.codec._tiles import Trials
from svdimage.metrics import peak_signal_noise_ratio

__all__ = [
    "search_quality",
    "quality_for_psnr",
    "cheapest",
    "side_for_budget",
    "level_for_budget",
    "first_guess",
    "level_to_step",
    "step_to_level",
    "BUDGET_TOLERANCE",
    "STEP_LEVELS",
    "Guess",
]

#: :func:`first_guess`'s answer: the first level, the slope of log(size) per level, and
#: the luma step whose components every trial keeps (``None``: each chooses its own).
Guess = tuple[int, float, float | None]


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

    def good(quality: int) -> bool:
        decoded = decode(encode(quality), max_pixels=None)
        return peak_signal_noise_ratio(image, decoded) >= psnr

    return search_quality(good, prefer="low", target=f"{psnr:g} dB")


def cheapest(made: list[tuple[bytes, float]]) -> int:
    """Which of ``(file, squared error)`` has the lower rate-distortion cost ``error +
    lambda * bits``, ``lambda = KEEP_FACTOR * q**2`` at the coarser of their luma steps
    (the slope that decides which components each encoder keeps)."""
    steps = [read_head(data)[0]["planes"][0]["step"] for data, _ in made]
    slope = KEEP_FACTOR * max(steps) ** 2
    costs = [error + slope * 8 * len(data) for data, error in made]
    return costs.index(min(costs))


def side_for_budget(
    trials_of: Callable[[int], PatchTrials], sides: Sequence[int], budget: float
) -> tuple[PatchTrials, Guess]:
    """``tile="auto"`` under a byte budget: the trials of the patch side whose step is
    searched, and that search's first guess (:func:`first_guess`).

    Each side encodes once, at the level its size estimate gives for the budget (the
    search's first trial), and the side whose file has the lower rate-distortion cost
    (:func:`cheapest`) is searched. Against searching both sides and keeping the file
    with less error (the rule it replaced; budgets of 0.25-2 bpp): the same side for 34 of 35
    files of the tuning photos and 114 of 119 of the evaluation photos, -0.004 dB on
    average (the worst, -0.17 dB, on the gray Hubble field at 0.25 bpp), in 24-26 % fewer
    trials. ``trials_of(side)`` gives a side's trials; when it builds them afresh (as
    ``encode`` does), one side's are held at a time, and the first side's are built again
    when it wins (the same files), holding the file it made (:meth:`PatchTrials.adopt`).
    """
    made, guesses = [], []
    for side in sides:
        trials = trials_of(side)
        guess = first_guess(trials, budget)
        data = trials.at_step(level_to_step(guess[0]))
        made.append((data, trials.squared_error(data)))
        guesses.append(guess)
    best = cheapest(made)
    if best != len(sides) - 1:
        trials = trials_of(sides[best])
        trials.decide_at = guesses[best][2]
        trials.adopt(level_to_step(guesses[best][0]), *made[best])
    return trials, guesses[best]


#: A size or bpp target is met when the file fits and is within this fraction of it.
BUDGET_TOLERANCE = 0.03
#: About how much log(size) grows per level (size ~ step**-1.2 for photos): the second
#: trial's guess.
SIZE_SLOPE = 1.2 * -math.log(0.99)
#: Rate control's steps: ``level_to_step(n) = 2 * 0.99**n`` for n in 0..STEP_LEVELS, so that
#: consecutive levels differ by about 1.3% in size and a budget is met within a few percent.
STEP_LEVELS = 1100


def level_for_budget(
    trials: Trials | PatchTrials,
    budget: float,
    size_at: Callable[[int], int],
    *,
    guess: Guess | None = None,
) -> int | None:
    """The level of the file for a byte budget: within BUDGET_TOLERANCE below it when one
    is, found from a first guess (:func:`first_guess`) by secant steps; ``None`` when even
    the coarsest step is larger. The same search for :func:`svdimage.codec.encode` and
    :func:`svdimage.codec.encode_for_sizes`, so that both give the same file; ``guess`` is
    :func:`first_guess`'s answer when the caller has it."""
    first, slope, decide_at = first_guess(trials, budget) if guess is None else guess
    if isinstance(trials, PatchTrials):
        trials.decide_at = decide_at
    (level,) = qualities_for_budgets(
        size_at,
        [budget],
        lowest=0,
        highest=STEP_LEVELS,
        first=first,
        tolerance=BUDGET_TOLERANCE,
        slope=slope,
    )
    if level is None and isinstance(trials, PatchTrials) and trials.decide_at is not None:
        # The guess's components do not fit even at the coarsest step: choose them freely.
        trials.decide_at = None
        (level,) = qualities_for_budgets(
            size_at, [budget], lowest=0, highest=STEP_LEVELS, first=first, tolerance=0.0
        )
    return level


def first_guess(trials: Trials | PatchTrials, budget: float) -> Guess:
    """Rate control's first level, the slope of log(size) per level around it, and the
    luma step whose components every trial keeps (``decide_at``; ``None``: each chooses
    its own), which it leaves set on patch trials.

    Format 2 has a cheap size estimate (:meth:`PatchTrials.estimate`, no coding):
    the level where it meets the budget, and its local slope, so that the first
    trial is near and the second, corrected by that slope, usually within the
    tolerance. Otherwise the level of quality 75 and a typical slope.
    """
    default = step_to_level(trials.step_of(75.0)), SIZE_SLOPE, None
    if not isinstance(trials, PatchTrials):
        return default
    trials.decide_at = None
    estimates: dict[int, float] = {}

    def estimate(level: int) -> int:  # at least a byte: the search takes logs of sizes
        if level not in estimates:
            estimates[level] = trials.estimate(level_to_step(level))
        return max(1, int(estimates[level]))

    (guess,) = qualities_for_budgets(
        estimate,
        [budget],
        lowest=0,
        highest=STEP_LEVELS,
        first=default[0],
        tolerance=0.02,
        slope=SIZE_SLOPE,
    )
    if guess is None:
        return default
    # Every trial keeps the components of the guess, so that the size changes smoothly
    # with the step (a component dropped or added jumps it by up to 10 %).
    trials.decide_at = level_to_step(guess)
    estimates.clear()
    low, high = max(guess - 15, 0), min(guess + 15, STEP_LEVELS)
    rise = math.log(estimate(high)) - math.log(estimate(low))
    return guess, rise / (high - low) if rise > 0 else SIZE_SLOPE, trials.decide_at


def level_to_step(level: int) -> float:
    """The quantizer step of rate control's integer ``level`` (finer as it grows)."""
    return 2.0 * 0.99 ** int(level)


def step_to_level(step: float) -> int:
    """The level whose step is nearest ``step``."""
    return int(np.clip(round(math.log(step / 2.0) / math.log(0.99)), 0, STEP_LEVELS))
