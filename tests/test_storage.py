import pytest

from svdimage.storage import SvdzSizes, storage_rank, svdz_sizes


@pytest.mark.parametrize("color", [False, True])
def test_svdz_rank_search_equals_a_scan_of_every_rank(astronaut, color):
    """The estimate-guided search (SvdzSizes.estimate, pairs of real files) finds, for
    budgets across the range, a rank that fits whose neighbour does not, between the first
    that does not fit and the largest that fits in a scan of every rank's real file (sizes
    grow with the rank up to the entropy coder's noise, under 2 %)."""
    image = astronaut[::4, ::4].copy() if color else astronaut[::4, ::4, 1].copy()
    every = SvdzSizes(image).many(range(1, 129))
    assert all(b > 0.98 * a for a, b in zip(every, every[1:]))
    assert every[-1] > 10 * every[0]
    for budget in (every[0], every[6] + 1, every[40], every[90] - 1, every[127], every[127] + 10):
        fits = [k for k in range(1, 129) if every[k - 1] <= budget]
        first_too_large = min((k for k in range(1, 129) if k not in fits), default=129)
        fresh = SvdzSizes(image)  # the search alone, with nothing measured before
        k = storage_rank(image.shape, bytes=budget, storage="svdz", sizes=fresh)
        assert k in fits and (k == 128 or every[k] > budget)
        assert first_too_large - 1 <= k <= max(fits)
    with pytest.raises(ValueError, match="even rank 1"):
        storage_rank(image.shape, bytes=every[0] - 1, storage="svdz", sizes=SvdzSizes(image))


def test_svdz_sizes_share_factorizations_and_equal_the_files(astronaut, monkeypatch):
    """Sizes of a 512x512 colour photo's ranks, asked in any order through one SvdzSizes,
    one at a time or several at once (threads), are those of the files codec.encode writes
    for each rank alone (randomized plane factorizations at ranks 16 and 32, the full one
    above), and each is computed once."""
    from svdimage import codec
    from svdimage.codec import _tiles

    calls = []
    real = _tiles.plane_factors
    monkeypatch.setattr(_tiles, "plane_factors", lambda *a, **k: calls.append(k) or real(*a, **k))
    sizes = SvdzSizes(astronaut)
    asked = [30, 3, 100, 12, 25, 16, 70]
    got = {k: sizes(k) for k in asked[:3]}
    got.update(zip(asked[3:], sizes.many(asked[3:])))
    # Y (512x512) at ranks 16 and 32, then in full; Cb and Cr (256x256, where a sketch of
    # 64 is no longer cheaper than the full SVD) at rank 16, then in full.
    assert len(calls) == 3 + 2 + 2
    monkeypatch.undo()
    for k in asked:
        assert got[k] == len(codec.encode(astronaut, rank=k, tile=None))
        assert 1 < sizes.estimate(k) / got[k] < 2  # the fast stand-in is near, and above
    assert [got[k] for k in sorted(asked)] == sorted(got.values())


def test_svdz_sizes_are_shared_per_image_without_keeping_it_alive(camera):
    import gc
    import weakref

    image = camera[::4, ::4].copy()
    assert svdz_sizes(image) is svdz_sizes(image)
    assert svdz_sizes(image.copy()) is not svdz_sizes(image)
    held = weakref.ref(image)
    del image
    gc.collect()
    assert held() is None
