"""The bytes of an image's global ``.svdz`` files at many ranks, sharing the work.

Package-internal; :class:`GlobalSizes` is re-exported by :mod:`svdimage.codec`.
What a rank costs to store as a real file, the question
:mod:`svdimage.ranks.storage` and the rank criteria ask of the codec through this
class alone (they never pack files themselves).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from svdimage import _progress
from svdimage._linalg import map_on_cores
from svdimage._validation import as_image_array, check_rank
from svdimage.codec._decode import decode
from svdimage.codec._tiles import Trials
from svdimage.io import from_uint8
from svdimage.metrics import psnr_of_mse

__all__ = ["GlobalSizes"]


class GlobalSizes:
    """Bytes of the real global ``.svdz`` files of an image's ranks, sharing the codec's
    work between ranks (what :func:`svdimage.ranks.storage.svdz_bytes` measures).

    The size at rank ``k`` is ``len(codec.encode(image, rank=k, tile=None))``,
    the file ``svdimage compress --rank k --global`` writes. The codec
    factors the image's own planes (YCbCr, chroma at half resolution) once
    per power of two of the rank (``_tiles.plane_factors``);
    each size then costs a quantization and the range coder of format 3.0
    (about 0.3 s for a 1.4 MB file of a 12 MP photo). Sizes are the same
    whatever ranks were asked before.

    Parameters
    ----------
    image : (M, N) or (M, N, 3) array_like
    """

    def __init__(self, image: ArrayLike) -> None:
        array = as_image_array(image)
        if array.ndim == 2:
            array = array.copy()  # the gray plane is kept: not the caller's
        self.shape = array.shape
        self.full_rank = min(array.shape[:2])
        self._image = array  # what the files' PSNRs are measured against
        self._trials = Trials(array, max_rank=None, tile=None, color="ycbcr", chroma="420")
        self._sizes: dict[int, int] = {}
        self._psnrs: dict[int, float] = {}
        self._estimates: dict[int, int] = {}

    def __call__(self, rank: int) -> int:
        """The file's bytes at ``rank``."""
        k = check_rank(rank, self.full_rank, shape=self.shape)
        if k not in self._sizes:
            self._sizes[k] = len(self._trials.at_rank(k))
        return self._sizes[k]

    def many(self, ranks: Sequence[int]) -> list[int]:
        """The files' bytes at several ranks. The factorizations come first, here (one
        per power of two of the ranks); then each file is quantized and coded, one at a
        time, in parallel threads. The coding is one counted step (``coding N .svdz
        files``), advanced by each file's rank: the work of a file grows with it."""

        trials = self._trials
        checked, done = self._each_file(
            ranks, self._sizes, "coding", lambda k: len(trials.at_rank(k))
        )
        self._sizes.update(done)
        return [self._sizes[k] for k in checked]

    def decoded_psnrs(self, ranks: Sequence[int]) -> list[float]:
        """The PSNR (dB) of each rank's file, decoded to the 8-bit pixels ``decompress``
        writes, against the image. A file's factors are quantized (the coarsest step that
        keeps the rank's components), so it mostly decodes to less than the rank-``k``
        reconstruction: astronaut's rank-124 file, 49 KB, to 30.2 dB where the
        reconstruction has 35.0. At the lowest ranks it can decode to more, as it codes
        each plane's mean apart from its ``k`` components (a 12 MP photo's rank 1: 19.0
        against 18.6 dB). Each file is coded (its size kept, as :meth:`many`), decoded and
        measured in parallel threads, after the factorizations."""

        def measure(k: int) -> tuple[int, float]:
            data = self._trials.at_rank(k)
            pixels = decode(data, max_pixels=None, dtype=np.uint8)
            squared = 0.0
            for start in range(0, pixels.shape[0], 256):  # no float copy of the whole image
                d = self._image[start : start + 256] - from_uint8(pixels[start : start + 256])
                squared += float(np.sum(np.square(d, out=d), dtype=np.float64))
            return len(data), psnr_of_mse(squared / pixels.size)

        checked, done = self._each_file(ranks, self._psnrs, "coding and decoding", measure)
        for k, (nbytes, psnr) in done.items():
            self._sizes[k], self._psnrs[k] = nbytes, psnr
        return [self._psnrs[k] for k in checked]

    def _each_file(
        self, ranks: Sequence[int], held: dict[int, Any], verb: str, work: Callable[[int], Any]
    ) -> tuple[list[int], dict[int, Any]]:
        """The checked ``ranks``, and ``work(k)`` for each of them not in ``held``: every
        plane's factors first (computed and cached before the threads), then the files in
        parallel threads, as one counted step (``VERB N .svdz files``) advanced by each
        file's rank."""
        checked = [check_rank(k, self.full_rank, shape=self.shape) for k in ranks]
        todo = [k for k in dict.fromkeys(checked) if k not in held]
        for k in todo:
            for index in range(len(self._trials.planes)):
                self._trials.factors(index, k)

        def run(k: int) -> Any:
            result = work(k)
            step.advance(k)  # from a worker thread: the task holds its listener
            return result

        files = f"{len(todo)} .svdz file" + ("s" if len(todo) != 1 else "")
        with _progress.task(f"{verb} {files}", sum(todo), unit="components") as step:
            done = dict(zip(todo, map_on_cores(run, todo)))
        return checked, done

    def estimate(self, rank: int) -> int:
        """About the file's bytes at ``rank``, for searches, without a factorization of its
        own: the file coded from a larger factorization already computed (within a
        fraction of a percent of the real size); past the largest, extrapolated from the
        two largest powers of two held, as a power of the rank (exponent 1 to 2.5;
        1.5 with one); the real size when none is held."""
        k = check_rank(rank, self.full_rank, shape=self.shape)
        if k in self._sizes:
            return self._sizes[k]
        if k not in self._estimates:
            trials = self._trials
            if trials.covers(k):
                with trials.reusing():
                    self._estimates[k] = len(trials.at_rank(k))
            else:
                held = [r for r in (1 << e for e in range(4, 17)) if r < k and trials.covers(r)]
                if not held:
                    return self(k)
                top = held[-1]
                exponent = 1.5
                if len(held) > 1:
                    rise = math.log(self.estimate(top) / self.estimate(held[-2])) / math.log(2)
                    exponent = min(max(rise / math.log2(top / held[-2]), 1.0), 2.5)
                self._estimates[k] = round(self.estimate(top) * (k / top) ** exponent)
        return self._estimates[k]
