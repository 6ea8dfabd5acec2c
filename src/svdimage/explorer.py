"""An interactive explorer of an image's SVD: one self-contained HTML page.

:func:`explore` resizes the image to the display size and computes, in Python,
everything the page needs about that *displayed* image: its exact SVD, every
rank's factors (quantized and Rice-coded), the exact error and energy of every
rank, PSNR and SSIM on a grid of ranks (the numbers ``svdimage sweep`` reports
for the displayed image), real ``.svdz`` sizes and Pillow JPEGs at the same
bytes on a coarser grid, and the ranks that :func:`svdimage.ranks.criteria.recommend`'s
targets pick. The page rebuilds the rank-``k`` image (the best of that rank
[1]_) in the browser by adding
or subtracting rank-1 terms as ``k`` moves. It loads nothing from anywhere:
its script, style, data and images are inline, and a Content-Security-Policy
forbids every request.

Why the displayed image's own SVD: the page offers every rank of what it
shows, and every number on it is about what it shows. A busy photo whose
every rank would not fit the file budget is shown smaller (its factors cost
about the same bits per pixel), never with fewer ranks.

Embedded data (``<script type="application/json" id="svdimage-data">``;
documented for users in ``docs/explorer.md``):

- ``factors``: for each component ``i`` (rank-major) and channel ``c``, the
  ``M_d`` entries of ``sqrt(s_i) u_i`` then the ``N_d`` entries of
  ``sqrt(s_i) v_i``, each vector quantized with its own float32 step
  (``uStep``, ``vStep``: ``(K, C)``) to integers, zigzagged (``0, -1, 1, -2 ->
  0, 1, 2, 3``) and Rice-coded with its own parameter (``uRice``, ``vRice``:
  ``(K, C)`` bytes) into one bit stream, most significant bit first: a value
  ``z`` is ``z >> r`` ones, a zero and the ``r`` low bits of ``z``; a quotient
  of 24 or more is 24 ones and ``z`` in 24 bits. The steps give every
  component the same share of the quantization noise, which adds
  ``QUANTIZATION_RMS_LEVELS`` grey levels RMS at the highest rank and less at
  every lower one: precision falls with ``s_i``.
- ``original``: the display-size original, 8-bit, as lossless WebP (PNG when
  Pillow lacks WebP) when that takes at most an eighth of the budget, else a
  quality-95 JPEG.
- numbers: ``relativeError``/``energy``/``sigma`` for ranks 1..K, the PSNR/SSIM
  grid, the storage grid, recommendations and the play schedule.

References
----------
.. [1] C. Eckart and G. Young, "The approximation of one matrix by another of
   lower rank", Psychometrika 1(3), 1936.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, codec, metrics
from svdimage._fileutil import atomic_path
from svdimage._validation import as_image_array, check_rank, is_chunked
from svdimage.animation import default_animation_ranks
from svdimage.decomposition import decompose
from svdimage.image_svd import ImageSVD
from svdimage.io import to_uint8
from svdimage.ranks.criteria import parse_criterion, resolve_criterion
from svdimage.ranks.displayed_quality import reference_image
from svdimage.ranks.selection import MeasurementCache
from svdimage.ranks.storage import sizes_of, svdz_bytes
from svdimage.sweep import measure_ranks

__all__ = [
    "Explorer",
    "explore",
    "blank_page",
    "resize_matrix",
    "DEFAULT_MAX_SIDE",
    "PAGE_TARGETS",
]

#: Longest side of the display image.
DEFAULT_MAX_SIDE = 1024

#: The targets marked on the page's curves (label, criterion text), as ``choose`` reads them.
PAGE_TARGETS = (
    ("knee", "knee"),
    ("energy 99%", "energy=0.99"),
    ("PSNR 35 dB", "psnr=35"),
    ("SSIM 0.95", "ssim=0.95"),
)

#: RMS display error, in grey levels, that the factors' quantization may add.
QUANTIZATION_RMS_LEVELS = 0.3

_FORMAT_VERSION = 2


@dataclass(frozen=True)
class Explorer:
    """The explorer page of one decomposition: save it, or show it in a notebook.

    Create it with :func:`explore`.

    Attributes
    ----------
    data : dict
        Everything the page embeds (JSON-compatible; see the module docstring).
    title : str
        The page's title.
    """

    data: dict[str, Any]
    title: str

    @property
    def max_rank(self) -> int:
        """The slider's largest rank: the number of embedded components (0 for a
        :func:`blank_page`)."""
        return int(self.data.get("maxRank", 0))

    def to_html(self) -> str:
        """The page, as one self-contained HTML document."""
        page = resources.files("svdimage").joinpath("_explorer_page")
        template = page.joinpath("explorer.html").read_text(encoding="utf-8")
        payload = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
        # Inside <script> only "</" and "<!--" matter; escaping every <, > and &
        # keeps any text (a file name with "</script>" in it) inert.
        payload = payload.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        values = {
            "TITLE": html.escape(self.title),
            "CSS": page.joinpath("explorer.css").read_text(encoding="utf-8"),
            "SCRIPT": page.joinpath("explorer.js").read_text(encoding="utf-8"),
            "WORKER": page.joinpath("explorer_worker.js").read_text(encoding="utf-8"),
            "DATA": payload,
        }
        # One pass over the template: what is put in is never searched again, so a title
        # such as "{{SCRIPT}}.png" stays text.
        return re.sub(
            r"\{\{(TITLE|CSS|SCRIPT|WORKER|DATA)\}\}", lambda found: values[found[1]], template
        )

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the page to ``path`` atomically; never overwrite without ``force``."""
        target = Path(path)
        with atomic_path(target, force=force) as temporary:
            temporary.write_text(self.to_html(), encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        """The page inline in Jupyter, sandboxed in an ``<iframe srcdoc>``."""
        height = 560 + min(int(self.data["height"]), 640)
        return (
            f'<iframe title="{html.escape(self.title)}" sandbox="allow-scripts" '
            f'style="width:100%;height:{height}px;border:0" '
            f'srcdoc="{html.escape(self.to_html(), quote=True)}"></iframe>'
        )

    def state(self, rank: int) -> dict[str, Any]:
        """The numbers the page shows at ``rank`` (its ``svdimage.state()``).

        PSNR, SSIM and ``.svdz`` bytes come from the nearest rank of their grid
        (ties go to the lower rank); ``psnrRank`` and ``svdzRank`` name it.
        """
        d = self.data
        k = check_rank(rank, self.max_rank)
        quality_at = _nearest(d["quality"]["ranks"], k)
        storage = d["storage"]
        storage_at = _nearest(storage["ranks"], k) if storage["ranks"] else None
        return {
            "rank": k,
            "maxRank": self.max_rank,
            "relativeError": d["relativeError"][k - 1],
            "energy": d["energy"][k - 1],
            "psnr": None if quality_at is None else d["quality"]["psnr"][quality_at],
            "ssim": None if quality_at is None else d["quality"]["ssim"][quality_at],
            "psnrRank": None if quality_at is None else d["quality"]["ranks"][quality_at],
            "storedValues": k * d["storedValuesPerRank"],
            "float32Bytes": 4 * k * d["storedValuesPerRank"],
            "svdzBytes": None if storage_at is None else storage["svdzBytes"][storage_at],
            "svdzRank": None if storage_at is None else storage["ranks"][storage_at],
        }


def _nearest(ranks: Sequence[int], k: int) -> int | None:
    if not ranks:
        return None
    return int(np.argmin([abs(r - k) + (0.5 if r > k else 0.0) for r in ranks]))


def resize_matrix(n: int, size: int) -> np.ndarray:
    """The ``(size, n)`` box-filter resampling matrix of a downscale (``size <= n``).

    ``resize_matrix(M, m) @ plane @ resize_matrix(N, n).T`` resizes an
    ``(M, N)`` plane to ``(m, n)`` exactly as Pillow's ``Image.resize((n, m),
    Image.Resampling.BOX)`` does: output pixel ``i`` is the mean of the input
    pixels whose centres fall in its footprint ``(i, i + 1] * n / size`` (Pillow's ``box_filter``).

    >>> resize_matrix(4, 2)
    array([[0.5, 0.5, 0. , 0. ],
           [0. , 0. , 0.5, 0.5]])
    """
    if not 1 <= size <= n:
        raise ValueError(f"resize_matrix downscales: need 1 <= size <= n; got {size} and {n}.")
    scale = n / size
    R = np.zeros((size, n))
    for i in range(size):
        centre = (i + 0.5) * scale
        first = max(int(centre - 0.5 * scale + 0.5), 0)
        stop = min(int(centre + 0.5 * scale + 0.5), n)
        x = (np.arange(first, stop) - centre + 0.5) / scale  # Pillow's box(x): -0.5 < x <= 0.5
        R[i, first:stop] = (x > -0.5) & (x <= 0.5)
        R[i] /= R[i].sum()
    return R


def explore(
    image_or_svd: ArrayLike | ImageSVD,
    *,
    image: ArrayLike | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_rank: int | None = None,
    storage: bool = True,
    title: str = "svdimage explorer",
    rng: int | np.random.Generator | None = 0,
    step: Callable[[str], AbstractContextManager[Any]] | None = None,
) -> Explorer:
    """Build the interactive explorer of an image's truncated SVD.

    Parameters
    ----------
    image_or_svd : (M, N[, C]) array_like or ImageSVD
        An image in [0, 1] (decomposed here), or a decomposition. A Dask
        array (an image read out of core, :func:`svdimage.open_image`) is
        averaged over blocks in one pass first: the page explores that
        display image, as it does for any photo.
    image : (M, N[, C]) array_like, optional
        The original, when ``image_or_svd`` is a decomposition. Without it a
        complete decomposition rebuilds the original, and a truncated one its
        rank-K image, which the page then explores (and says so).
    max_side : int, optional
        Longest side of the display image (the original is never enlarged).
        The page holds every rank of the display image within the file budget
        (about three quality-90 JPEGs of it plus 1 MB): a busy photo whose every
        rank would not fit gets a smaller display image (down to
        ``MIN_DISPLAY_SIDE``), never fewer ranks.
    max_rank : int, optional
        Components to embed (the slider's range), at most the display image's
        rank; then the display image keeps ``max_side`` whatever the budget.
    storage : bool, optional
        Measure real ``.svdz`` sizes and JPEGs at equal bytes (a few encodes
        of the full image; the slow part on big photos).
    title : str, optional
        The page's title (escaped; any text is safe).
    rng : int or numpy.random.Generator, optional
        Seed for a randomized decomposition.
    step : callable, optional
        ``step(name)`` returns a context manager wrapped around each slow stage.
        By default each stage is reported as a step of :mod:`svdimage._progress`
        (the CLI's progress display).

    Returns
    -------
    Explorer
        ``.save(path)`` writes the page; in Jupyter it shows itself.

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage import explore
    >>> x = np.outer(np.hanning(40), np.hanning(30)).astype(np.float32)
    >>> page = explore(x, storage=False)
    >>> page.max_rank, page.state(1)["relativeError"] < 1e-6
    (30, True)
    """

    if int(max_side) < 1:
        raise ValueError(f"max_side must be at least 1; got {max_side}.")
    if isinstance(image_or_svd, ImageSVD):
        given = image_or_svd
        if image is not None:
            reference = reference_image(given, image)
        elif given.has_vectors:
            # A complete decomposition rebuilds the image; a truncated one, the rank-K image
            # it holds: that is what the page then explores.
            reference = np.clip(given.reconstruct(given.max_rank), 0, 1)
        else:
            raise ValueError(
                "the explorer needs the image or singular vectors; pass image= or decompose "
                "with compute_vectors=True."
            )
        truncated_source = image is None and not given.is_complete
    elif is_chunked(image_or_svd):
        reference = _block_averaged(image_or_svd, int(max_side), step)
        truncated_source = False
    else:
        reference = as_image_array(image_or_svd)
        truncated_source = False
    source = tuple(int(n) for n in getattr(image_or_svd, "shape", reference.shape)[:2])
    M, N = reference.shape[:2]
    stage = _progress.task if step is None else step
    side = min(max(M, N), int(max_side))
    while True:
        Md, Nd = _display_shape(M, N, side)
        display = _resize(reference, Md, Nd).astype(np.float32)
        budget = _file_budget(display)
        # The original view takes at most an eighth of the budget or a quality-95 JPEG
        # (_original_image); the rest, less the page itself, is for the factors.
        original_room = max(len(_jpeg(display, 95)) * 4 // 3, budget // 8)
        factor_budget = (budget - 120_000 - original_room) * 3 // 4
        with stage(f"computing the SVD of the {Nd}x{Md} display image"):
            svd = decompose(display, method="exact", rng=rng)
        k = svd.full_rank if max_rank is None else min(check_rank(max_rank, min(M, N)), Md, Nd)
        k = min(k, svd.max_rank)
        factors = _encode_factors(svd, k)
        fits = len(factors["data"]) <= factor_budget
        if fits or max_rank is not None or side <= MIN_DISPLAY_SIDE:
            break
        # Every rank of a smaller display image: about the same bits per pixel (a little
        # fewer per pixel, as the finest detail goes: the margin makes one more try rare).
        shrink = 0.98 * math.sqrt(factor_budget / len(factors["data"]))
        side = max(MIN_DISPLAY_SIDE, int(side * shrink))
    original_blob, original_mime = _original_image(display, budget)

    channels = svd.n_channels
    Ud, Vd = factors["Ud"], factors["Vd"]
    data: dict[str, Any] = {
        "version": _FORMAT_VERSION,
        "title": title,
        "width": Nd,
        "height": Md,
        "channels": channels,
        "sourceWidth": source[1],
        "sourceHeight": source[0],
        "sourceTruncated": bool(truncated_source),
        "maxRank": k,
        "fullRank": svd.full_rank,
        "method": svd.method,
        "storedValuesPerRank": channels * (Md + Nd + 1),
        "sigma": [_floats(row) for row in factors["sigma"]],
        "relativeError": _floats(np.atleast_1d(svd.relative_error())[:k]),
        "energy": _floats(np.atleast_1d(svd.energy())[:k]),
        "factors": {
            "encoding": "rice",
            "data": _b64(factors["data"]),
            "uStep": _b64(factors["u_step"].astype("<f4").tobytes()),
            "vStep": _b64(factors["v_step"].astype("<f4").tobytes()),
            "uRice": _b64(factors["u_rice"].astype(np.uint8).tobytes()),
            "vRice": _b64(factors["v_rice"].astype(np.uint8).tobytes()),
        },
        "original": {"mime": original_mime, "data": _b64(original_blob)},
        "schedule": _play_schedule(k),
        "colormap": _b64(_colormap()),
        "browserMaxSide": DEFAULT_MAX_SIDE,
        "diffScale": _difference_scale(display, Ud, Vd),
    }
    truncated = svd.truncated(k)
    with stage("measuring PSNR and SSIM on a grid of ranks"):
        data["quality"] = _quality_grid(display, truncated)
    with stage("encoding real .svdz files and JPEGs of the same size"):
        data["storage"] = _storage_grid(display, truncated) if storage else _no_storage()
    data["targets"] = _targets(truncated, display)
    return Explorer(data=data, title=title)


def _block_averaged(
    image: Any, max_side: int, step: Callable[[str], AbstractContextManager[Any]] | None
) -> np.ndarray:
    """A Dask image (read out of core) averaged over the largest square blocks that leave
    its longest side at least ``max_side`` (one pass, :func:`svdimage.chunked_io.block_mean`):
    the image the display image is then resized from, as from a loaded one."""
    from svdimage.chunked_io import block_mean, unit_range

    M, N = (int(n) for n in image.shape[:2])
    factor = max(1, max(M, N) // max(1, max_side))
    stage = _progress.task if step is None else step
    with stage(f"averaging the {N}x{M} image over {factor}x{factor} blocks"):
        small = block_mean(unit_range(image), factor)
    return np.clip(small, 0.0, 1.0)


def blank_page(*, title: str = "svdimage explorer") -> Explorer:
    """The explorer page without a photo: it asks for one (drag and drop, or a file
    picker) and computes its SVD in the browser.

    Any page does this too (a photo dropped on a built page replaces it); this one starts
    empty, so one HTML file serves every photo, with no Python on the reader's machine.
    The browser resizes a photo to at most :data:`DEFAULT_MAX_SIDE` pixels, computes a
    randomized SVD for a first view, then the exact one (the eigendecomposition of the
    Gram matrix, in a Web Worker, so the page never freezes), and the PSNR and SSIM marks.

    Examples
    --------
    >>> page = blank_page()
    >>> page.data["blank"], "svdimage-worker" in page.to_html()
    (True, True)
    """
    data = {
        "version": _FORMAT_VERSION,
        "title": title,
        "blank": True,
        "browserMaxSide": DEFAULT_MAX_SIDE,
        "colormap": _b64(_colormap()),
    }
    return Explorer(data=data, title=title)


#: The display image is never made smaller than this to fit every rank in the budget.
MIN_DISPLAY_SIDE = 128


def _display_shape(M: int, N: int, side: int) -> tuple[int, int]:
    """``(M_d, N_d)``: the longest side at most ``side``, never enlarged."""
    scale = min(1.0, side / max(M, N))
    return max(1, round(M * scale)), max(1, round(N * scale))


#: Rice coding of the factors: a quotient of ESCAPE or more is written as ESCAPE ones and
#: the zigzagged value in RAW_BITS bits.
_RICE_ESCAPE, _RICE_RAW_BITS = 24, 24


def _encode_factors(svd: ImageSVD, k: int) -> dict[str, Any]:
    """The first ``k`` components of the display image's SVD, quantized and Rice-coded.

    Each vector of ``sqrt(s_i) u_i`` and ``sqrt(s_i) v_i`` gets its own step, chosen so
    that every component adds the same share of the quantization noise: a pixel of the
    rank-``k`` image moves by ``QUANTIZATION_RMS_LEVELS`` grey levels RMS in all, and by
    less at every lower rank (equal noise per component minimizes the bits for that total:
    precision falls with ``s_i``). The integers are zigzagged and Rice-coded, with the
    parameter that makes each vector shortest.
    """
    U, s, Vt = svd.stacked_factors()
    C = U.shape[0]
    root = np.sqrt(np.maximum(s[:, :k], 0)).astype(np.float64)
    Ud = U[:, :, :k].astype(np.float64) * root[:, None, :]  # (C, M_d, k)
    Vd = np.swapaxes(Vt[:, :k], 1, 2).astype(np.float64) * root[:, None, :]  # (C, N_d, k)
    noise = 12 * (QUANTIZATION_RMS_LEVELS / 255) ** 2 / (2 * k)  # per vector and component
    u_ms = np.maximum((Vd**2).mean(axis=1).T, 1e-30)  # (k, C): what u's noise is scaled by
    v_ms = np.maximum((Ud**2).mean(axis=1).T, 1e-30)
    limit = (1 << (_RICE_RAW_BITS - 1)) - 1
    u_step = np.maximum(np.sqrt(noise / u_ms), np.abs(Ud).max(axis=1).T / limit)
    v_step = np.maximum(np.sqrt(noise / v_ms), np.abs(Vd).max(axis=1).T / limit)
    Md, Nd = Ud.shape[1], Vd.shape[1]
    values = np.empty((k, C, Md + Nd), dtype=np.int64)
    values[:, :, :Md] = np.rint(Ud.transpose(2, 0, 1) / u_step[:, :, None])
    values[:, :, Md:] = np.rint(Vd.transpose(2, 0, 1) / v_step[:, :, None])
    zigzag = ((values << 1) ^ (values >> 63)).reshape(-1)
    lengths = np.tile([Md, Nd], k * C)
    parameters = _rice_parameters(zigzag, lengths)
    data = _rice_encode(zigzag, np.repeat(parameters, lengths))
    Ud_q = (values[:, :, :Md] * u_step[:, :, None]).transpose(1, 2, 0)
    Vd_q = (values[:, :, Md:] * v_step[:, :, None]).transpose(1, 2, 0)
    return {
        "data": data,
        "u_step": u_step,
        "v_step": v_step,
        "u_rice": parameters[0::2].reshape(k, C),
        "v_rice": parameters[1::2].reshape(k, C),
        "Ud": Ud_q,
        "Vd": Vd_q,
        "sigma": s[:, :k],
    }


def _rice_parameters(z: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each run of ``lengths`` values of ``z``, the Rice parameter that codes it in the
    fewest bits."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    best = np.full(lengths.size, np.iinfo(np.int64).max)
    chosen = np.zeros(lengths.size, dtype=np.int64)
    for k in range(20):
        q = z >> k
        bits = np.where(q >= _RICE_ESCAPE, _RICE_ESCAPE + _RICE_RAW_BITS, q + 1 + k)
        total = np.add.reduceat(bits, starts)
        better = total < best
        best[better], chosen[better] = total[better], k
    return chosen


def _rice_encode(z: np.ndarray, k: np.ndarray) -> bytes:
    """Rice codes of ``z`` with parameters ``k`` (per value), most significant bit first: a
    quotient ``q = z >> k`` of ``q`` ones and a zero, then the ``k`` low bits; a quotient of
    ``_RICE_ESCAPE`` or more as that many ones and ``z`` in ``_RICE_RAW_BITS`` bits."""
    q = z >> k
    escaped = q >= _RICE_ESCAPE
    ones = np.where(escaped, _RICE_ESCAPE, q)
    low_bits = np.where(escaped, _RICE_RAW_BITS, k)
    low = np.where(escaped, z, z & ((1 << k) - 1))
    ends = np.cumsum(ones + (~escaped) + low_bits)
    starts = ends - (ones + (~escaped) + low_bits)
    total = int(ends[-1]) if z.size else 0
    bits = np.zeros(total, dtype=np.uint8)
    count = int(ones.sum())
    if count:
        offsets = np.arange(count) - np.repeat(np.cumsum(ones) - ones, ones)
        bits[np.repeat(starts, ones) + offsets] = 1
    body = starts + ones + (~escaped)
    for j in range(int(low_bits.max(initial=0))):
        has = low_bits > j
        bits[body[has] + j] = (low[has] >> (low_bits[has] - 1 - j)) & 1
    return np.packbits(bits).tobytes()


# -- the pieces ------------------------------------------------------------------
def _resize(image: np.ndarray, Md: int, Nd: int) -> np.ndarray:
    """``image`` resized to ``(M_d, N_d)`` by Pillow's box filter, each channel in float32
    (the operator of :func:`resize_matrix`, without the dense matrices' cost)."""
    from PIL import Image

    if image.shape[:2] == (Md, Nd):
        return np.asarray(image, dtype=np.float32)
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32)).resize(
                    (Nd, Md), Image.Resampling.BOX
                )
            )
            for c in range(planes.shape[2])
        ],
        axis=-1,
    )
    return out[..., 0] if image.ndim == 2 else out


