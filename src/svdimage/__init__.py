"""svdimage: compress and explore images with truncated SVD.

The public API, re-exported from the modules that define it::

    image = load_image("photo.jpg")            # float32 in [0, 1]
    svd = decompose(image)                     # one SVD, every rank
    approx = svd.reconstruct(50)               # rank-50 image
    svd.relative_error()                       # error for every rank (Eckart-Young)
    save_image("rank50.png", approx)           # clipped, atomic, no clobber

Modules, one concept each: :mod:`~svdimage.io`, :mod:`~svdimage.decomposition`,
:mod:`~svdimage.image_svd`, :mod:`~svdimage.svd_kernels`,
:mod:`~svdimage.randomized`, :mod:`~svdimage.metrics`, :mod:`~svdimage.sweep`,
:mod:`~svdimage.ranks` (choosing a rank: ``criteria``, ``growth``, ``selection``,
``storage``, ``displayed_quality``),
:mod:`~svdimage.denoising`, :mod:`~svdimage.codec`, :mod:`~svdimage.visualization`,
:mod:`~svdimage.animation`, :mod:`~svdimage.explorer` and :mod:`~svdimage.batch`
(datasets on Dask). Each is imported on first use (``svdimage.batch``,
``svdimage.decompose``), so that ``import svdimage`` loads none of SciPy,
scikit-image, matplotlib, Dask or pandas until a name that needs them is used.
"""

import lazy_loader as _lazy

# Names are imported on first use (SPEC 1, as scikit-image does), so that a command that
# needs only a few modules (``svdimage decompress``, ``--help``) does not load SciPy,
# scikit-image and matplotlib; ``from svdimage import decompose`` works as before. The
# names (modules and the public API) are those of __init__.pyi.
_lazy_getattr, _, _names = _lazy.attach_stub(__name__, __file__)


def __getattr__(name: str) -> object:
    if name == "__version__":  # the version lives in pyproject.toml only
        from importlib import metadata

        try:
            version = metadata.version("svdimage")
        except metadata.PackageNotFoundError:  # pragma: no cover - a source tree
            version = "0+unknown"
        globals()["__version__"] = version
        return version
    return _lazy_getattr(name)


def __dir__() -> list[str]:
    return sorted({*_names, "__version__"})


#: What ``from svdimage import *`` brings: the API, not the modules.
__all__ = [
    "FormatError",
    "ImageSVD",
    "__version__",
    "add_noise",
    "decompose",
    "denoise",
    "explore",
    "load_image",
    "open_image",
    "metrics",
    "randomized_svd",
    "save_image",
]
