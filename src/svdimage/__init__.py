"""svdimage: compress and explore images with truncated SVD.

The public API, re-exported from the modules that define it::

    image = load_image("photo.jpg")            # float32 in [0, 1]
    svd = decompose(image)                     # one SVD, every rank
    approx = svd.reconstruct(50)               # rank-50 image
    svd.relative_error()                       # error for every rank (Eckart-Young)
    save_image("rank50.png", approx)           # clipped, atomic, no clobber

Modules, one concept each: :mod:`~svdimage.io`, :mod:`~svdimage.decomposition`,
:mod:`~svdimage.image_svd`,
:mod:`~svdimage.randomized`, :mod:`~svdimage.metrics`, :mod:`~svdimage.sweep`,
:mod:`~svdimage.rank_selection`, :mod:`~svdimage.displayed_quality`,
:mod:`~svdimage.storage`, :mod:`~svdimage.criteria`, :mod:`~svdimage.growth`,
:mod:`~svdimage.denoising`, :mod:`~svdimage.codec`, :mod:`~svdimage.visualization`,
:mod:`~svdimage.animation`, :mod:`~svdimage.explorer` and :mod:`~svdimage.batch`
(datasets on Dask; imported on first use, as ``svdimage.batch``, so that
``import svdimage`` does not load Dask and pandas).
"""

from importlib import metadata as _metadata

from svdimage import metrics
from svdimage.codec import FormatError
from svdimage.decomposition import decompose
from svdimage.denoising import add_noise, denoise
from svdimage.explorer import explore
from svdimage.image_svd import ImageSVD
from svdimage.io import load_image, save_image
from svdimage.randomized import randomized_svd


def __getattr__(name: str) -> object:
    if name == "batch":
        import importlib

        return importlib.import_module("svdimage.batch")
    raise AttributeError(f"module 'svdimage' has no attribute {name!r}")


try:  # the version lives in pyproject.toml only
    __version__ = _metadata.version("svdimage")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "FormatError",
    "ImageSVD",
    "__version__",
    "add_noise",
    "decompose",
    "denoise",
    "explore",
    "load_image",
    "metrics",
    "randomized_svd",
    "save_image",
]
