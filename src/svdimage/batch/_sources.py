"""What a batch runs on: image files found in folders and globs, and URLs.

Package-internal; :func:`find_images` is re-exported by :mod:`svdimage.batch`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from svdimage.chunked_io import is_zarr_store

__all__ = ["find_images", "is_url", "output_path"]


def is_url(source: str) -> bool:
    """``http://`` or ``https://``: read by the worker that processes it."""
    return source.lower().startswith(("http://", "https://"))


def find_images(
    sources: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    missing: Literal["raise", "keep"] = "raise",
) -> list[str]:
    """Expand images, folders, globs and URLs into the list a batch processes.

    A folder is searched recursively; a file in it is kept when its extension
    is an image format's (so a corrupt or empty ``.jpg``, or a FIFO named
    ``.jpg``, becomes a failed row, not a silent gap) or when it is a regular
    file whose content Pillow recognizes (a JPEG named ``.dat``). Hidden
    files and folders (names starting with ``.``) are skipped. A glob (``*``,
    ``?``, ``[``; ``**`` for any depth) keeps the files it matches, as files
    named one by one are kept: the user chose them. URLs pass through. The
    result is in the order given, folders and globs sorted, without repeats.

    Parameters
    ----------
    sources : str, path or iterable of them
    missing : {'raise', 'keep'}, optional
        A file named one by one that does not exist raises, or is kept (a
        batch then reports it as a failed image and goes on, as for any other
        image it cannot read).

    Returns
    -------
    list of str

    Raises
    ------
    FileNotFoundError
        For a path that does not exist, a glob that matches nothing, or a
        folder that holds no image file.

    Examples
    --------
    >>> find_images(["https://example.org/a.png"])
    ['https://example.org/a.png']
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    found: dict[str, None] = {}
    for item in [str(os.fspath(source)) for source in sources]:
        if is_url(item):
            found[item] = None
        elif os.path.isdir(item) and not is_zarr_store(item):
            images = _folder_images(Path(item))
            if not images:
                raise FileNotFoundError(f"folder {item!r} holds no image files.")
            found.update(dict.fromkeys(images))
        elif os.path.exists(item):
            found[item] = None
        elif glob.has_magic(item):
            matches = sorted(
                path
                for path in glob.glob(item, recursive=True)
                if os.path.exists(path) and not os.path.isdir(path) and not _hidden(path)
            )
            if not matches:
                raise FileNotFoundError(f"no file matches {item!r}.")
            found.update(dict.fromkeys(matches))
        elif missing == "keep":
            found[item] = None
        else:
            raise FileNotFoundError(f"image file {item!r} does not exist.")
    return list(found)


def _hidden(path: str) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in Path(path).parts)


def _folder_images(folder: Path) -> list[str]:
    from PIL import Image

    extensions = set(Image.registered_extensions())
    images: list[str] = []
    for root, folders, files in os.walk(folder):
        # A Zarr array or group is one image (read whole, or out of core by the commands
        # of one image), not a folder to walk into.
        stores = sorted(n for n in folders if is_zarr_store(os.path.join(root, n)))
        images.extend(os.path.join(root, n) for n in stores if not n.startswith("."))
        folders[:] = sorted(n for n in folders if not n.startswith(".") and n not in stores)
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") or not os.path.exists(path):
                continue
            if os.path.splitext(name)[1].lower() in extensions or name.lower().endswith(".npy"):
                images.append(path)  # a FIFO or a device named .jpg: a failed row, not a gap
            elif os.path.isfile(path) and _looks_like_image(path):  # never open a FIFO
                images.append(path)
    return images


def _looks_like_image(path: str) -> bool:
    """Pillow recognizes the file's first bytes (nothing is decoded)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a huge image's bomb warning: its row will say
            with Image.open(path):
                return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False
    except Exception:  # noqa: BLE001 - a plugin choking on garbage means "not an image"
        return False


def output_path(path: str, *, roots: Iterable[str], folder: str, suffix: str) -> str:
    """Where a batch writes the output of the image at ``path`` (absolute, or a URL).

    Under one of the folders given as sources (``roots``, absolute), the
    output mirrors the image's place in it (``photos/2024/a.jpg`` ->
    ``OUT/2024/a.svdz``); elsewhere it is named after the file (or the URL's
    last segment). ``suffix`` replaces the extension (``''``: a folder).
    """
    if is_url(path):
        name = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "image"
        return os.path.join(folder, os.path.splitext(name)[0] + suffix)
    for root in roots:
        if os.path.commonpath([root, path]) == root:
            relative = os.path.relpath(path, root)
            return os.path.join(folder, os.path.splitext(relative)[0] + suffix)
    return os.path.join(folder, os.path.splitext(os.path.basename(path))[0] + suffix)
