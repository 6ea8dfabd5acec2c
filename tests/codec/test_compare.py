"""Compression as a user asks for it (svdimage.codec._compare): JPEG/WebP at equal bytes."""

import io

import numpy as np
import pytest
import skimage.metrics

from svdimage.codec import (
    decode,
    jpeg_at_size,
)


@pytest.mark.parametrize("format", ["JPEG", "WEBP"])
def test_pillow_at_size_is_the_best_quality_that_fits(camera, astronaut, format):
    from PIL import Image

    from svdimage.codec import pillow_at_size

    for image in (camera, astronaut):
        found = pillow_at_size(image, 15_000, format=format)
        quality, data, decoded = found.quality, found.data, found.image
        assert len(data) <= 15_000 and decoded.shape == image.shape
        pixels = Image.fromarray(np.rint(image * 255).astype(np.uint8))
        options = {"optimize": True} if format == "JPEG" else {}
        buffer = io.BytesIO()
        pixels.save(buffer, format=format, quality=quality + 1, **options)
        assert len(buffer.getvalue()) > 15_000  # one step better no longer fits
    assert pillow_at_size(camera, 50, format=format) is None
    with pytest.raises(ValueError, match="format"):
        pillow_at_size(camera, 1000, format="PNG")


def test_jpeg_at_size_respects_the_budget(camera):
    found = jpeg_at_size(camera, 30_000)
    quality, data, decoded = found.quality, found.data, found.image
    assert len(data) <= 30_000 and 1 <= quality <= 95 and decoded.shape == camera.shape
    assert jpeg_at_size(camera, 100) is None


# -- the compression report is honest (issue 10: speed changes no result) ---------------------
@pytest.mark.parametrize("which", ["gray", "color"])
def test_compress_report_equals_independent_measurements(tmp_path, camera, astronaut, which):
    """Every number of compress's report, recomputed from the written file and from Pillow:
    the .svdz row from the file decoded to 8-bit pixels and scikit-image's PSNR and SSIM;
    the JPEG row from Pillow at the reported quality (the largest whose file fits the .svdz
    bytes)."""
    from PIL import Image

    from svdimage.codec import compress

    image = camera[::2, ::2] if which == "gray" else astronaut[::2, ::2]
    path = tmp_path / "out.svdz"
    report = compress(path, image, bpp=1.0)
    data = path.read_bytes()
    assert report.svdz.nbytes == len(data) <= image.shape[0] * image.shape[1] / 8
    assert report.svdz.bits_per_pixel == 8 * len(data) / (image.shape[0] * image.shape[1])
    channel = {} if which == "gray" else {"channel_axis": -1}

    def measured(approx):
        return (
            skimage.metrics.peak_signal_noise_ratio(image, approx, data_range=1.0),
            skimage.metrics.structural_similarity(image, approx, data_range=1.0, **channel),
        )

    # The 8-bit pixels the file decodes to, as the JPEG's are (rounded here, not by to_uint8).
    psnr, ssim = measured(np.rint(np.clip(decode(data), 0, 1) * 255) / 255)
    assert report.svdz.psnr == pytest.approx(psnr, abs=1e-6)
    assert report.svdz.ssim == pytest.approx(ssim, abs=1e-5)
    jpeg = next(row for row in report.rows if row.name == "JPEG")
    pixels = Image.fromarray(np.rint(image * 255).astype(np.uint8))

    def jpeg_at(quality):
        buffer = io.BytesIO()
        pixels.save(buffer, format="JPEG", quality=quality, optimize=True)
        return buffer.getvalue()

    q = report.jpeg_quality
    assert len(jpeg_at(q)) == jpeg.nbytes <= len(data)
    assert q == 100 or len(jpeg_at(q + 1)) > len(data)
    decoded = np.asarray(Image.open(io.BytesIO(jpeg_at(q))), dtype=np.float64) / 255
    psnr, ssim = measured(decoded)
    assert jpeg.psnr == pytest.approx(psnr, abs=1e-6)
    assert jpeg.ssim == pytest.approx(ssim, abs=1e-5)
