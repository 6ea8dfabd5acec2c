import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from svdimage._search import largest_true, smallest_reaching, smallest_true


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
