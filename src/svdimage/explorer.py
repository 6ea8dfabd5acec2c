"""An interactive explorer of a truncated SVD: one self-contained HTML page.

:func:`explore` computes, in Python, everything the page needs: the σ-scaled
factors resized to the display resolution, the exact error and energy of
every rank, PSNR and SSIM on a grid of ranks (the numbers ``svdimage sweep``
reports), real ``.svdz`` sizes and Pillow JPEGs at the same bytes on a
coarser grid, and the ranks that :func:`svdimage.ranks.criteria.recommend`'s
targets pick. The page rebuilds the rank-``k`` image in the browser by adding
or subtracting rank-1 terms as ``k`` moves. It loads nothing from anywhere:
its script, style, data and images are inline, and a Content-Security-Policy
forbids every request.

Why the factors and not images: resizing is linear, so the display-size
best rank-``k`` image [1]_ is ``(R_M U_k) diag(s_k) (R_N V_k)^T``, with ``R_M`` and
``R_N`` the box-filter (area-averaging) resizing matrices -- the same
operator as Pillow's ``Image.resize(..., Image.BOX)``. Storing
``(M_d + N_d)`` numbers per component instead of an image per rank keeps the
file small.

Embedded data (``<script type="application/json" id="svdimage-data">``;
documented for users in ``docs/explorer.md``):

- ``factors``: for each component ``i`` (rank-major) and channel ``c``, the
  ``M_d`` entries of ``sqrt(s_i) R_M u_i`` then the ``N_d`` entries of
  ``sqrt(s_i) R_N v_i``, quantized to integers with a float32 step per
  vector, zigzagged to unsigned 16-bit (``0, -1, 1, -2 -> 0, 1, 2, 3``) and
  stored per component as the low bytes then the high bytes (the high bytes
  are almost all zero), zlib-compressed as one stream (decoded by the
  browser's ``DecompressionStream('deflate')``). The step is ``max(delta,
  max|x| / 32767)``: one absolute step ``delta`` chosen so that quantization
  moves display pixels by about 0.3 of a grey level (RMS) at the highest rank.
- ``original``: the display-size original, 8-bit, as lossless WebP (PNG when
  Pillow lacks WebP).
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
import zlib
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
from svdimage._validation import as_image_array, check_rank
from svdimage.animation import default_animation_ranks
from svdimage.decomposition import decompose
from svdimage.image_svd import ImageSVD
from svdimage.io import to_uint8
from svdimage.ranks.criteria import parse_criterion, resolve_criterion
from svdimage.ranks.displayed_quality import reference_image
from svdimage.ranks.selection import MeasurementCache
from svdimage.ranks.storage import sizes_of, svdz_bytes
from svdimage.sweep import measure_ranks

__all__ = ["Explorer", "explore", "resize_matrix", "DEFAULT_MAX_SIDE", "PAGE_TARGETS"]

#: Longest side of the display image.
DEFAULT_MAX_SIDE = 1024

#: The targets marked on the page's curves (label, criterion text), as ``choose`` reads them.
PAGE_TARGETS = (
    ("knee", "knee"),
    ("energy 99%", "energy=0.99"),
    ("PSNR 35 dB", "psnr=35"),
    ("SSIM 0.95", "ssim=0.95"),
)

#: Most components embedded by default; fewer when the file budget says so.
DEFAULT_RANK_CAP = 500

#: RMS display error, in grey levels, that the factors' quantization may add.
QUANTIZATION_RMS_LEVELS = 0.3

_FORMAT_VERSION = 1

#: Largest quantized magnitude (int16 codes).
_CODE_MAX = 32767


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
        """The slider's largest rank: the number of embedded components."""
        return int(self.data["maxRank"])

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
            "DATA": payload,
        }
        # One pass over the template: what is put in is never searched again, so a title
        # such as "{{SCRIPT}}.png" stays text.
        return re.sub(r"\{\{(TITLE|CSS|SCRIPT|DATA)\}\}", lambda found: values[found[1]], template)

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
        An image in [0, 1] (decomposed here), or a decomposition.
    image : (M, N[, C]) array_like, optional
        The original, when ``image_or_svd`` is a decomposition: the reference for
        PSNR, SSIM, the difference view and storage. Without it a complete SVD
        rebuilds the original; a truncated one shows errors and energy only.
    max_side : int, optional
        Longest side of the display image (the original is never enlarged).
    max_rank : int, optional
        Components to embed (the slider's range). Default: as many as the file
        budget allows -- about three quality-90 JPEGs of the display image plus
        1 MB -- up to 500 and the image's rank.
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
        svd = image_or_svd
        if not svd.has_vectors:
            raise ValueError(
                "the explorer needs singular vectors; decompose with compute_vectors=True."
            )
        reference = reference_image(svd, image) if image is not None or svd.is_complete else None
    else:
        reference = as_image_array(image_or_svd)
        svd = None
    shape = svd.shape if svd is not None else reference.shape  # type: ignore[union-attr]
    M, N = shape[:2]
    scale = min(1.0, int(max_side) / max(M, N))
    Md, Nd = max(1, round(M * scale)), max(1, round(N * scale))
    R_M, R_N = resize_matrix(M, Md), resize_matrix(N, Nd)

    original = original_blob = None
    original_mime = ""
    budget = 2_000_000  # no original: no JPEG to measure the budget by
    if reference is not None:
        original = _resize(reference, R_M, R_N)
        budget = _file_budget(original)
        original_blob, original_mime = _original_image(original, budget)
    factor_budget = (budget - 120_000 - len(original_blob or b"") * 4 // 3) * 3 // 4
    full = min(M, N)
    if max_rank is None:
        # About 4 bits per quantized value; the exact count trims the rank below.
        per_rank = (svd.n_channels if svd is not None else _channels(shape)) * (Md + Nd) / 2
        cap = min(full, DEFAULT_RANK_CAP, max(8, int(1.5 * factor_budget / per_rank)))
    else:
        cap = check_rank(max_rank, full, shape=shape)
    stage = _progress.task if step is None else step
    if svd is None:
        assert reference is not None  # given an image, not an SVD
        with stage(f"computing the top {cap} singular values and vectors"):
            svd = decompose(reference, rank=cap, rng=rng)
    cap = min(cap, svd.max_rank)

    U, s, Vt = svd.stacked_factors()
    root = np.sqrt(np.maximum(s[:, :cap], 0)).astype(np.float64)
    Ud = (R_M @ U[:, :, :cap]) * root[:, None, :]  # (C, M_d, K)
    Vd = np.swapaxes(Vt[:, :cap] @ R_N.T, 1, 2) * root[:, None, :]  # (C, N_d, K)
    codes, u_step, v_step = _quantize(Ud, Vd)
    k = cap if max_rank is not None else _ranks_within(codes, factor_budget)
    payload = zlib.compress(codes[:k].tobytes(), 9)

    channels = svd.n_channels
    data: dict[str, Any] = {
        "version": _FORMAT_VERSION,
        "title": title,
        "width": Nd,
        "height": Md,
        "channels": channels,
        "sourceWidth": N,
        "sourceHeight": M,
        "maxRank": k,
        "fullRank": svd.full_rank,
        "method": svd.method,
        "storedValuesPerRank": channels * (M + N + 1),
        "sigma": [_floats(row) for row in s[:, :k]],
        "relativeError": _floats(np.atleast_1d(svd.relative_error())[:k]),
        "energy": _floats(np.atleast_1d(svd.energy())[:k]),
        "factors": {
            "encoding": "zlib-zigzag-int16-byteplanes",
            "data": _b64(payload),
            "uStep": _b64(u_step[:k].astype("<f4").tobytes()),
            "vStep": _b64(v_step[:k].astype("<f4").tobytes()),
        },
        "original": None
        if original_blob is None
        else {"mime": original_mime, "data": _b64(original_blob)},
        "schedule": _play_schedule(k),
        "colormap": _b64(_colormap()),
    }
    truncated = svd.truncated(k)
    if reference is not None:
        assert original is not None  # resized from the reference above
        data["diffScale"] = _difference_scale(original, Ud, Vd)
        with stage("measuring PSNR and SSIM on a grid of ranks"):
            data["quality"] = _quality_grid(reference, truncated)
        with stage("encoding real .svdz files and JPEGs of the same size"):
            data["storage"] = _storage_grid(reference, truncated) if storage else _no_storage()
    else:
        data["diffScale"] = 1.0
        data["quality"] = {"ranks": [], "psnr": [], "ssim": []}
        data["storage"] = _no_storage()
    data["targets"] = _targets(truncated, reference)
    return Explorer(data=data, title=title)


# -- the pieces ------------------------------------------------------------------
def _resize(image: np.ndarray, R_M: np.ndarray, R_N: np.ndarray) -> np.ndarray:
    """``R_M @ plane @ R_N.T`` for each channel, by Pillow's box filter (the same operator,
    without the dense matrices' cost on a 12 MP photo)."""
    from PIL import Image

    size = (R_N.shape[0], R_M.shape[0])
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32)).resize(
                    size, Image.Resampling.BOX
                )
            )
            for c in range(planes.shape[2])
        ],
        axis=-1,
    )
    return out[..., 0] if image.ndim == 2 else out


