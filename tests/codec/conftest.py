"""Fixtures shared by the codec's tests: a small gray crop and a format-1 file of it."""

import numpy as np
import pytest

from svdimage.codec import (
    encode,
)


@pytest.fixture(scope="module")
def small_gray(camera):
    return np.ascontiguousarray(camera[100:164, 200:280])


@pytest.fixture(scope="module")
def small_file(small_gray):
    """A format-1 (per-tile SVD) file: the malformed-file tests below edit its header."""
    return encode(small_gray, quality=80, version=1)
