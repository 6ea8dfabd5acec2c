"""Real SVD compression: the ``.svdz`` codec.

The public face of the codec; each stage lives in its own private module:

==================  ==========================================================
``_format``         the container: magic, versions, header, checksums (spec)
``_planes``         colour conversion, chroma subsampling, tiles, deblocking
``_encode``         options, rate control, files: the encoder's front door
``_tiles``          format 1.1: the SVD of each tile, or the global SVD
``_patches``        format 2: the SVD of each plane's patch matrix, quantized
``_patch_payload``  format 2: the payload's layout, contexts and decoding
``_context``        format 2: context-modelled range coding (constriction)
``_entropy``        format 1: varints and LZMA2
``_rate``           rate control: the quality for a PSNR or a byte budget
``_decode``         decoding and ``inspect`` (the same checks)
``_compare``        compress to a file and compare with JPEG at equal bytes
==================  ==========================================================

The designs are described in :mod:`svdimage.codec._patches` and
:mod:`svdimage.codec._patch_payload` (format 2, the default) and
:mod:`svdimage.codec._tiles` (format 1), the file format in
:mod:`svdimage.codec._format` and ``docs/format.md``.

Examples
--------
>>> import numpy as np
>>> from svdimage import codec
>>> image = np.outer(np.linspace(0, 1, 32), np.linspace(1, 0, 48))
>>> data = codec.encode(image, quality=90)
>>> codec.decode(data).shape
(32, 48)
"""

from typing import TYPE_CHECKING

import lazy_loader as _lazy

from svdimage.codec._format import VERSION, FormatError

# Imported on first use: decoding needs neither the encoder nor SciPy (see svdimage/__init__).
__getattr__, _lazy_dir, _names = _lazy.attach(
    __name__,
    submod_attrs={
        "_compare": [
            "CompressionReport",
            "Measured",
            "compress",
            "jpeg_at_size",
            "pillow_at_size",
            "pillow_at_sizes",
        ],
        "_decode": ["FileInfo", "decode", "inspect", "load"],
        "_encode": [
            "CHROMA_STEP_FACTOR",
            "DC_STEP_DIVISOR",
            "RANK_RULE",
            "encode",
            "encode_for_sizes",
            "quality_to_step",
            "save",
        ],
        "_planes": ["DEBLOCK_STRENGTH"],
    },
)


def __dir__() -> list[str]:
    return sorted({*_lazy_dir(), "VERSION", "FormatError"})


if TYPE_CHECKING:
    from svdimage.codec._compare import (
        CompressionReport,
        Measured,
        compress,
        jpeg_at_size,
        pillow_at_size,
        pillow_at_sizes,
    )
    from svdimage.codec._decode import FileInfo, decode, inspect, load
    from svdimage.codec._encode import (
        CHROMA_STEP_FACTOR,
        DC_STEP_DIVISOR,
        RANK_RULE,
        encode,
        encode_for_sizes,
        quality_to_step,
        save,
    )
    from svdimage.codec._planes import DEBLOCK_STRENGTH

__all__ = [
    "encode",
    "encode_for_sizes",
    "decode",
    "save",
    "load",
    "inspect",
    "compress",
    "jpeg_at_size",
    "pillow_at_size",
    "pillow_at_sizes",
    "quality_to_step",
    "FormatError",
    "FileInfo",
    "CompressionReport",
    "Measured",
    "VERSION",
    "RANK_RULE",
    "CHROMA_STEP_FACTOR",
    "DC_STEP_DIVISOR",
    "DEBLOCK_STRENGTH",
]
