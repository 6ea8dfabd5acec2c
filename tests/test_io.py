import contextlib
import http.server
import io
import os
import socket
import struct
import threading
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from svdimage import load_image, save_image
from svdimage.io import ImageNote, from_uint8


def _png_bytes(array: np.ndarray, mode: str | None = None, **info) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG", **info)
    return buffer.getvalue()


@pytest.fixture
def gradient_rgb() -> np.ndarray:
    y, x = np.mgrid[0:20, 0:30]
    return np.stack([x * 8, y * 12, (x + y) * 4], axis=2).astype(np.uint8)


def test_load_image_from_path_bytes_file_and_array(tmp_path, gradient_rgb):
    path = tmp_path / "g.png"
    path.write_bytes(_png_bytes(gradient_rgb))
    expected = gradient_rgb.astype(np.float32) / 255
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes()), gradient_rgb):
        image = load_image(source)
        assert image.dtype == np.float32 and image.shape == (20, 30, 3)
        np.testing.assert_allclose(image, expected, atol=1e-7)


def test_load_image_gray_uses_bt709_like_skimage(gradient_rgb):
    from skimage.color import rgb2gray

    gray = load_image(gradient_rgb, mode="gray")
    assert gray.shape == (20, 30) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, rgb2gray(gradient_rgb.astype(np.float32) / 255), atol=1e-6)


def test_load_image_auto_keeps_gray_and_detects_equal_channels(gradient_rgb):
    gray8 = gradient_rgb[:, :, 0]
    assert load_image(_png_bytes(gray8)).shape == (20, 30)
    equal = np.repeat(gray8[:, :, None], 3, axis=2)
    assert load_image(_png_bytes(equal)).shape == (20, 30)
    assert load_image(_png_bytes(gray8), mode="rgb").shape == (20, 30, 3)


def test_load_image_16bit_keeps_precision():
    values = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100
    image = load_image(_png_bytes(values))
    np.testing.assert_allclose(image, values / 65535, atol=1e-7)
    # 8 bits could not tell these neighbours apart.
    assert len(np.unique(image)) == values.size


