"""Real SVD compression: the ``.svdz`` codec.

The public face of the codec; each stage lives in its own private module:

===================  ==========================================================
``_format``          the container: magic, versions, header, checksums (spec)
``_planes``          colour conversion, chroma subsampling, tiles, deblocking
``_encode``          options, rate control, files: the encoder's front door
``_tiles``           the SVD of each tile (format 1.1) or of each plane (global)
``_global``          format 3.0: the global SVD's payload, range-coded
``_patches``         format 2: the SVD of each plane's patch matrix, quantized
``_patch_payload``   format 2: the payload's layout, writing and decoding
``_patch_contexts``  format 2: each integer's context, and its cost in bits
``_prediction``      format 2.3: half of the patches predicted from the other half
``_context``         formats 2 and 3: context-modelled range coding (constriction)
``_entropy``         format 1: varints and LZMA2
``_rate``            rate control: the quality for a PSNR or a byte budget
``_sizes``           the bytes of an image's global (3.0) files at many ranks
``_tiled``           formats 2.1/2.4: tiles of images bigger than memory, streamed
``_decode``          decoding and ``inspect`` (the same checks)
``_compare``         compress to a file and compare with JPEG at equal bytes
===================  ==========================================================

The designs are described in :mod:`svdimage.codec._patches` and
:mod:`svdimage.codec._patch_payload` with :mod:`svdimage.codec._patch_contexts`
(format 2, the default) and
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

import lazy_loader as _lazy

# Imported on first use: decoding needs neither the encoder nor SciPy (see svdimage/__init__).
# The names are those of __init__.pyi.
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