def _file_budget(original: np.ndarray) -> int:
    """Three quality-90 JPEGs of the display image plus 1 MB (issue #13's bound)."""
    return 3 * len(_jpeg(original, 90)) + 1_000_000


def _original_image(image: np.ndarray, budget: int) -> tuple[bytes, str]:
    """The display-size original: lossless (WebP, else PNG) when that takes at most an
    eighth of the file budget (the rest is for every rank's factors), otherwise a
    quality-95 JPEG (the page says which)."""
    from PIL import Image, features

    pixels = Image.fromarray(to_uint8(image))
    buffer = io.BytesIO()
    if features.check("webp"):
        pixels.save(buffer, format="WEBP", lossless=True, quality=50, method=2, exact=True)
        mime = "image/webp"
    else:
        pixels.save(buffer, format="PNG", optimize=True)
        mime = "image/png"
    if buffer.tell() * 4 // 3 <= budget // 8:
        return buffer.getvalue(), mime
    return _jpeg(image, 95), "image/jpeg"


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    """A Pillow JPEG of ``image`` (4:4:4 chroma at quality 95 and above)."""
    from PIL import Image

    buffer = io.BytesIO()
    extra = {"subsampling": 0} if quality >= 95 else {}
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=quality, **extra)
    return buffer.getvalue()


