import numpy as np

from svdimage import decompose
from svdimage._linalg import svd_flip


def test_sign_rule_largest_entry_of_each_u_column_is_positive(camera):
    svd = decompose(camera, rank=20, method="exact")
    U = svd.U
    picked = U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])]
    assert np.all(picked > 0)


def test_svd_flip_keeps_the_product(rng):
    U, s, Vt = np.linalg.svd(rng.random((8, 5)), full_matrices=False)
    U2, Vt2 = svd_flip(-U, -Vt)
    np.testing.assert_allclose((U2 * s) @ Vt2, (U * s) @ Vt, atol=1e-12)


def test_svd_flip_in_place_equals_the_copy_for_stacks(rng):
    U, _, Vt = np.linalg.svd(rng.standard_normal((4, 9, 6)), full_matrices=False)
    U_copy, Vt_copy = svd_flip(U, Vt)
    U_in, Vt_in = U.copy(), Vt.copy()
    same_U, same_Vt = svd_flip(U_in, Vt_in, copy=False)
    assert same_U is U_in and same_Vt is Vt_in
    np.testing.assert_array_equal(U_in, U_copy)
    np.testing.assert_array_equal(Vt_in, Vt_copy)


def test_map_on_cores_keeps_the_order_and_one_core_stays_in_this_thread():
    import threading

    from svdimage._linalg import map_on_cores, one_core

    assert map_on_cores(lambda x: x * x, range(20)) == [x * x for x in range(20)]
    assert map_on_cores(lambda x: x, []) == []
    with one_core():
        threads = map_on_cores(lambda _: threading.get_ident(), range(5))
    assert set(threads) == {threading.get_ident()}


def test_row_blocks_cover_every_row_once_in_blocks_of_about_the_elements_asked():
    from svdimage._linalg import row_blocks

    image = np.zeros((1000, 300, 3), dtype=np.float32)
    blocks = list(row_blocks(image, 10_000))
    assert [b.stop - b.start for b in blocks[:-1]] == [11] * (len(blocks) - 1)  # 900 per row
    covered = np.concatenate([np.arange(1000)[b] for b in blocks])
    np.testing.assert_array_equal(covered, np.arange(1000))
    assert [b.stop - b.start for b in row_blocks(image, 10)][:2] == [1, 1]  # a row at least
