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
        assert 1 < sizes.estimate(k) / got[k] < 2  # the fast stand-in is near, and above
    assert [got[k] for k in sorted(asked)] == sorted(got.values())
