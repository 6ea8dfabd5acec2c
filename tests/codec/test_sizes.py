"""The bytes of an image's global files at many ranks (svdimage.codec._sizes)."""

from svdimage.codec import GlobalSizes


def test_global_sizes_share_factorizations_and_equal_the_files(astronaut, monkeypatch):
    """Sizes of a 512x512 colour photo's ranks, asked in any order through one GlobalSizes,
    one at a time or several at once (threads), are those of the files codec.encode writes
    for each rank alone (randomized plane factorizations at ranks 16 and 32, the full one
    above), and each is computed once."""
    from svdimage import codec
    from svdimage.codec import _tiles

    calls = []
    real = _tiles.plane_factors
    monkeypatch.setattr(_tiles, "plane_factors", lambda *a, **k: calls.append(k) or real(*a, **k))
    sizes = GlobalSizes(astronaut)
    asked = [30, 3, 100, 12, 25, 16, 70]
    got = {k: sizes(k) for k in asked[:3]}
    got.update(zip(asked[3:], sizes.many(asked[3:])))
    # Y (512x512) at ranks 16 and 32, then in full; Cb and Cr (256x256, where a sketch of
    # 64 is no longer cheaper than the full SVD) at rank 16, then in full.
    assert len(calls) == 3 + 2 + 2
    monkeypatch.undo()
    for k in asked:
        assert got[k] == len(codec.encode(astronaut, rank=k, tile=None))
    assert [got[k] for k in sorted(asked)] == sorted(got.values())


def test_estimates_reuse_a_larger_factorization_and_extrapolate_past_it(astronaut, monkeypatch):
    """A search's estimates cost no factorization of their own: below the largest one
    computed they are files coded from it (within 2 % of the real files), past it an
    extrapolation; a real size still factors its own power of two."""
    from svdimage.codec import _tiles

    gray = astronaut.mean(axis=2)
    calls = []
    real = _tiles.plane_factors
    monkeypatch.setattr(_tiles, "plane_factors", lambda *a, **k: calls.append(k) or real(*a, **k))
    sizes = GlobalSizes(gray)
    sizes(60)  # factored to rank 64
    assert len(calls) == 1
    estimates = {k: sizes.estimate(k) for k in (10, 20, 40, 100, 130)}
    assert len(calls) == 1  # no factorization for any estimate
    monkeypatch.undo()
    fresh = GlobalSizes(gray)
    for k in (10, 20, 40):
        assert abs(estimates[k] / fresh(k) - 1) < 0.02
    assert estimates[40] < sizes(60) < estimates[100] < estimates[130]


def test_decoded_psnrs_are_those_of_the_files_8_bit_pixels(astronaut):
    """Each rank's PSNR is scikit-image's, of the file codec.encode writes for that rank,
    decoded and rounded to 8 bits here; at these ranks it lies below the rank-k
    reconstruction's (the factors are quantized), and the sizes measured on the way are the
    files'."""
    import numpy as np
    import skimage.metrics

    from svdimage import codec, decompose

    image = astronaut[::2, ::2]
    sizes = GlobalSizes(image)
    ranks = [40, 5, 20]
    psnrs = sizes.decoded_psnrs(ranks)
    svd = decompose(image)
    for k, psnr in zip(ranks, psnrs):
        data = codec.encode(image, rank=k, tile=None)
        pixels = np.rint(np.clip(codec.decode(data), 0, 1) * 255) / 255
        expected = skimage.metrics.peak_signal_noise_ratio(image, pixels, data_range=1)
        assert abs(psnr - expected) < 1e-4
        reconstruction = np.clip(svd.reconstruct(k), 0, 1)
        assert psnr < skimage.metrics.peak_signal_noise_ratio(image, reconstruction, data_range=1)
        assert sizes(k) == len(data)
