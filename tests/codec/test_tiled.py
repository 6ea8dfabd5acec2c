"""Formats 2.4 and 2.1 (svdimage.codec._tiled): tiled files of images bigger than memory."""

import struct

import numpy as np
import pytest

from svdimage import metrics
from svdimage.codec import (
    FormatError,
    decode,
    encode,
    inspect,
    is_tiled,
    open_tiled,
    save_tiled,
)
from svdimage.codec._format import HEAD_BYTES, read_head, unpack
from svdimage.codec._tiled import tile_regions


@pytest.fixture(scope="module")
def photo(astronaut):
    """A 600x520 colour photo: 3x3 tiles of 256 pixels, the last row and column partial."""
    return np.ascontiguousarray(np.pad(astronaut, ((0, 88), (0, 8), (0, 0)), mode="reflect"))


def _save(tmp_path_factory, photo, version):
    import dask.array as da

    path = tmp_path_factory.mktemp("tiled") / "t.svdz"
    chunks = da.from_array(photo, chunks=(100, 520, 3))
    return path, save_tiled(path, chunks, quality=80, tile=256, version=version)


@pytest.fixture(scope="module")
def tiled(tmp_path_factory, photo):
    """The default: format 2.4, tiles of format 2.3."""
    return _save(tmp_path_factory, photo, 3)


@pytest.fixture(scope="module")
def tiled_v21(tmp_path_factory, photo):
    """For older readers (version=2): format 2.1, tiles of format 2.0."""
    return _save(tmp_path_factory, photo, 2)


@pytest.mark.parametrize(("which", "container", "tiles"), [("2.4", (2, 4), 3), ("2.1", (2, 1), 2)])
def test_a_tiled_file_is_its_tiles_each_an_independent_file(
    which, container, tiles, tiled, tiled_v21, photo
):
    path, saved = tiled if which == "2.4" else tiled_v21
    data = path.read_bytes()
    assert data[5:7] == bytes(container) and is_tiled(path) and saved.tiles == 9
    image = decode(data)
    assert image.shape == photo.shape and image.dtype == np.float32
    for r0, r1, c0, c1 in tile_regions(photo.shape, 256):  # each tile as the encoder codes it
        alone = decode(encode(photo[r0:r1, c0:c1], quality=80, version=tiles))
        np.testing.assert_array_equal(image[r0:r1, c0:c1], alone)
    np.testing.assert_array_equal(open_tiled(path).compute(), image)  # lazily, tile by tile
    assert saved.nbytes == len(data)
    psnr = metrics.peak_signal_noise_ratio(photo, image)
    assert 10 * np.log10(photo.size / saved.squared_error) == pytest.approx(psnr, abs=1e-4)
    assert inspect(data).tile_ranks == [{"tiles": 9}]


def test_save_tiled_refuses_a_version_it_cannot_write(tmp_path, photo):
    with pytest.raises(ValueError, match="version must be 2 or 3"):
        save_tiled(tmp_path / "t.svdz", photo, version=1)
    assert not (tmp_path / "t.svdz").exists()


@pytest.mark.slow
def test_tiles_cost_little_against_one_file_of_the_whole_image(tmp_path, astronaut):
    import dask.array as da

    # 2560x2048 (the default 2048-pixel tiles: 2 of them), with the photo's own detail.
    rng = np.random.default_rng(0)
    image = np.kron(astronaut, np.ones((4, 5, 1), dtype=np.float32))
    image = np.clip(image + rng.normal(0, 0.01, image.shape).astype(np.float32), 0, 1)
    saved = save_tiled(tmp_path / "t.svdz", da.from_array(image, chunks=(512, 2560, 3)))
    whole = encode(image, quality=75)  # tiles are 2.3 files: the same format whole
    assert saved.nbytes < 1.02 * len(whole)
    tiled = decode((tmp_path / "t.svdz").read_bytes())
    assert metrics.peak_signal_noise_ratio(image, tiled) > (
        metrics.peak_signal_noise_ratio(image, decode(whole)) - 0.1
    )


def test_chunked_psnr_and_ssim_of_a_tiled_file_equal_the_whole_images(tiled, photo):
    import dask.array as da

    path, _ = tiled
    psnr, ssim = metrics.chunked_psnr_ssim(da.from_array(photo, chunks=(64, 520, 3)),
                                           open_tiled(path))  # fmt: skip
    image = decode(path.read_bytes())
    assert psnr == pytest.approx(metrics.peak_signal_noise_ratio(photo, image), abs=1e-4)
    assert ssim == pytest.approx(metrics.structural_similarity(photo, image), abs=1e-5)


