"""PSNR and SSIM of the displayed rank-``k`` approximations of a decomposition.

:class:`DisplayedQuality` measures them, clipped to [0, 1] as shown and saved,
a band of rows at a time, each rank once, and searches the smallest rank that
reaches a target; :func:`svdimage.ranks.selection.rank_for_psnr` and
:func:`~svdimage.ranks.selection.rank_for_ssim` are its one-question forms.
:func:`reference_image` is the original an SVD is compared with.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress, metrics
from svdimage._linalg import map_on_cores
from svdimage._search import smallest_reaching, smallest_true
from svdimage._validation import as_image_array, is_chunked
from svdimage.image_svd import ImageSVD

__all__ = ["DisplayedQuality", "reference_image"]


class DisplayedQuality:
    """PSNR and SSIM of an SVD's displayed rank-``k`` approximations, each measured once.

    The approximations are clipped to [0, 1], as shown and saved. One object
    answers several targets from shared measurements (the recommendation table
    asks for three PSNRs and two SSIMs, then shows both at every chosen rank),
    and the original's SSIM statistics are computed once. An approximation is
    built and measured ``BAND`` rows at a time, never whole, and measuring
    its SSIM measures its PSNR too.

    Parameters
    ----------
    svd : ImageSVD
    image : array_like, optional
        The original; needed only when the SVD is truncated (a complete SVD
        rebuilds it).
    ssim_reference : metrics.SSIMReference, optional
        The original's SSIM statistics, if already computed (for another
        decomposition of the same image).
    keep_statistics : bool, optional
        Hold the original's SSIM statistics (twice the image's memory) between
        SSIM measurements, so that each filters only the approximation. Off by
        default: recomputing them costs about a fifth more per measurement
        (0.1 s on a 12 MP colour photo), which one search of a few measurements
        does not repay. Settable on the object (:func:`svdimage.ranks.criteria.recommend`
        turns it on for its many measurements).

    Examples
    --------
    >>> import numpy as np
    >>> from svdimage.decomposition import decompose
    >>> image = np.random.default_rng(0).random((64, 48))
    >>> quality = DisplayedQuality(decompose(image))
    >>> k, m = quality.rank_for_psnr(30), quality.rank_for_ssim(0.9)
    >>> quality.psnr(k) >= 30 > quality.psnr(k - 1), quality.ssim(m) >= 0.9 > quality.ssim(m - 1)
    (True, True)
    """

    #: Rows of an approximation built at a time: a few MiB of a 12 MP photo.
    BAND = 128

    def __init__(
        self,
        svd: ImageSVD,
        image: ArrayLike | None = None,
        *,
        ssim_reference: metrics.SSIMReference | None = None,
        keep_statistics: bool = False,
    ) -> None:
        self.svd = svd
        self.reference = reference_image(svd, image)
        self.keep_statistics = keep_statistics
        self._ssim_reference = ssim_reference
        self._psnr: dict[int, float] = {}
        self._ssim: dict[int, float] = {}
        self._search: _progress.Task | None = None  # counts the measurements of a search

    def psnr(self, rank: int) -> float:
        """PSNR (dB) of the displayed rank-``rank`` image."""
        if rank not in self._psnr:
            self._measure(rank, ssim=False)
        return self._psnr[rank]

    def ssim(self, rank: int) -> float:
        """SSIM of the displayed rank-``rank`` image (scikit-image's definition)."""
        if rank not in self._ssim:
            self._measure(rank, ssim=True)
        return self._ssim[rank]

    def _measure(self, rank: int, *, ssim: bool) -> None:
        """PSNR, and SSIM if asked, of rank ``rank``, built and measured ``BAND`` rows at a
        time (:meth:`ImageSVD.reconstruct_rows`) on every core: a band per core is held,
        never the image."""
        reference = self.reference
        if is_chunked(reference):
            self._measure_chunked(rank, ssim=ssim)
            return
        M = reference.shape[0]
        planes_of = _planes if reference.ndim == 3 else (lambda a: a[None])
        squared: dict[int, float] = {}  # first row -> sum of squared differences

        def rows(start: int, stop: int) -> np.ndarray:
            band = planes_of(self.svd.reconstruct_rows(rank, start, stop))
            # SSIM's bands overlap by the window: each counts its rows up to the next one's.
            own = stop if stop == M else min(stop, start + self.BAND)
            new = band[:, : own - start] - planes_of(reference[start:own])
            squared[start] = float(np.sum(np.square(new, out=new), dtype=np.float64))
            return band

        held = self._ssim_reference
        if ssim and (held is None or (self.keep_statistics and not held.keeps_statistics)):
            held = self._ssim_reference = metrics.SSIMReference(  # raises if too small
                reference, keep_statistics=self.keep_statistics
            )
        if ssim and held is not None and not held.too_small:
            self._ssim[rank] = held.of_rows(rows, band=self.BAND)
        else:
            if ssim:
                self._ssim[rank] = float("nan")

            def count(first: int) -> None:  # the band itself is dropped at once
                rows(first, min(first + self.BAND, M))

            map_on_cores(count, range(0, M, self.BAND))
        total = sum(squared[first] for first in sorted(squared))
        self._psnr[rank] = metrics.psnr_of_mse(total / reference.size)
        if self._search is not None:
            self._search.advance()

    def _measure_chunked(self, rank: int, *, ssim: bool) -> None:
        """:meth:`_measure` against an original read out of core (a Dask array): one pass
        over it, each band of its rows (with the ``SSIM_WINDOW - 1`` rows after it) a task
        that builds the same rows of the approximation and returns their sums
        (:func:`_band_sums`), so that only bands are ever in memory."""
        from dask.base import compute
        from dask.delayed import delayed

        reference: Any = self.reference
        svd = self.svd
        M, N = (int(n) for n in reference.shape[:2])
        window = metrics.SSIM_WINDOW
        ssim = ssim and min(M, N) >= window
        U, s, Vt = svd.stacked_factors()
        left = U[:, :, :rank] * s[:, None, :rank]
        right = delayed(np.ascontiguousarray(Vt[:, :rank]), pure=True)  # sent once
        bounds = np.cumsum([0, *reference.chunks[0]])
        tasks = []
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            end = min(stop + window - 1, M) if ssim else stop
            tasks.append(
                delayed(_band_sums)(
                    reference[start:end], left[:, start:end], right, stop - start, ssim
                )
            )
        done = compute(*tasks)
        squared = sum(d[0] for d in done)
        self._psnr[rank] = metrics.psnr_of_mse(squared / (M * N * svd.n_channels))
        if ssim:
            windows = svd.n_channels * (M - window + 1) * (N - window + 1)
            self._ssim[rank] = float(sum(d[1] for d in done) / windows)
        elif min(M, N) < window:
            self._ssim[rank] = float("nan")
        if self._search is not None:
            self._search.advance()

    def release_statistics(self) -> None:
        """Drop the original's SSIM statistics (twice the image's memory) once no more SSIM
        is to be measured: what was measured is kept; a later SSIM recomputes them."""
        if self._ssim_reference is not None and not self._ssim_reference.too_small:
            self._ssim_reference = None

    @contextlib.contextmanager
    def _searching(self, target: str) -> Iterator[None]:
        with _progress.task(f"searching the rank for {target}", unit="ranks measured") as step:
            self._search = step
            try:
                yield
            finally:
                self._search = None

    def rank_for_psnr(self, db: float) -> int:
        """Smallest rank reaching ``db`` dB: see :func:`svdimage.ranks.selection.rank_for_psnr`."""
        svd, target = self.svd, f"{db:g} dB of PSNR"
        mse = (np.asarray(svd.relative_error()) ** 2) * svd.squared_norm / self.reference.size
        with np.errstate(divide="ignore"):
            bound = np.where(mse > 0, -10 * np.log10(np.maximum(mse, 1e-300)), np.inf)
        reaching = np.flatnonzero(bound >= db)
        upper = int(reaching[0]) + 1 if reaching.size else 0  # 0: no bound below max_rank
        with self._searching(target):
            return _bisect(
                lambda k: self.psnr(k) >= db,
                upper or svd.max_rank,
                target,
                svd,
                near_upper=bool(upper),
            )

    def rank_for_ssim(self, value: float) -> int:
        """Smallest rank reaching SSIM ``value``: see
        :func:`svdimage.ranks.selection.rank_for_ssim`."""
        if not -1 < value <= 1:
            raise ValueError(f"SSIM target must be in (-1, 1]; got {value}.")
        svd, upper = self.svd, self.svd.max_rank
        with self._searching(f"SSIM {value:g}"):
            if self.ssim(upper) < value:
                more = "" if svd.is_complete else " (the SVD is truncated)"
                raise ValueError(f"no rank up to {upper} reaches an SSIM of {value:g}{more}.")
            k = smallest_reaching(self.ssim, value, 1, upper)
            while k > 1 and self.ssim(k - 1) >= value:  # measured already; walk down if not
                k -= 1
        return k


def _band_sums(
    original: np.ndarray, left: np.ndarray, right: np.ndarray, own: int, ssim: bool
) -> tuple[float, float]:
    """:func:`svdimage.metrics.band_sums` of a band of the original ``(m, N[, C])`` and the
    same rows of the displayed approximation ``clip(left @ right)`` (``left`` is
    ``(C, m, k)``, ``U_k diag(s_k)``; ``right`` is ``(C, k, N)``), built here."""
    y = np.matmul(left, right).astype(np.float32, copy=False)
    np.clip(y, 0.0, 1.0, out=y)
    approx = y[0] if original.ndim == 2 else np.moveaxis(y, 0, -1)
    return metrics.band_sums(original, approx, own, ssim=ssim)


def _planes(image: np.ndarray) -> np.ndarray:
    """(M, N, C) as channel planes (C, M, N): a view."""
    return np.moveaxis(image, -1, 0)


def reference_image(svd: ImageSVD, image: ArrayLike | None) -> np.ndarray:
    """The original image: ``image`` checked against ``svd``'s shape, or, for a complete
    SVD, its exact reconstruction (unclipped)."""
    if image is not None and is_chunked(image):  # read out of core, band by band
        from svdimage.chunked_io import unit_range

        lazy = unit_range(image)
        if len(lazy.shape) == 3 and lazy.shape[2] == 1:
            lazy = lazy[:, :, 0]
        if tuple(lazy.shape) != svd.shape:
            raise ValueError(
                f"image shape {tuple(lazy.shape)} does not match the decomposition's {svd.shape}."
            )
        return lazy
    if image is not None:
        reference = as_image_array(image)
        if reference.shape != svd.shape:
            raise ValueError(
                f"image shape {reference.shape} does not match the decomposition's {svd.shape}."
            )
        return reference
    if not svd.is_complete:
        raise ValueError("a truncated SVD cannot rebuild the original: pass image=.")
    return svd.reconstruct(clip=False)


def _bisect(
    meets: Callable[[int], bool],
    upper: int,
    target: str,
    svd: ImageSVD,
    *,
    near_upper: bool = False,
) -> int:
    """Smallest rank that ``meets`` the target, at most ``upper`` if it does.

    With ``near_upper`` (``upper`` is a bound the answer usually sits just
    below, as the singular values' PSNR bound), the search first steps down
    from ``upper`` by 1, 2, 4, ... ranks and bisects only the last step, so
    that a handful of ranks near the answer are measured instead of the whole
    range's midpoints. Both give the same rank for a monotone target.
    """
    test = functools.lru_cache(maxsize=None)(meets)
    if not test(upper):
        if upper == svd.max_rank:
            more = "" if svd.is_complete else " (the SVD is truncated)"
            raise ValueError(f"no rank up to {svd.max_rank} reaches {target}{more}.")
        upper = svd.max_rank
        if not test(upper):
            raise ValueError(f"no rank up to {svd.max_rank} reaches {target}.")
    low = 1
    if near_upper:
        step = 1
        while upper - step >= 1:
            if not test(upper - step):
                low = upper - step + 1
                break
            upper -= step
            step *= 2
    high = smallest_true(test, low, upper)
    while high > 1 and test(high - 1):  # verify the neighbour; walk down if not monotone
        high -= 1
    return high
