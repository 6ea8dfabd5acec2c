"""Rate control: the quality that meets a PSNR target or fits a byte budget.

Package-internal. Rate control picks the quantizer step (through the integer
quality 1-100, monotone in rate and distortion), never the target itself:
:func:`search_quality` bisects it; the JPEG comparison uses the same search
over Pillow's quality. :func:`svdimage._search.qualities_for_budgets` answers
several byte budgets from one shared set of trial encodes (a survey asks for four).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from svdimage._search import largest_true, smallest_true
from svdimage.codec._decode import decode
from svdimage.metrics import peak_signal_noise_ratio

__all__ = ["search_quality", "quality_for_psnr"]


def search_quality(accept: Callable[[int], bool], *, prefer: str, target: str) -> int:
    """Bisect the integer quality 1..100 for a monotone ``accept``.

    ``prefer='low'``: the smallest quality that meets a quality target;
    ``'high'``: the largest quality that fits a budget. Raises ``ValueError``
    naming ``target`` when no quality qualifies.
    """
    if prefer == "low":
        if not accept(100):
            raise ValueError(f"even quality 100 does not reach {target}.")
        return smallest_true(accept, 1, 100)
    if not accept(1):
        raise ValueError(f"even quality 1 does not fit {target}.")
    return largest_true(accept, 1, 100)


def quality_for_psnr(image: np.ndarray, encode: Callable[[float], bytes], psnr: float) -> int:
    """Smallest quality whose decoded file reaches ``psnr`` dB against ``image``."""

    def good(quality: int) -> bool:
        decoded = decode(encode(quality), max_pixels=None)
        return peak_signal_noise_ratio(image, decoded) >= psnr

    return search_quality(good, prefer="low", target=f"{psnr:g} dB")
