import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from svdimage._search import (
    largest_true,
    qualities_for_budgets,
    smallest_reaching,
    smallest_true,
)


@given(st.integers(1, 500), st.integers(1, 500))
def test_smallest_and_largest_true_match_brute_force(threshold, top):
    top = max(top, threshold)
    calls = []

    def at_least(k):
        calls.append(k)
        return k >= threshold

    assert smallest_true(at_least, 1, top) == threshold
    assert len(calls) <= 10  # bisection, not a scan
    assert largest_true(lambda k: k <= threshold, 1, top) == threshold


@pytest.mark.parametrize("low,high", [(1, 1), (5, 5)])
def test_single_candidate(low, high):
    assert smallest_true(lambda k: True, low, high) == low
    assert largest_true(lambda k: True, low, high) == low


@given(
    st.integers(1, 3000),
    st.floats(0.05, 0.95),
    st.floats(0.2, 5.0),
    st.integers(0, 40),
)
def test_smallest_reaching_equals_bisection_on_monotone_scores(top, level, power, plateau):
    """Any non-decreasing score (curved in log k, or with flat runs): the bisection answer."""

    def score(k):
        return (k // (plateau + 1) * (plateau + 1) / top) ** power  # steps of plateau + 1 ranks

    target = level * score(top)
    if score(top) < target or target <= 0:
        return
    calls = []

    def counted(k):
        calls.append(k)
        return score(k)

    expected = smallest_true(lambda k: score(k) >= target, 1, top)
    assert smallest_reaching(counted, target, 1, top) == expected
    assert len(calls) == len(set(calls))  # each rank measured once
    if expected > 1:
        assert expected - 1 in calls  # the neighbour below is measured: the answer is verified


def test_smallest_reaching_needs_fewer_calls_on_quality_like_curves():
    """On a curve shaped as SSIM against the rank (a saturating function of log k), fewer
    measurements than bisection over 1..3000 (12) for every target."""
    counts = []
    for target in np.linspace(0.3, 0.99, 30):
        calls: list[int] = []
        smallest_reaching(
            lambda k, calls=calls: calls.append(k) or 1 - 0.9 / (1 + (k / 40) ** 0.8),
            target,
            1,
            3000,
        )
        counts.append(len(calls))
    assert max(counts) <= 12 and np.mean(counts) <= 8


@given(
    steps=st.lists(st.integers(0, 400), min_size=100, max_size=100),
    budgets=st.lists(st.integers(1, 40_000), min_size=1, max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_qualities_for_budgets_equal_bisection_with_fewer_trials(steps, budgets):
    """Any size that grows with the quality (plateaus included): the bisection's answers."""
    sizes = dict(zip(range(1, 101), np.cumsum(steps) + 1))
    trials = []

    def size_at(q):
        trials.append(q)
        return int(sizes[q])

    got = qualities_for_budgets(size_at, budgets)
    expected = [
        largest_true(lambda q, b=b: sizes[q] <= b, 1, 100) if sizes[1] <= b else None
        for b in budgets
    ]
    assert got == expected
    assert len(trials) == len(set(trials))  # each quality encoded once, shared by the budgets
    # Worst case about twice bisection's 7 trials per budget (a secant step that fails to
    # halve the bracket is followed by a bisection step); on photos far fewer (next test).
    assert len(trials) <= 15 * len(set(budgets))


@given(
    top=st.integers(2, 5000),
    slope=st.floats(10, 5000),
    budget=st.floats(1, 1e7),
    seen=st.lists(st.integers(1, 5000), max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_qualities_for_budgets_over_any_range_with_known_sizes(top, slope, budget, seen):
    """The same search over ranks 1..top (sizes growing with the rank, some already known):
    the bisection answer, and no known size measured again."""

    def size_of(k):
        return int(200 + slope * k + 0.01 * k * k)

    known = {k: size_of(k) for k in seen if k <= top}
    calls = []
    (got,) = qualities_for_budgets(
        lambda k: calls.append(k) or size_of(k), [budget], lowest=1, highest=top, known=known
    )
    expected = (
        largest_true(lambda k: size_of(k) <= budget, 1, top) if size_of(1) <= budget else None
    )
    assert got == expected
    assert not set(calls) & set(known)


@given(
    steps=st.lists(st.integers(0, 400), min_size=1101, max_size=1101),
    budgets=st.lists(st.integers(1, 400_000), min_size=1, max_size=4),
    slope=st.sampled_from([None, 0.012, 0.05]),
)
@settings(max_examples=200, deadline=None)
def test_qualities_for_budgets_with_a_tolerance_fit_and_stop_near(steps, budgets, slope):
    """With a tolerance: an answer that fits and is within it of the budget, or, when no
    level is, the bisection's answer; never more trials than an exact search."""
    sizes = dict(zip(range(0, 1101), np.cumsum(steps) + 1))
    trials = []

    def size_at(q):
        trials.append(q)
        return int(sizes[q])

    got = qualities_for_budgets(
        size_at, budgets, lowest=0, highest=1100, first=500, tolerance=0.02, slope=slope
    )
    for budget, level in zip(budgets, got):
        best = (
            largest_true(lambda q, b=budget: sizes[q] <= b, 0, 1100) if sizes[0] <= budget else None
        )
        if best is None:
            assert level is None
        elif sizes[best] >= 0.98 * budget:
            assert sizes[level] <= budget and sizes[level] >= 0.98 * budget
        else:
            assert level == best
    assert len(trials) == len(set(trials))
    assert len(trials) <= 24 * len(set(budgets))


def test_qualities_for_budgets_crosses_a_flat_stretch_in_few_trials():
    """A small file's size can stall, even fall a little, over a stretch of levels (its
    header and means dominate while components and tables come and go). A secant through
    two such sizes points hundreds of levels off; the search steps along the expected slope
    instead, and lands within the tolerance in a few trials (a secant search took 22)."""
    levels = np.arange(1101, dtype=float)
    sizes = 25701 * np.exp(0.012 * (levels - 260))
    flat = (levels >= 279) & (levels <= 295)
    sizes[flat] = sizes[279] - 15 * (levels[flat] - 279)
    after = levels > 295
    sizes[after] = sizes[295] * np.exp(0.012 * (levels[after] - 295))
    trials = []

    def size_at(q):
        trials.append(q)
        return int(sizes[q])

    (level,) = qualities_for_budgets(
        size_at, [35000], lowest=0, highest=1100, first=260, tolerance=0.03, slope=0.0121
    )
    assert 0.97 * 35000 <= sizes[level] <= 35000
    assert len(trials) <= 10
