"""Images bigger than memory: lazy opening, chunks, failures, block means, writing."""

import pickle

import numpy as np
import pytest

from svdimage.chunked_io import (
    ChunkReadError,
    block_mean,
    chunk_bytes_for,
    open_image,
    save_chunked,
)


@pytest.fixture
def pixels() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)


def test_npy_and_uncompressed_tiff_are_read_in_the_chunks_asked_for(tmp_path, pixels):
    import tifffile

    np.save(tmp_path / "a.npy", pixels)
    tifffile.imwrite(tmp_path / "a.tif", pixels)
    for name in ("a.npy", "a.tif"):
        lazy = open_image(tmp_path / name, chunks=64)
        assert type(lazy).__module__.startswith("dask") and lazy.chunksize == (64, 64, 3)
        np.testing.assert_array_equal(lazy.compute(), pixels)
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="open_image reads TIFF"):
        open_image(tmp_path / "a.png")
    with pytest.raises(FileNotFoundError):
        open_image(tmp_path / "missing.npy")


def test_tiled_tiffs_pyramids_and_zarr_are_read_in_bands_of_whole_tiles(tmp_path, pixels):
    import tifffile
    import zarr

    # A tiled, compressed BigTIFF pyramid (OME-TIFF style): its full-resolution level.
    with tifffile.TiffWriter(tmp_path / "p.ome.tif", bigtiff=True, ome=True) as tif:
        options = dict(tile=(64, 64), compression="zlib", photometric="rgb")
        tif.write(pixels, subifds=1, **options)
        tif.write(pixels[::2, ::2], subfiletype=1, **options)
    lazy = open_image(tmp_path / "p.ome.tif")
    assert lazy.shape == (300, 400, 3) and lazy.chunksize == (300, 400, 3)  # one band fits
    np.testing.assert_array_equal(lazy.compute(), pixels)
    # A small chunk budget: bands of whole tile rows, then blocks of whole tiles.
    band = open_image(tmp_path / "p.ome.tif", chunk_bytes=64 * 400 * 3 * 4 * 2)
    assert band.chunksize == (128, 400, 3)
    blocks = open_image(tmp_path / "p.ome.tif", chunk_bytes=64 * 64 * 3 * 4 * 3)
    assert blocks.chunksize == (64, 192, 3)
    np.testing.assert_array_equal(blocks.compute(), pixels)
    # A Zarr array stored channel first (as OME-Zarr stores colour), and an OME-Zarr group.
    channel_first = zarr.open(tmp_path / "a.zarr", mode="w", shape=(3, 300, 400),
                              chunks=(3, 100, 100), dtype="uint8")  # fmt: skip
    channel_first[:] = pixels.transpose(2, 0, 1)
    small = open_image(tmp_path / "a.zarr", chunk_bytes=100 * 400 * 3 * 4)
    assert small.chunksize == (100, 400, 3)
    np.testing.assert_array_equal(small.compute(), pixels)
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("0", shape=(300, 400), chunks=(100, 100), dtype="uint8")[:] = pixels[..., 0]
    group.create_array("1", shape=(150, 200), chunks=(100, 100), dtype="uint8")
    group.attrs["multiscales"] = [{"datasets": [{"path": "0"}, {"path": "1"}]}]
    np.testing.assert_array_equal(open_image(tmp_path / "g.zarr").compute(), pixels[..., 0])


def test_a_lazy_image_pickles_as_its_path_for_the_workers_of_a_cluster(tmp_path, pixels):
    import tifffile

    np.save(tmp_path / "a.npy", pixels)
    tifffile.imwrite(tmp_path / "t.tif", pixels, tile=(64, 64), compression="zlib")
    for name in ("a.npy", "t.tif"):
        lazy = open_image(tmp_path / name, chunk_bytes=2**16)
        lazy[:10].compute()  # opened here: the handle or the mapped pages must not travel
        data = pickle.dumps(lazy)
        assert len(data) < pixels.nbytes / 4
        np.testing.assert_array_equal(pickle.loads(data).compute(), pixels)


