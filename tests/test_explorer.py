"""The explorer page's data, checked in Python (the browser tests are in test_explorer_page.py)."""

import base64
import html
import io
import json
import re
import zlib

import numpy as np
import pytest
from PIL import Image

from svdimage import decompose, explore, metrics
from svdimage.explorer import resize_matrix
from svdimage.sweep import measure_ranks


def page_data(page_html: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="svdimage-data">(.*?)</script>', page_html, re.S
    )
    assert match, "no data block"
    return json.loads(match.group(1))


def display_factors(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Dequantize the embedded factors as the page does: (K, C, H) and (K, C, W)."""
    K, C, H, W = data["maxRank"], data["channels"], data["height"], data["width"]
    planes = np.frombuffer(
        zlib.decompress(base64.b64decode(data["factors"]["data"])), dtype=np.uint8
    ).reshape(K, 2, C, H + W)
    zigzag = planes[:, 0].astype(np.int64) | (planes[:, 1].astype(np.int64) << 8)
    codes = (zigzag >> 1) ^ -(zigzag & 1)
    u_step = np.frombuffer(base64.b64decode(data["factors"]["uStep"]), "<f4").reshape(K, C)
    v_step = np.frombuffer(base64.b64decode(data["factors"]["vStep"]), "<f4").reshape(K, C)
    return codes[:, :, :H] * u_step[..., None], codes[:, :, H:] * v_step[..., None]


def pillow_box(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize each channel with Pillow's box filter (the independent reference)."""
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(planes[..., c], np.float32)).resize(
                    size, Image.Resampling.BOX
                )
            )
            for c in range(planes.shape[2])
        ],
        axis=-1,
    )
    return out[..., 0] if image.ndim == 2 else out


@pytest.mark.parametrize("n, size", [(3000, 768), (37, 10), (7, 3), (999, 1), (5, 5)])
def test_resize_matrix_is_pillows_box_filter(n, size, rng):
    x = rng.random((n, 6)).astype(np.float32)
    expected = pillow_box(x, (6, size))
    np.testing.assert_allclose(resize_matrix(n, size) @ x, expected, atol=1e-6)


def test_resize_matrix_refuses_enlarging():
    with pytest.raises(ValueError, match="downscales"):
        resize_matrix(3, 4)


def test_embedded_factors_rebuild_the_resized_reconstruction(astronaut):
    image = astronaut[:300, :400]
    svd = decompose(image)
    page = explore(svd, image=image, max_side=200, storage=False)
    data = page.data
    assert (data["height"], data["width"]) == (150, 200)
    U, V = display_factors(data)
    for k in (1, 17, page.max_rank):
        built = np.einsum("kch,kcw->hwc", U[:k], V[:k])
        expected = pillow_box(svd.reconstruct(k, clip=False), (200, 150))
        error = np.sqrt(np.mean((built - expected) ** 2)) * 255
        assert error < 0.5, f"rank {k}: RMS {error:.3f} grey levels"


def test_state_equals_pythons_numbers(camera):
    svd = decompose(camera)
    page = explore(svd, image=camera, max_rank=120)
    assert page.max_rank == 120
    rows = {r.rank: r for r in measure_ranks(camera, svd, page.data["quality"]["ranks"])}
    for k in (1, 7, 45, 120):
        state = page.state(k)
        assert state["relativeError"] == pytest.approx(svd.relative_error(k), rel=1e-6)
        assert state["energy"] == pytest.approx(svd.energy(k), rel=1e-6)
        assert state["storedValues"] == svd.stored_values(k)
        assert state["float32Bytes"] == 4 * svd.stored_values(k)
        grid_rank = state["psnrRank"]
        assert abs(grid_rank - k) == min(abs(r - k) for r in rows)
        assert state["psnr"] == pytest.approx(rows[grid_rank].psnr)
        assert state["ssim"] == pytest.approx(rows[grid_rank].ssim)
    # The storage grid holds real files: decode one and check its rank-k quality.
    storage = page.data["storage"]
    assert storage["ranks"][0] == 1 and storage["ranks"][-1] == 120
    assert storage["svdzBytes"] == sorted(storage["svdzBytes"])
    # The JPEG beside each .svdz never has more bytes.
    for svdz, jpeg in zip(storage["svdzBytes"], storage["jpegBytes"]):
        assert jpeg is None or jpeg <= svdz


