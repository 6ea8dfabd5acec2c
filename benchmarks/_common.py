"""Helpers shared by the benchmark scripts: test images, timers, tables.

Benchmarks time; they never assert. Every speed is printed as a ratio against
a baseline timed in the same process, on the same data.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence

import numpy as np


def photo(megapixels: float, *, seed_image: str = "astronaut") -> np.ndarray:
    """A real photo (scikit-image's, gray) resized to ``megapixels`` at 3:4, float32."""
    import skimage.data
    import skimage.transform

    from svdimage import load_image

    base = load_image(getattr(skimage.data, seed_image)(), mode="gray")
    rows = int(round(np.sqrt(megapixels * 1e6 * 3 / 4)))
    cols = int(round(rows * 4 / 3))
    resized = skimage.transform.resize(base, (rows, cols), order=3, anti_aliasing=True)
    return np.ascontiguousarray(np.clip(resized, 0, 1), dtype=np.float32)


def median_time(
    func: Callable[[], object], *, repeats: int, max_seconds: float = 60.0
) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls (fewer when one call is very slow)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
        if sum(times) > max_seconds:
            break
    return float(np.median(times)), result


def gemm_rate(A: np.ndarray, width: int, *, repeats: int) -> float:
    """float32 GEMM rate (flop/s) of ``A @ X`` with ``X`` of ``width`` columns."""
    X = np.random.default_rng(0).standard_normal((A.shape[1], width), dtype=A.dtype)
    seconds, _ = median_time(lambda: A @ X, repeats=repeats)
    return 2.0 * A.shape[0] * A.shape[1] * width / seconds


def frobenius_error(
    A: np.ndarray, U: np.ndarray, s: np.ndarray, Vt: np.ndarray, *, block_rows: int = 256
) -> float:
    """``||A - U diag(s) Vt||_F`` computed in float64 by blocks of rows."""
    total = 0.0
    left = (U * s).astype(np.float64)
    right = Vt.astype(np.float64)
    for start in range(0, A.shape[0], block_rows):
        block = A[start : start + block_rows].astype(np.float64)
        block -= left[start : start + block_rows] @ right
        total += float(np.einsum("ij,ij->", block, block))
    return float(np.sqrt(total))


def machine() -> str:
    """One line naming the machine and BLAS."""
    from threadpoolctl import threadpool_info

    blas = {
        (i.get("internal_api"), i.get("version"), i.get("architecture"), i.get("num_threads"))
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    }
    text = ", ".join(f"{api} {ver} {arch} x{n}" for api, ver, arch, n in sorted(blas, key=str))
    return f"{platform.processor() or platform.machine()}, {platform.system()}, BLAS: {text}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A GitHub-flavoured markdown table on stdout."""
    cells = [[str(c) for c in row] for row in rows]
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" for _ in headers) + "|")
    for row in cells:
        print("| " + " | ".join(row) + " |")