def _difference_scale(original: np.ndarray, Ud: np.ndarray, Vd: np.ndarray) -> float:
    """Top of the difference colour bar, in [0, 1]: the 99th percentile of the error at
    rank 10 (or the highest rank held), so that the map still shows detail at middle ranks."""
    k = min(10, Ud.shape[2])
    approx = np.moveaxis(Ud[:, :, :k] @ np.swapaxes(Vd[:, :, :k], 1, 2), 0, -1)
    planes = original[..., None] if original.ndim == 2 else original
    error = np.abs(np.clip(approx, 0, 1) - planes).mean(axis=-1)
    return float(min(1.0, max(1 / 255, np.percentile(error, 99))))


def _grid(max_rank: int, points: int) -> list[int]:
    """About ``points`` ranks from 1 to ``max_rank``, evenly spaced in log rank (every rank
    when there are fewer)."""
    spaced = np.geomspace(1, max_rank, num=max(2, points))
    return sorted({int(round(r)) for r in spaced} | {max_rank})


def _quality_grid(reference: np.ndarray, svd: ImageSVD) -> dict[str, list[Any]]:
    """PSNR and SSIM as ``svdimage sweep`` measures them, on a grid of ranks."""

    # About 10 s of metrics on a 12 MP colour photo, 2 s on a 1 MP one.
    points = int(np.clip(80e6 / reference.size, 16, 80))
    rows = measure_ranks(reference, svd, _grid(svd.max_rank, points))
    return {
        "ranks": [r.rank for r in rows],
        "psnr": [_number(r.psnr) for r in rows],
        "ssim": [_number(r.ssim) for r in rows],
    }


