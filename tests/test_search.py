import pytest
from hypothesis import given
from hypothesis import strategies as st

from svdimage._search import largest_true, smallest_true


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
