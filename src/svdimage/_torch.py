"""The optional PyTorch backend of :func:`svdimage.decompose` (``backend="torch"``).

Same algorithms as the NumPy backend — LAPACK-style thin SVD
(``torch.linalg.svd``) or the Halko--Martinsson--Tropp sketch with the same
``rng`` draws — run on CUDA when available, else on the CPU. Results come
back as NumPy arrays of the input's dtype with the same sign rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["exact_svd", "randomized_svd", "import_torch"]


def import_torch() -> Any:
    """Import torch or explain how to install it."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            "backend='torch' needs PyTorch: pip install 'svdimage[torch]' "
            "(on a machine without CUDA, first: pip install torch==2.13.0 for the CPU build)."
        ) from err
    return torch


def _device(torch: Any) -> Any:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _to_numpy(tensor: Any, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=dtype)


def exact_svd(A: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of ``A`` with ``torch.linalg.svd``, truncated to ``k``."""
    torch = import_torch()
    tensor = torch.from_numpy(np.ascontiguousarray(A)).to(_device(torch))
    U, s, Vt = torch.linalg.svd(tensor, full_matrices=False)
    return (_to_numpy(U[:, :k], A.dtype), _to_numpy(s[:k], A.dtype), _to_numpy(Vt[:k], A.dtype))


def randomized_svd(
    A: np.ndarray, k: int, *, width: int, n_iter: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HMT randomized SVD in torch; the Gaussian sketch is drawn from ``rng``.

    Power iterations are re-normalized by QR (``torch.linalg.qr``), which is
    well supported on every torch device.
    """
    torch = import_torch()
    device = _device(torch)
    transpose = A.shape[0] < A.shape[1]
    matrix = torch.from_numpy(np.ascontiguousarray(A)).to(device)
    if transpose:
        matrix = matrix.T
    short = matrix.shape[1]
    omega = torch.from_numpy(rng.standard_normal((short, width), dtype=A.dtype)).to(device)
    Q = matrix @ omega
    for _ in range(n_iter):
        Q = matrix.T @ torch.linalg.qr(Q).Q
        Q = matrix @ torch.linalg.qr(Q).Q
    Q = torch.linalg.qr(Q).Q
    Uh, s, Vt = torch.linalg.svd(Q.T @ matrix, full_matrices=False)
    U = Q @ Uh[:, :k]
    s, Vt = s[:k], Vt[:k]
    if transpose:
        U, Vt = Vt.T, U.T
    return _to_numpy(U, A.dtype), _to_numpy(s, A.dtype), _to_numpy(Vt, A.dtype)
