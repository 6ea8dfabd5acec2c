"""Shared fixtures: real photos bundled with scikit-image, small random images."""

import numpy as np
import pytest
import skimage.data
from hypothesis import settings

from svdimage import decompose, load_image

# Timing varies on shared CI machines; hypothesis deadlines are about speed, not truth.
settings.register_profile("svdimage", deadline=None, max_examples=40)
settings.load_profile("svdimage")


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """scikit-image's 512x512 gray 'camera' photo as float32 in [0, 1]."""
    return load_image(skimage.data.camera())


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's 512x512 RGB 'astronaut' photo as float32 in [0, 1]."""
    return load_image(skimage.data.astronaut())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def camera_svd(camera):
    """The complete SVD of ``camera``."""
    return decompose(camera)


@pytest.fixture(scope="session")
def small_color(astronaut):
    """A 128x128 colour crop of ``astronaut`` and its complete SVD."""
    image = astronaut[::4, ::4].copy()
    return image, decompose(image)


@pytest.fixture(scope="module")
def medium_photo(astronaut):
    """A 900x1200 colour photo: above the complete-SVD crossover, below a second."""
    import skimage.transform

    big = skimage.transform.resize(astronaut, (900, 1200), order=1)
    return np.clip(big, 0, 1).astype(np.float32)
