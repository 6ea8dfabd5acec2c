"""Format 2's payload: the decoder's patch product is exactly specified."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from svdimage._linalg import one_core
from svdimage.codec import decode, encode
from svdimage.codec._patch_payload import E_MIN, E_SPAN, put_patches


@pytest.mark.parametrize("patch", [4, 8])
def test_patches_are_the_exact_integer_product_rounded_once(patch):
    rng = np.random.default_rng(3)
    rows, cols, k = 9, 11, patch * patch // 2
    width = patch * patch
    values = rng.integers(-300, 301, size=(k, rows * cols)).astype(np.int32)
    exponents = rng.integers(E_MIN, E_MIN + E_SPAN, size=k)
    numerators = rng.integers(-(2**12), 2**12, size=(width, k))
    basis = numerators / 2.0**exponents
    means = rng.integers(0, 4096, size=(rows, cols))
    step, mean_step = 0.0123, 0.0123 / 16
    out = put_patches(values, basis, means, step, rows, cols, patch, mean_step=mean_step)

    # Independent of BLAS: NumPy's integer matmul, every basis value on the 2**17 grid.
    top = E_MIN + E_SPAN - 1
    exact = values.T.astype(np.int64) @ (numerators * 2 ** (top - exponents)).T
    patches = (exact * (step / 2.0**top)).astype(np.float32)
    patches += (means * mean_step).astype(np.float32).reshape(-1, 1)
    expected = patches.reshape(rows, cols, patch, patch).transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(out, expected.reshape(rows * patch, cols * patch))


def test_a_file_decodes_to_the_same_bits_whatever_the_threads(astronaut):
    data = encode(astronaut[:200, :240], quality=80, tile=4)
    plain = decode(data)
    with threadpool_limits(1):
        one_blas_thread = decode(data)
    with one_core():
        one_thread = decode(data)
    np.testing.assert_array_equal(plain, one_blas_thread)
    np.testing.assert_array_equal(plain, one_thread)
