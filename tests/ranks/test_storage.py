import pytest

from svdimage.codec import GlobalSizes
from svdimage.decomposition import decompose
from svdimage.ranks.selection import MeasurementCache
from svdimage.ranks.storage import storage_rank, svdz_bytes


@pytest.mark.parametrize("color", [False, True])
def test_svdz_rank_search_equals_a_scan_of_every_rank(astronaut, color):
    """The estimate-guided search (GlobalSizes.estimate, pairs of real files) finds, for
    budgets across the range, a rank that fits whose neighbour does not, between the first
    that does not fit and the largest that fits in a scan of every rank's real file (sizes
    grow with the rank up to the entropy coder's noise, under 2 %)."""
    image = astronaut[::4, ::4].copy() if color else astronaut[::4, ::4, 1].copy()
    every = GlobalSizes(image).many(range(1, 129))
    assert all(b > 0.98 * a for a, b in zip(every, every[1:]))
    assert every[-1] > 10 * every[0]
    for budget in (every[0], every[6] + 1, every[40], every[90] - 1, every[127], every[127] + 10):
        fits = [k for k in range(1, 129) if every[k - 1] <= budget]
        first_too_large = min((k for k in range(1, 129) if k not in fits), default=129)
        fresh = GlobalSizes(image)  # the search alone, with nothing measured before
        k = storage_rank(image.shape, max_bytes=budget, storage="svdz", sizes=fresh)
        assert k in fits and (k == 128 or every[k] > budget)
        assert first_too_large - 1 <= k <= max(fits)
    with pytest.raises(ValueError, match="even rank 1"):
        storage_rank(image.shape, max_bytes=every[0] - 1, storage="svdz", sizes=GlobalSizes(image))


def test_svdz_bytes_share_sizes_only_through_an_explicit_cache(camera, monkeypatch):
    """No hidden registry: without a cache each call factors the image anew; one
    MeasurementCache, created and passed by the caller, factors it once for every rank."""
    from svdimage.codec import _tiles

    image = camera[::4, ::4].copy()
    svd = decompose(image)
    calls = []
    real = _tiles.plane_factors
    monkeypatch.setattr(_tiles, "plane_factors", lambda *a, **k: calls.append(k) or real(*a, **k))
    alone = [svdz_bytes(svd, k) for k in (5, 6)]
    assert len(calls) == 2
    cache = MeasurementCache(image)
    shared = [svdz_bytes(svd, k, sizes=cache.sizes(svd)) for k in (5, 6)]
    assert len(calls) == 3 and shared == alone
    assert cache.sizes(svd) is cache.sizes()


def test_renamed_storage_names_warn_and_still_work(camera):
    import svdimage.ranks.selection
    import svdimage.ranks.storage

    with pytest.deprecated_call(match="svdimage.codec.GlobalSizes"):
        old = svdimage.ranks.storage.SvdzSizes
    assert old is GlobalSizes
    with pytest.deprecated_call(match="from svdimage.ranks.storage"):
        moved = svdimage.ranks.selection.svdz_bytes
    assert moved is svdz_bytes
