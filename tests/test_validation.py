import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from svdimage._validation import as_image_array, check_rank, parse_rank_spec


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("3,10,20,50,100", [3, 10, 20, 50, 100]),
        ("1:5", [1, 2, 3, 4, 5]),
        ("1:3,80:100:10", [1, 2, 3, 80, 90, 100]),
        (" 10 , 3 ,3", [3, 10]),
    ],
)
def test_parse_rank_spec_lists_and_ranges(spec, expected):
    assert parse_rank_spec(spec) == expected


@pytest.mark.parametrize(
    "spec,match",
    [
        ("", "empty item"),
        ("3,,4", "empty item"),
        ("a", "not an integer"),
        ("5:1", "start <= stop"),
        ("1:10:0", "step >= 1"),
        ("0,4", ">= 1"),
        ("1:2:3:4", "too many"),
    ],
)
def test_parse_rank_spec_rejects_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_rank_spec(spec)


@given(st.lists(st.integers(1, 500), min_size=1, max_size=20))
def test_parse_rank_spec_round_trips_lists(ranks):
    assert parse_rank_spec(",".join(map(str, ranks))) == sorted(set(ranks))


def test_check_rank_message_names_the_fix():
    with pytest.raises(
        ValueError, match=r"rank must be between 1 and 512 for a 768x512 image; got 0\."
    ):
        check_rank(0, 512, shape=(512, 768))
    with pytest.raises(TypeError):
        check_rank(True, 5)


def test_as_image_array_dtypes():
    assert as_image_array(np.zeros((3, 3), np.float32)).dtype == np.float32
    assert as_image_array(np.zeros((3, 3), np.float16)).dtype == np.float32
    assert as_image_array(np.full((3, 3), 65535, np.uint16)).max() == 1.0
    assert as_image_array(np.zeros((3, 3, 1))).shape == (3, 3)
    with pytest.raises(ValueError, match="signed integer"):
        as_image_array(np.zeros((3, 3), np.int16))
    with pytest.raises(ValueError, match="shape"):
        as_image_array(np.zeros((3, 3, 2)))
    with pytest.raises(TypeError):
        as_image_array("image.png")