def test_a_damaged_tile_is_one_error_naming_the_file_and_the_rows(tmp_path, pixels):
    import tifffile

    path = tmp_path / "t.tif"
    tifffile.imwrite(path, pixels[..., 0], tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[7]  # row 1 of tiles, column 0 (7 tiles a row)
    data = bytearray(path.read_bytes())
    data[offset : offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    lazy = open_image(path, chunk_bytes=64 * 400 * 4)
    np.testing.assert_array_equal(lazy[:64].compute(), pixels[:64, :, 0])
    with pytest.raises(
        ChunkReadError, match=r"could not read rows 64-127, columns 0-399 of .*t\.tif"
    ):
        lazy.compute()


def test_chunk_bytes_leave_room_for_the_tasks_and_the_factors():
    assert chunk_bytes_for(2 * 2**30, 2) == 192 * 2**20
    assert chunk_bytes_for(2**20, 8) == 4 * 2**20  # never below 4 MiB
    assert chunk_bytes_for(2**40, 1) == 256 * 2**20
    with pytest.raises(ValueError, match="positive"):
        chunk_bytes_for(0, 1)


def test_block_mean_averages_whole_blocks_and_what_the_edge_blocks_hold(tmp_path, pixels):
    from skimage.measure import block_reduce

    np.save(tmp_path / "a.npy", pixels)
    lazy = open_image(tmp_path / "a.npy", chunks=70)  # chunks that are not whole blocks
    small = block_mean(lazy, 8)
    expected = block_reduce(pixels.astype(np.float64), (8, 8, 1), np.mean)  # pads the edges
    assert small.shape == expected.shape == (38, 50, 3) and small.dtype == np.float32
    np.testing.assert_allclose(small[:37], expected[:37], rtol=1e-6)  # whole blocks
    np.testing.assert_allclose(small[37], pixels[296:].reshape(4, 50, 8, 3).mean(axis=(0, 2)),
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(block_mean(lazy, 1), pixels)


def test_save_chunked_writes_a_dask_image_band_by_band(tmp_path, pixels):
    import dask.array as da
    import tifffile

    image = da.from_array(np.kron(pixels[:20, :30], np.ones((20, 20, 1))) / 255.0,
                          chunks=(97, 131, 3))  # fmt: skip
    expected = np.rint(np.clip(image.compute(), 0, 1) * 255)
    save_chunked(tmp_path / "big.tif", image)
    with tifffile.TiffFile(tmp_path / "big.tif") as tif:
        assert tif.is_bigtiff and tif.pages[0].is_tiled and tif.pages[0].tilewidth == 256
        np.testing.assert_array_equal(tif.asarray(), expected)
    save_chunked(tmp_path / "big.zarr", image)
    np.testing.assert_array_equal(open_image(tmp_path / "big.zarr").compute(), expected)
    with pytest.raises(FileExistsError):
        save_chunked(tmp_path / "big.zarr", image)
    with pytest.raises(ValueError, match=r"\.tif \(tiled BigTIFF\) or \.zarr"):
        save_chunked(tmp_path / "big.png", image)


def test_a_failed_write_leaves_no_output_and_no_temporary(tmp_path, pixels):
    import dask.array as da

    def third_band_fails(block, block_info=None):
        if block_info is not None and block_info[0]["chunk-location"][0] == 2:
            raise ChunkReadError("could not read rows 256-511 of 'x.tif'")
        return block

    image = da.from_array(pixels[..., 0] / 255.0, chunks=(100, 400))
    broken = image.map_blocks(third_band_fails, dtype=image.dtype)
    for name in ("out.tif", "out.zarr"):
        with pytest.raises(ChunkReadError):
            save_chunked(tmp_path / name, broken)
        assert list(tmp_path.iterdir()) == []


def _die_once(block, marker):
    """Kill this worker process the first time any worker computes a block."""
    import os

    if block.size and not os.path.exists(marker):  # (Dask calls it on an empty block first)
        open(marker, "w").close()
        os._exit(1)
    return block


def test_a_worker_killed_mid_pass_is_survived_on_a_local_cluster(tmp_path, pixels):
    import dask.array as da

    from svdimage import decompose
    from svdimage.chunked_io import running_on

    np.save(tmp_path / "a.npy", pixels[..., 0])
    lazy = open_image(tmp_path / "a.npy", chunks=(100, 400))
    marker = str(tmp_path / "died")
    dying = lazy.map_blocks(_die_once, marker, dtype=lazy.dtype)
    with running_on(workers=2, memory_limit=2**30):
        svd = decompose(dying, rank=10, rng=0)
    assert (tmp_path / "died").exists()  # a worker did die, and Dask ran its task again
    expected = decompose(da.from_array(pixels[..., 0], chunks=(100, 400)), rank=10, rng=0)
    np.testing.assert_allclose(svd.s, expected.s, rtol=1e-6)