def _table(data):
    header, _, start, size = read_head(data[:HEAD_BYTES])
    count = len(tile_regions(tuple(header["shape"]), header["tile"]))
    return header, start, size, count


def _with_payload(data, start, payload):
    """``data`` with its payload replaced (and its length field and checksum fixed)."""
    import zlib

    head = data[: start - 8]
    return head + struct.pack("<Q", len(payload)) + payload + struct.pack("<I", zlib.crc32(payload))


@pytest.mark.parametrize("which", ["2.4", "2.1"])
def test_tampered_or_truncated_tiled_files_are_refused_in_one_line(
    tmp_path, which, tiled, tiled_v21
):
    path, _ = tiled if which == "2.4" else tiled_v21
    data = path.read_bytes()
    _, start, size, count = _table(data)
    payload = bytearray(data[start : start + size])
    lengths = list(struct.unpack_from(f"<{count}Q", payload))
    # The table does not add up to the payload.
    bad = bytearray(payload)
    struct.pack_into("<Q", bad, 0, lengths[0] + 1)
    with pytest.raises(FormatError, match="does not add up"):
        decode(_with_payload(data, start, bytes(bad)))
    # Two tiles of different shapes swapped (the table too): a tile's shape is checked.
    body = payload[8 * count :]
    offsets = np.cumsum([0, *lengths])
    tiles = [bytes(body[offsets[i] : offsets[i + 1]]) for i in range(count)]
    tiles[0], tiles[2] = tiles[2], tiles[0]
    lengths[0], lengths[2] = lengths[2], lengths[0]
    swapped = struct.pack(f"<{count}Q", *lengths) + b"".join(tiles)
    with pytest.raises(FormatError, match="a tile holds a"):
        decode(_with_payload(data, start, swapped))
    # A 2.4 file's tiles must be 2.3 files, a 2.1 file's 2.0 files: a tile of the other
    # version (of its own region, here) is refused, whatever it holds.
    header, _, _ = unpack(tiles[2])
    region = header["shape"][:2]
    other = encode(
        np.full(region + header["shape"][2:], 0.5), quality=5, version=3 if which == "2.1" else 2
    )
    assert other[5:7] == bytes((2, 3) if which == "2.1" else (2, 0))
    restored = [other, tiles[1], tiles[0], *tiles[3:]]
    table = struct.pack(f"<{count}Q", *[len(t) for t in restored])
    expected = "2.0" if which == "2.1" else "2.3"
    with pytest.raises(FormatError, match=f"not a version-{expected} file"):
        decode(_with_payload(data, start, table + b"".join(restored)))
    # Cut short, changed, or read as a prefix.
    for broken, fragment in (
        (data[:-100], "truncated|payload"),
        (data[:start] + bytes([data[start] ^ 1]) + data[start + 1 :], "checksum"),
    ):
        with pytest.raises(FormatError, match=fragment):
            decode(broken)
    with pytest.raises(FormatError, match="max_bytes does not apply"):
        decode(data, max_bytes=len(data) // 2)
    cut = tmp_path / "cut.svdz"
    cut.write_bytes(data[:-100])
    with pytest.raises(FormatError):
        open_tiled(cut)


def test_the_outer_header_is_checked_before_anything_is_read(tmp_path, tiled):
    path, _ = tiled
    data = path.read_bytes()
    header, payload, _ = unpack(data)
    with pytest.raises(FormatError, match="pixel cap"):
        decode(data, max_pixels=1000)
    from tests.codec.svdz_files import rebuild

    for version in ((2, 4), (2, 1)):
        for tile in (100, 250, 16384):  # below 256, not a multiple of 16, above 8192
            with pytest.raises(FormatError, match="multiple of 16"):
                decode(rebuild({**header, "tile": tile}, payload, version=version))
        with pytest.raises(FormatError, match="keys are wrong"):
            decode(rebuild({**header, "color": "gray"}, payload, version=version))
        # Sides past format 2.0's 65,535 are allowed; the table must still match them.
        big = {**header, "shape": [70000, 520, 3]}
        with pytest.raises(FormatError, match="table"):
            decode(rebuild(big, payload, version=version), max_pixels=None)
    assert not is_tiled(tmp_path) and not is_tiled(tmp_path / "missing.svdz")