def _quantize(Ud: np.ndarray, Vd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes ``(K, 2, C (M_d + N_d))`` (per component: the low bytes, then the high bytes of
    zigzagged int16 values) and per-vector steps ``(K, C)`` for U and V."""
    C, Md, K = Ud.shape
    Nd = Vd.shape[1]
    u_peak = np.abs(Ud).max(axis=1).T  # (K, C)
    v_peak = np.abs(Vd).max(axis=1).T
    # Quantizing x with step q adds variance q^2/12 per entry; a display pixel of
    # channel c at rank K collects sum_i q_i^2/12 (mean v_i^2 + mean u_i^2).
    u_ms = (Ud**2).mean(axis=1).T
    v_ms = (Vd**2).mean(axis=1).T
    target = (QUANTIZATION_RMS_LEVELS / 255) ** 2

    def variance(delta: float) -> float:
        qu, qv = np.maximum(delta, u_peak / _CODE_MAX), np.maximum(delta, v_peak / _CODE_MAX)
        return float(((qu**2 * v_ms + qv**2 * u_ms) / 12).sum(axis=0).max())

    lo, hi = 1e-12, 1.0
    for _ in range(60):  # bisection on log(delta)
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if variance(mid) <= target else (lo, mid)
    u_step = np.maximum(lo, u_peak / _CODE_MAX)
    v_step = np.maximum(lo, v_peak / _CODE_MAX)
    values = np.empty((K, C, Md + Nd), dtype=np.int32)
    values[:, :, :Md] = np.rint(Ud.transpose(2, 0, 1) / u_step[:, :, None])
    values[:, :, Md:] = np.rint(Vd.transpose(2, 0, 1) / v_step[:, :, None])
    np.clip(values, -_CODE_MAX, _CODE_MAX, out=values)
    # Zigzag (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...): small magnitudes have a zero high byte.
    zigzag = ((values << 1) ^ (values >> 31)).astype("<u2")
    codes = np.empty((K, 2, C * (Md + Nd)), dtype=np.uint8)
    codes[:, 0] = (zigzag & 0xFF).reshape(K, -1)
    codes[:, 1] = (zigzag >> 8).reshape(K, -1)
    return codes, u_step, v_step


def _ranks_within(codes: np.ndarray, nbytes: int) -> int:
    """The most leading components whose compressed codes fit ``nbytes`` (at least 1)."""
    compressor = zlib.compressobj(9)
    total = 0
    for k in range(codes.shape[0]):
        total += len(compressor.compress(codes[k].tobytes()))
        total += len(compressor.flush(zlib.Z_SYNC_FLUSH))
        if total > nbytes:
            return max(1, k)
    return codes.shape[0]


def _file_budget(original: np.ndarray) -> int:
    """Three quality-90 JPEGs of the display image plus 1 MB (issue #13's bound)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(to_uint8(original)).save(buffer, format="JPEG", quality=90)
    return 3 * len(buffer.getvalue()) + 1_000_000


def _channels(shape: tuple[int, ...]) -> int:
    return 1 if len(shape) == 2 else shape[2]


def _original_image(image: np.ndarray, budget: int) -> tuple[bytes, str]:
    """The display-size original: lossless (WebP, else PNG) when that takes at most a
    third of the file budget, otherwise a quality-95 JPEG (the page says which)."""
    from PIL import Image, features

    pixels = Image.fromarray(to_uint8(image))
    buffer = io.BytesIO()
    if features.check("webp"):
        pixels.save(buffer, format="WEBP", lossless=True, quality=100, method=4, exact=True)
        mime = "image/webp"
    else:
        pixels.save(buffer, format="PNG", optimize=True)
        mime = "image/png"
    if buffer.tell() * 4 // 3 <= budget // 3:
        return buffer.getvalue(), mime
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=95, subsampling=0)
    return buffer.getvalue(), "image/jpeg"


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
    return {"ranks": [], "svdzBytes": [], "jpegQuality": [], "jpegBytes": [], "jpegPsnr": []}


def _storage_grid(reference: np.ndarray, svd: ImageSVD) -> dict[str, list[Any]]:
    """Real ``.svdz`` bytes and the best Pillow JPEG at no more bytes, on a coarse grid."""

    # Each point is a real encode of the full image (seconds on a 12 MP photo).
    points = int(np.clip(20e6 / reference.size, 5, 16))
    grid = _grid(svd.max_rank, points)
    out = _no_storage()
    sizes = sizes_of(svd, reference)  # the codec's factorizations, shared by the grid
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