def test_load_image_palette_and_alpha_composited_on_white(gradient_rgb):
    palette = Image.fromarray(gradient_rgb).convert("P", palette=Image.Palette.ADAPTIVE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    assert load_image(buffer.getvalue()).shape == (20, 30, 3)  # no note: nothing was lost

    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red ...
    rgba[:2, :, 3] = 0  # ... transparent on top: white
    rgba[2:, :, 3] = 255  # ... opaque below: red
    with pytest.warns(ImageNote, match="transparency was composited on a white background"):
        image = load_image(_png_bytes(rgba))
    np.testing.assert_allclose(image[0, 0], [1, 1, 1])
    np.testing.assert_allclose(image[3, 0], [1, 0, 0])


def test_load_image_applies_exif_orientation():
    array = np.zeros((10, 20), dtype=np.uint8)
    array[0, :] = 255  # bright top row
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", exif=exif, quality=95)
    image = load_image(buffer.getvalue())
    assert image.shape == (20, 10)
    assert image[:, -1].mean() > 0.8 and image[:, 0].mean() < 0.2  # top row now on the right


@pytest.mark.parametrize(
    "data,match",
    [
        (b"not an image at all", "not an image file"),
        (b"", "not an image file"),
    ],
)
def test_load_image_rejects_non_images(data, match):
    with pytest.raises(ValueError, match=match):
        load_image(data)


def test_load_image_rejects_truncated_file(gradient_rgb):
    big = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    data = _png_bytes(big)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_load_image_rejects_tiny_and_missing(tmp_path):
    with pytest.raises(ValueError, match="at least 2x2"):
        load_image(_png_bytes(np.zeros((1, 1), dtype=np.uint8)))
    with pytest.raises(ValueError, match="at least 2x2"):
        load_image(np.zeros((0, 4)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image(tmp_path / "missing.png")


def test_load_image_pixel_cap_and_raising_it():
    data = _png_bytes(np.zeros((100, 100), dtype=np.uint8))
    with pytest.raises(ValueError, match="10,000 pixels, over the 9,999-pixel cap"):
        load_image(data, max_pixels=9999)
    assert load_image(data, max_pixels=10_000).shape == (100, 100)
    assert load_image(data, max_pixels=None).shape == (100, 100)


def test_load_image_cap_above_pillows_own_limit_is_honoured(monkeypatch):
    # Pillow refuses images above 2x its global limit; our cap must decide instead.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = _png_bytes(np.zeros((100, 100), dtype=np.uint8))
    assert load_image(data, max_pixels=20_000).shape == (100, 100)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored


def test_load_image_rejects_bad_mode():
    with pytest.raises(ValueError, match="mode must be"):
        load_image(np.zeros((3, 3)), mode="cmyk")


# -- URLs, served from 127.0.0.1 only -------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict] = {}

    def do_GET(self):
        body, delay, status, length = self.routes.get(self.path, (b"", 0, 404, None))
        time.sleep(delay)
        self.send_response(status)
        if length != "omit":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(gradient_rgb):
    png = _png_bytes(gradient_rgb)
    routes = {
        "/photo.png": (png, 0, 200, None),
        "/slow.png": (png, 2.0, 200, None),
        "/big.png": (png, 0, 200, None),
        "/stream.png": (png, 0, 200, "omit"),  # no Content-Length: read until close
    }
    handler = type("Handler", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", len(png)
    httpd.shutdown()
    httpd.server_close()


def test_load_image_from_url(server, gradient_rgb):
    base, _ = server
    image = load_image(f"{base}/photo.png")
    np.testing.assert_allclose(image, gradient_rgb / 255, atol=1e-7)


def test_load_image_url_timeout(server):
    base, _ = server
    with pytest.raises(TimeoutError, match=r"within 0\.3 s"):
        load_image(f"{base}/slow.png", timeout=0.3)


def test_load_image_url_byte_cap_from_header_and_from_stream(server):
    base, size = server
    cap = size - 1
    with pytest.raises(ValueError, match=f"is {size:,} bytes, over the {cap:,}-byte cap"):
        load_image(f"{base}/big.png", max_bytes=cap)
    with pytest.raises(ValueError, match="more than the 20-byte cap"):
        load_image(f"{base}/stream.png", max_bytes=20)
    assert load_image(f"{base}/stream.png").shape == (20, 30, 3)


def test_load_image_url_http_error_and_unreachable(server):
    base, _ = server
    with pytest.raises(ConnectionError, match="HTTP 404"):
        load_image(f"{base}/missing.png")
    with pytest.raises(ConnectionError, match="cannot reach"):
        load_image("http://127.0.0.1:9/photo.png", timeout=2)  # discard port: refused


# -- saving ---------------------------------------------------------------------
def test_save_image_clips_then_rounds(tmp_path):
    image = np.array([[-0.5, 0.0, 0.5], [1.0, 1.7, 0.25]], dtype=np.float32)
    path = save_image(tmp_path / "out.png", image)
    with Image.open(path) as handle:
        written = np.asarray(handle)
    np.testing.assert_array_equal(written, [[0, 0, 128], [255, 255, 64]])


def test_save_image_round_trip_color_and_16bit(tmp_path, gradient_rgb):
    rgb = gradient_rgb / 255
    save_image(tmp_path / "c.png", rgb)
    np.testing.assert_allclose(load_image(tmp_path / "c.png"), rgb, atol=1e-6)
    gray = np.linspace(0, 1, 600).reshape(20, 30)
    save_image(tmp_path / "g16.png", gray, bit_depth=16)
    np.testing.assert_allclose(load_image(tmp_path / "g16.png"), gray, atol=1 / 65535)
    with pytest.raises(ValueError, match="bit_depth=16"):
        save_image(tmp_path / "c16.png", rgb, bit_depth=16)


def test_save_image_writes_8_bit_pixels_as_they_are(tmp_path, gradient_rgb):
    pixels = gradient_rgb.astype(np.uint8)
    for image in (pixels, pixels[:, :, 1], pixels[:, ::2]):  # colour, gray, a strided view
        save_image(tmp_path / "p.png", image, force=True)
        save_image(tmp_path / "f.png", from_uint8(image), force=True)
        with Image.open(tmp_path / "p.png") as a, Image.open(tmp_path / "f.png") as b:
            np.testing.assert_array_equal(np.asarray(a), image)
            assert a.mode == b.mode
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="at least 2x2"):
        save_image(tmp_path / "thin.png", pixels[:1])


def test_save_image_png_level_changes_bytes_not_pixels(tmp_path):
    rng = np.random.default_rng(3)
    smooth = np.cumsum(rng.normal(size=(64, 96, 3)), axis=1)
    image = (smooth - smooth.min()) / np.ptp(smooth)
    fast = save_image(tmp_path / "fast.png", image)  # level 1
    small = save_image(tmp_path / "small.png", image, compress_level=9)
    stored = save_image(tmp_path / "stored.png", image, compress_level=0)
    sizes = [p.stat().st_size for p in (stored, fast, small)]
    assert sizes[0] > sizes[1] >= sizes[2]
    with Image.open(fast) as a, Image.open(small) as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    save_image(tmp_path / "x.jpg", image, compress_level=9)  # ignored by other formats
    for bad in (10, -1, True, 1.5):
        with pytest.raises(ValueError, match="compress_level"):
            save_image(tmp_path / "bad.png", image, compress_level=bad)


def test_save_image_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "out.png"
    save_image(path, np.zeros((4, 4)))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists.*force"):
        save_image(path, np.ones((4, 4)))
    assert path.read_bytes() == before
    save_image(path, np.ones((4, 4)), force=True)
    assert path.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp files left


def test_save_image_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(tmp_path / "out.png", np.zeros((4, 4)))
    assert list(tmp_path.iterdir()) == []


def test_save_image_rejects_unknown_extension_and_creates_missing_folders(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the image format"):
        save_image(tmp_path / "out.xyz", np.zeros((4, 4)))
    save_image(tmp_path / "new" / "out.png", np.zeros((4, 4)))
    assert load_image(tmp_path / "new" / "out.png").shape == (4, 4)


# -- hostile inputs (issue 11): one clear error class, whatever the decoder raises ----------
@pytest.mark.parametrize("fmt", ["TIFF", "TIFF-LZW", "PNG", "GIF", "BMP", "JPEG"])
def test_mutated_image_files_give_value_errors_only(fmt, gradient_rgb, capfd, caplog):
    """A seeded mutator over real files: each mutant decodes or raises ValueError, never
    TypeError, OverflowError, struct.error ... with the decoder's own text (a malformed TIFF
    IFD used to escape as "'<' not supported between instances of 'bytes' and 'int'")."""
    buffer = io.BytesIO()
    if fmt == "TIFF-LZW":  # decoded by libtiff, which writes its complaints to stderr
        Image.fromarray(gradient_rgb).save(buffer, format="TIFF", compression="tiff_lzw")
    else:
        Image.fromarray(gradient_rgb).save(buffer, format=fmt)
    original = buffer.getvalue()
    generator = np.random.default_rng(11)
    for _ in range(150):
        data = bytearray(original)
        for _ in range(int(generator.integers(1, 6))):
            position = int(generator.integers(0, min(len(data), 400)))
            data[position] = int(generator.integers(0, 256))
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                image = load_image(bytes(data), max_pixels=10**6)
        except ValueError as err:
            assert "\n" not in str(err) and str(err).startswith("<bytes>")
        else:
            assert image.dtype == np.float32 and image.shape[0] >= 2
            # the decoder's own warnings arrive as our notes, one line each
            assert all(isinstance(w.message, ImageNote) for w in caught)
            assert all("\n" not in str(w.message) for w in caught)
    assert capfd.readouterr().err == ""  # nothing of the decoder's reaches stderr,
    assert not caplog.records  # nor the logging system (Pillow logs some complaints)


def test_decoder_exceptions_of_any_type_become_corrupt_image_errors(monkeypatch, gradient_rgb):
    def broken(*args, **kwargs):
        raise TypeError("'<' not supported between instances of 'bytes' and 'int'")

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    with pytest.raises(ValueError, match=r"<bytes> is truncated or corrupt \('<' not supported"):
        load_image(_png_bytes(gradient_rgb))


def test_decoding_out_of_memory_is_a_clear_value_error(monkeypatch, gradient_rgb):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(ImageOps, "exif_transpose", exhausted)
    with pytest.raises(ValueError, match="needs more memory to decode than this machine has"):
        load_image(_png_bytes(gradient_rgb))


@pytest.mark.parametrize("url", ["ftp://example.org/a.png", "file:///etc/passwd", "s3://b/k.png"])
def test_other_url_schemes_are_refused_by_name(url):
    with pytest.raises(ValueError, match=r"only http:// and https:// URLs are supported"):
        load_image(url)


@contextlib.contextmanager
def _raw_server(reply: bytes):
    """A TCP server on 127.0.0.1 that answers every connection with ``reply`` and closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                with contextlib.suppress(OSError):
                    connection.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/x.png"
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", "did not answer as an HTTP server does"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Filler: 1\r\n" * 120 + b"\r\n", "did not answer as an HTTP"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"\x89PNG" * 5, "cut short: got"),
    ],
)
def test_network_failures_of_every_kind_are_connection_errors(reply, match):
    with _raw_server(reply) as url, pytest.raises(ConnectionError, match=match):
        load_image(url, timeout=5)


@pytest.mark.parametrize("where", ["headers", "body"])
def test_timeout_is_a_deadline_for_the_whole_download(where):
    """A server that trickles a byte every 0.1 s never trips a per-read timeout; the
    download must still end at the deadline (it used to run for minutes)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"

    def serve():
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                if where == "body":
                    connection.sendall(head)
                for byte in head if where == "headers" else b"x" * 100000:
                    connection.sendall(bytes([byte]))
                    time.sleep(0.1)

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.png"
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"did not finish sending within 1 s"):
            load_image(url, timeout=1.0)
    finally:
        listener.close()
    assert time.monotonic() - start < 10  # the deadline, not the server, ended it


# -- what the decoder says, and what loading changes (issue 11, items 6, 7, 13) --------------
IMAGES = Path(__file__).parent / "data" / "images"


def test_libtiff_messages_join_the_error_and_never_reach_stderr(capfd):
    # Reproducer: a TIFF whose StripOffsets entry has a bad type printed libtiff's line on
    # stderr, then Pillow's "decoder error -2": two lines, the useful one outside the error.
    path = IMAGES / "libtiff-incompatible-type.tif"
    with pytest.raises(ValueError, match=r"corrupt \(decoder error -2; libtiff: TIFF\w+: ") as err:
        load_image(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert capfd.readouterr().err == ""


def test_pillow_warnings_on_a_file_that_decodes_become_notes(capfd):
    path = IMAGES / "pillow-tag-warning.tif"
    with pytest.warns(ImageNote, match=r"pillow-tag-warning.tif: Tag data larger than file"):
        image = load_image(path)
    assert image.shape == (64, 80)
    assert capfd.readouterr().err == ""


def test_conversions_are_noted(gradient_rgb):
    frames = [Image.fromarray(gradient_rgb), Image.fromarray(255 - gradient_rgb)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.warns(ImageNote, match="holds 2 frames; the first is used"):
        load_image(buffer.getvalue())

    buffer = io.BytesIO()
    Image.fromarray(gradient_rgb).convert("CMYK").save(buffer, format="JPEG")
    with pytest.warns(ImageNote, match="CMYK colours were converted to RGB"):
        assert load_image(buffer.getvalue()).shape == (20, 30, 3)

    with pytest.warns(ImageNote, match="16-bit colour was read as 8-bit"):
        image = load_image(_png16_rgb(np.full((4, 6, 3), 40000, dtype=">u2")))
    np.testing.assert_allclose(image, round(40000 / 257) / 255, atol=1 / 255)


def test_plain_files_load_without_notes(gradient_rgb):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image(_png_bytes(gradient_rgb))
        load_image(_png_bytes(gradient_rgb[:, :, 0]))


def _png16_rgb(samples):
    """A 16-bit RGB PNG (Pillow cannot write one), built from its chunks."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    height, width, _ = samples.shape
    rows = b"".join(b"\x00" + samples[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_memory_is_checked_from_the_header_before_decoding():
    # Reproducer (scaled down): a 4 KB RGBA PNG of 48 x 1,114,152 pixels ran out of memory.
    buffer = io.BytesIO()
    Image.new("RGBA", (48, 100_000)).save(buffer, format="PNG")
    data = buffer.getvalue()
    assert len(data) < 20_000
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"needs about .*MiB, more than the cap \(50 MiB\)"):
        load_image(data, max_memory=50 * 2**20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5 * 2**20  # refused from the header: no pixel was decoded
    with pytest.warns(ImageNote):  # under a cap that suffices it loads (transparency noted)
        assert load_image(data, max_memory=2**30).shape == (100_000, 48)  # white: gray


def test_available_memory_counts_the_address_space_limit():
    import resource

    from svdimage._validation import _address_space_used, available_memory

    assert available_memory() > 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        pytest.skip("an address-space limit is already set")
    resource.setrlimit(resource.RLIMIT_AS, (_address_space_used() + 2**30, hard))
    try:
        free = available_memory()
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert 0 < free <= 2**30


def test_to_uint8_clips_rounds_and_works_a_block_of_rows_at_a_time(rng):
    from svdimage.io import to_uint8

    for shape in [(3,), (1000, 700), (700, 300, 3)]:  # the tall ones span many row blocks
        image = rng.uniform(-0.2, 1.2, size=shape).astype(np.float32)
        expected = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
        got = to_uint8(image)
        assert got.dtype == np.uint8 and got.shape == shape
        np.testing.assert_array_equal(got, expected)
    big = np.zeros((4000, 1000), dtype=np.float32)
    assert _peak_bytes(to_uint8, big) < big.nbytes / 2  # the uint8 result and a block


def _peak_bytes(func, *args):
    """The most memory ``func(*args)`` held at once (tracemalloc)."""
    tracemalloc.start()
    try:
        func(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_from_uint8_divides_by_255_in_float32_a_block_of_rows_at_a_time(rng):
    from svdimage.io import from_uint8, to_uint8

    every = np.arange(256, dtype=np.uint8)
    for pixels in [every, every.reshape(16, 16), rng.integers(0, 256, (900, 400, 3), np.uint8)]:
        got = from_uint8(pixels)
        assert got.dtype == np.float32 and got.shape == pixels.shape
        np.testing.assert_array_equal(got, pixels.astype(np.float32) / np.float32(255.0))
        np.testing.assert_array_equal(to_uint8(got), pixels)  # the inverse of to_uint8
    assert from_uint8(np.uint8(51)) == np.float32(0.2)
    with pytest.raises(TypeError, match="uint8"):
        from_uint8(np.zeros(3, dtype=np.uint16))
    big = np.zeros((4000, 1000), dtype=np.uint8)
    assert _peak_bytes(from_uint8, big) < 1.1 * 4 * big.nbytes  # the float32 result, a block


# -- truncated PNG data, declared sizes the data cannot fill -----------------------------------
def _png_chunk(kind: bytes, data: bytes, *, length: int | None = None) -> bytes:
    size = len(data) if length is None else length
    return struct.pack(">I", size) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _raw_png(width, height, rows, *, colour=2, depth=8, interlace=0, length=None) -> bytes:
    """A PNG whose IDAT holds a complete, well-ended zlib stream of only ``rows`` rows."""
    channels = {0: 1, 2: 3, 6: 4}[colour]
    row = b"\x00" + bytes(range(256)) * (width * channels * depth // 8 // 256 + 1)
    row = row[: 1 + width * channels * depth // 8]
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row * rows), length=length)
        + _png_chunk(b"IEND", b"")
    )


def test_a_png_whose_data_ends_early_is_refused_not_filled_with_black():
    # Reproducer: Pillow loads an IDAT of 48 of 100 rows with the other 52 rows black.
    data = _raw_png(100, 100, 48)
    with Image.open(io.BytesIO(data)) as pil:
        pil.load()  # Pillow alone says nothing
    with pytest.raises(ValueError, match=r"truncated .*ends after 14,448 of 30,100 bytes"):
        load_image(data)
    assert load_image(_raw_png(100, 100, 100)).shape == (100, 100, 3)  # whole: loads


def test_a_huge_declared_png_with_tiny_data_is_refused_before_allocating(tmp_path):
    # Reproducer: an 88-byte PNG declaring 64 x 1,048,576 RGB took 6.3 s and 1.33 GB.
    path = tmp_path / "bomb.png"
    path.write_bytes(_raw_png(64, 1 << 20, 0))
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"bomb.png is truncated .*cannot hold the 202,375,168"):
        load_image(path)
    seconds, peak = time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 2**20 and seconds < 1.0


def test_a_png_chunk_length_over_the_limit_is_refused():
    data = _raw_png(16, 16, 16, length=0xFFFFFFFF)
    with pytest.raises(ValueError, match="over PNG's limit"):
        load_image(data)


def _adam7_png(pixels: np.ndarray, *, rows_kept: int | None = None) -> bytes:
    """An interlaced (Adam7) 8-bit gray or RGB PNG, which Pillow cannot write; with
    ``rows_kept``, the data stops after that many of the passes' scanlines."""
    colour = 0 if pixels.ndim == 2 else 2
    height, width = pixels.shape[:2]
    lines = []
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                           (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):  # fmt: skip
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            lines += [b"\x00" + row.tobytes() for row in sub]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 1)
    data = zlib.compress(b"".join(lines[:rows_kept]))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def test_interlaced_pngs_are_checked_by_their_passes(gradient_rgb):
    whole = _adam7_png(gradient_rgb)
    with Image.open(io.BytesIO(whole)) as pil:
        assert pil.info.get("interlace") == 1
        expected = np.asarray(pil.convert("RGB"))
    np.testing.assert_array_equal(np.rint(load_image(whole) * 255), expected)
    gray = gradient_rgb[:, :, 0]
    np.testing.assert_array_equal(np.rint(load_image(_adam7_png(gray)) * 255), gray)
    with pytest.raises(ValueError, match="ends after"):
        load_image(_adam7_png(gradient_rgb, rows_kept=20))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16", "1", "P", "LA"])
def test_whole_pngs_of_every_mode_still_load(tmp_path, mode, gradient_rgb):
    pil = Image.fromarray(gradient_rgb).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        pil = Image.fromarray((np.asarray(pil, dtype=np.uint16) * 200).astype(np.uint16))
    path = tmp_path / "whole.png"
    pil.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageNote)  # RGBA and LA: composited on white
        assert load_image(path).shape[:2] == (20, 30)


def test_a_png_file_object_is_checked_too(tmp_path):
    path = tmp_path / "short.png"
    path.write_bytes(_raw_png(40, 40, 10))
    with open(path, "rb") as handle, pytest.raises(ValueError, match="ends after"):
        load_image(handle)


# -- pixels outside [0, 1] -----------------------------------------------------------------------
def _tiff(array: np.ndarray) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_pixels_are_refused(bad):
    array = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    array[2, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite pixel values"):
        load_image(_tiff(array))


def test_float_pixels_outside_0_1_are_mapped_linearly_with_a_note():
    array = np.linspace(-5, 7, 64, dtype=np.float32).reshape(8, 8)
    with pytest.warns(ImageNote, match=r"float pixel values span \[-5, 7\].*mapped linearly"):
        image = load_image(_tiff(array))
    np.testing.assert_allclose(image, (array + 5) / 12, atol=1e-6)
    assert image.dtype == np.float32 and image.min() == 0 and image.max() == 1


def test_float_pixels_inside_0_1_are_kept_without_a_note():
    array = np.linspace(0.1, 0.9, 64, dtype=np.float32).reshape(8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageNote)
        np.testing.assert_array_equal(load_image(_tiff(array)), array)


def test_signed_32_bit_pixels_are_mapped_linearly_with_a_note():
    # Reproducer: a signed int32 TIFF loaded with a minimum of -32768.5 and info exited 0.
    array = (np.arange(64, dtype=np.int32).reshape(8, 8) - 40) * 1000
    with pytest.warns(ImageNote, match=r"integer pixel values span \[-40000, 23000\]"):
        image = load_image(_tiff(array))
    np.testing.assert_allclose(image, (array + 40000) / 63000, atol=1e-6)


def test_32_bit_pixels_within_16_bits_are_read_as_16_bit_files_are():
    array = np.arange(64, dtype=np.int32).reshape(8, 8) * 1000
    np.testing.assert_allclose(load_image(_tiff(array)), array / 65535, atol=1e-7)


def test_a_constant_out_of_range_image_is_clipped_with_a_note():
    with pytest.warns(ImageNote, match="constant, so it was clipped"):
        image = load_image(_tiff(np.full((8, 8), 3.0, dtype=np.float32)))
    np.testing.assert_array_equal(image, 1.0)


# -- special files ---------------------------------------------------------------------------
def test_a_fifo_is_refused_at_once_not_read(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"is a FIFO \(named pipe\), not a regular file"):
        load_image(fifo)


# -- the hostile-image target: truncated data, edited dimensions (tests/fuzz_cases.py; the
# 10,000-case campaign runs the same cases: benchmarks/fuzz_campaign.py) ----------------------
@pytest.fixture(scope="module")
def image_seeds():
    from .fuzz_cases import image_seeds

    return image_seeds()


def _hostile_image(seeds, seed):
    from .fuzz_cases import check_image, image_case

    outcome = check_image(image_case(seeds, np.random.default_rng(seed)))
    assert outcome.problem is None, outcome


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_hostile_images_load_or_refuse_within_the_bound(image_seeds, seed):
    _hostile_image(image_seeds, seed)


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_many_hostile_images(image_seeds, seed):
    _hostile_image(image_seeds, seed)


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "PPM"])
def test_uncompressed_files_declaring_more_pixels_than_their_bytes_are_refused_first(fmt):
    # A 9000x9000 header over a few hundred bytes: Pillow allocates 243 MB, then finds the
    # data short. Refused from the file's length, before anything is allocated.
    from .fuzz_cases import measured, with_dimensions

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8)).save(buffer, format=fmt)
    data = buffer.getvalue()
    if fmt == "PPM":
        data = data.replace(b"10 10", b"9000 9000", 1)
    else:
        data = with_dimensions(fmt, data, 9000, 9000)
    error, seconds, peak = measured(lambda: load_image(data))
    assert isinstance(error, ValueError), error
    assert "cannot hold the 9,000x" in str(error)
    assert peak < 32 * 2**20 and seconds < 0.5


def test_a_tiff_whose_strips_stop_short_of_its_height_is_refused():
    # Pillow decodes the strips there are and leaves the other rows black.
    import tifffile

    from .fuzz_cases import with_dimensions

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.full((64, 64), 200, dtype=np.uint8))
    with pytest.raises(ValueError, match="strips hold 4,096 of the 12,800 pixels"):
        load_image(with_dimensions("TIFF", buffer.getvalue(), 64, 200))
    assert load_image(buffer.getvalue()).shape == (64, 64)


def test_an_image_over_the_cap_says_how_to_read_it_out_of_core(tmp_path, gradient_rgb):
    import tifffile

    (tmp_path / "a.png").write_bytes(_png_bytes(gradient_rgb))
    with pytest.raises(ValueError, match=r"convert it to a tiled TIFF \(a PNG can only be"):
        load_image(tmp_path / "a.png", max_pixels=100)
    tifffile.imwrite(tmp_path / "a.tif", gradient_rgb)
    with pytest.raises(ValueError, match="A tiled TIFF is read out of core"):
        load_image(tmp_path / "a.tif", max_pixels=100)