def test_targets_are_the_ranks_choose_gives(camera_svd, camera):
    from svdimage.criteria import parse_criterion, resolve_criterion

    page = explore(camera_svd, image=camera, max_rank=300, storage=False)
    for target in page.data["targets"]:
        expected = resolve_criterion(camera_svd, parse_criterion(target["criterion"]), image=camera)
        assert target["rank"] == (expected if expected <= 300 else None), target


def test_original_is_the_resized_image(astronaut):
    image = astronaut[::2, ::2]
    page = explore(image, max_side=100, max_rank=5, storage=False)
    blob = base64.b64decode(page.data["original"]["data"])
    with Image.open(io.BytesIO(blob)) as decoded:
        pixels = np.asarray(decoded.convert("RGB"), dtype=np.float64)
    expected = np.rint(np.clip(pillow_box(image, (100, 100)), 0, 1) * 255)
    tolerance = 0 if page.data["original"]["mime"] != "image/jpeg" else 3
    assert np.abs(pixels - expected).mean() <= tolerance


def test_default_file_fits_the_budget_on_a_12_megapixel_photo():
    """<= 3 quality-90 JPEGs of the display image + 1 MB, at the default --max-side."""
    import skimage.data
    from skimage.transform import resize

    rng = np.random.default_rng(5)
    photo = resize(skimage.data.chelsea(), (3000, 4000), order=1).astype(np.float32)
    photo = np.clip(photo + rng.normal(0, 0.02, photo.shape).astype(np.float32), 0, 1)
    page = explore(photo, storage=False)
    display = pillow_box(photo, (1024, 768))
    buffer = io.BytesIO()
    Image.fromarray(np.rint(np.clip(display, 0, 1) * 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=90
    )
    size = len(page.to_html().encode())
    assert size <= 3 * buffer.tell() + 1_000_000
    assert page.max_rank >= 50  # the budget still leaves a useful slider


def test_text_cannot_break_out_of_the_page(camera):
    title = '</script><script>alert(1)</script><!-- "&'
    page = explore(camera[:64, :64], title=title, storage=False)
    text = page.to_html()
    assert "<script>alert(1)" not in text
    assert text.count("</script>") == 2  # the data block and the page's script
    assert html.escape(title) in text
    assert page_data(text)["title"] == title


def test_page_loads_nothing_from_outside(camera):
    text = explore(camera[:32, :32], storage=False).to_html()
    assert "default-src 'none'" in text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text)
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text


def test_repr_html_is_a_sandboxed_iframe(camera):
    svd = decompose(camera[:40, :50])
    out = svd._repr_html_()
    assert out.startswith("<iframe") and 'sandbox="allow-scripts"' in out
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', out).group(1))
    assert page_data(srcdoc)["maxRank"] == 40


def test_truncated_decomposition_without_image_shows_errors_only(camera):
    svd = decompose(camera, rank=12)
    data = explore(svd).data
    assert data["original"] is None and data["quality"]["ranks"] == []
    assert data["maxRank"] == 12
    np.testing.assert_allclose(data["relativeError"], svd.relative_error()[:12], rtol=1e-6)


def test_tiny_images(rng):
    for shape in [(2, 2), (2, 2, 3), (2, 9)]:
        image = rng.random(shape).astype(np.float32)
        page = explore(image)
        assert page.max_rank == min(shape[:2])
        assert page.state(page.max_rank)["relativeError"] == pytest.approx(0, abs=1e-5)
        assert page.data["quality"]["ssim"][0] is None  # smaller than SSIM's window


def test_save_is_atomic_and_does_not_overwrite(tmp_path, camera):
    page = explore(camera[:16, :16], storage=False)
    path = page.save(tmp_path / "page.html")
    assert path.read_text(encoding="utf-8") == page.to_html()
    with pytest.raises(FileExistsError):
        page.save(path)
    page.save(path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_bad_arguments(camera):
    with pytest.raises(ValueError, match="max_side"):
        explore(camera, max_side=0)
    with pytest.raises(ValueError, match="singular vectors"):
        explore(decompose(camera, compute_vectors=False))
    with pytest.raises(ValueError, match="rank"):
        explore(camera[:10, :10], max_rank=11)


def test_psnr_in_the_page_is_sweeps(camera):
    """The PSNR grid uses the clipped reconstruction, as sweep does."""
    svd = decompose(camera)
    page = explore(svd, image=camera, max_rank=30, storage=False)
    k = page.data["quality"]["ranks"][5]
    assert page.data["quality"]["psnr"][5] == pytest.approx(
        metrics.peak_signal_noise_ratio(camera, svd.reconstruct(k))
    )