def _no_storage() -> dict[str, list[Any]]:
    return {
        "ranks": [],
        "svdzBytes": [],
        "svdzPsnr": [],
        "jpegQuality": [],
        "jpegBytes": [],
        "jpegPsnr": [],
    }


def _storage_grid(reference: np.ndarray, svd: ImageSVD) -> dict[str, list[Any]]:
    """Real ``.svdz`` bytes, the PSNR each file decodes to, and the best Pillow JPEG at no
    more bytes, on a coarse grid."""

    # Each point is a real encode of the full image (seconds on a 12 MP photo).
    points = int(np.clip(20e6 / reference.size, 5, 16))
    grid = _grid(svd.max_rank, points)
    out = _no_storage()
    sizes = sizes_of(svd, reference)  # the codec's factorizations, shared by the grid
    # The files' own PSNRs (8-bit decodes), mostly below the ranks': beside the JPEG's, they
    # compare like with like. Coding them here also sizes them.
    out["svdzPsnr"] = [_number(psnr) for psnr in sizes.decoded_psnrs(grid)]
    for k in grid:
        nbytes = svdz_bytes(svd, k, sizes=sizes)
        jpeg = codec.jpeg_at_size(reference, nbytes)
        out["ranks"].append(k)
        out["svdzBytes"].append(nbytes)
        out["jpegQuality"].append(None if jpeg is None else jpeg.quality)
        out["jpegBytes"].append(None if jpeg is None else jpeg.nbytes)
        psnr = None if jpeg is None else metrics.peak_signal_noise_ratio(reference, jpeg.image)
        out["jpegPsnr"].append(_number(psnr))
    return out


def _targets(svd: ImageSVD, reference: np.ndarray | None) -> list[dict[str, Any]]:
    """The ranks that ``choose`` gives for :data:`PAGE_TARGETS` (``None``: beyond the page)."""

    out = []
    cache = MeasurementCache(reference)  # PSNR and SSIM targets share their measurements
    for label, text in PAGE_TARGETS:
        criterion = parse_criterion(text)
        rank = None
        needs = criterion.kind.needs
        if not (needs == "displayed images" and reference is None) and not (
            needs == "whole spectrum" and not svd.is_complete
        ):
            try:
                rank = resolve_criterion(svd, criterion, cache=cache)
            except ValueError:
                rank = None
        out.append({"label": label, "criterion": text, "rank": rank})
    return out


def _play_schedule(max_rank: int) -> list[int]:
    return [int(k) for k in default_animation_ranks(max_rank, last=max_rank)]


def _colormap() -> bytes:
    from matplotlib import colormaps

    return to_uint8(colormaps["magma"](np.linspace(0, 1, 256))[:, :3]).tobytes()


def _floats(values: np.ndarray) -> list[float]:
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64)]


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
