"""The package's namespace: every public name resolves, and nothing heavy loads early."""

import importlib
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

import svdimage

HEAVY = ("scipy", "skimage", "matplotlib", "dask", "pandas", "svdimage.codec._encode")


def test_importing_the_package_and_the_cli_loads_no_heavy_library():
    """``svdimage decompress`` and ``--help`` start without SciPy, scikit-image,
    matplotlib, Dask or pandas: they load on the first name that needs them."""
    code = textwrap.dedent(
        f"""
        import sys, svdimage, svdimage.cli, svdimage.codec
        from svdimage.codec import FormatError, load
        loaded = {{name for name in sys.modules if name.startswith({HEAVY!r})}}
        print(sorted(loaded))
        svdimage.decompose([[1.0, 0.0], [0.0, 2.0]])
        print("scipy" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"  # the first SVD loads what it needs


@pytest.mark.parametrize("package", ["svdimage", "svdimage.codec"])
def test_every_public_name_is_the_one_its_module_defines(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert name in dir(module)
        if name == "__version__":
            continue
        home = importlib.import_module(value.__module__) if hasattr(value, "__module__") else None
        if home is not None and callable(value):
            assert getattr(home, name) is value, name


def test_from_imports_and_modules_resolve():
    from svdimage import ImageSVD, decompose, metrics
    from svdimage.codec import encode

    assert decompose is importlib.import_module("svdimage.decomposition").decompose
    assert ImageSVD is importlib.import_module("svdimage.image_svd").ImageSVD
    assert metrics is importlib.import_module("svdimage.metrics")
    assert encode is importlib.import_module("svdimage.codec._encode").encode
    assert svdimage.batch is importlib.import_module("svdimage.batch")
    with pytest.raises(AttributeError):
        svdimage.no_such_name  # noqa: B018


def test_version_is_the_installed_distribution_s():
    assert svdimage.__version__ == metadata.version("svdimage")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("criteria", "criteria"),
        ("growth", "growth"),
        ("rank_selection", "selection"),
        ("storage", "storage"),
        ("displayed_quality", "displayed_quality"),
    ],
)
def test_rank_modules_moved_into_one_package_and_old_paths_warn(old, new):
    """The rank code lives in svdimage.ranks; the old module paths still import (the same
    module) until 0.3, with a DeprecationWarning naming the new one."""
    code = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("error")
        try:
            import svdimage.{old}
        except DeprecationWarning as warning:
            print(warning)
        warnings.simplefilter("ignore")
        import svdimage.{old} as old, svdimage.ranks.{new} as new
        print(old is new)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert f"use svdimage.ranks.{new}" in out[0] and out[1] == "True"
