import csv
import json

import numpy as np
import pytest
import skimage.metrics

from svdimage import decompose
from svdimage.sweep import measure_ranks, run, write_metrics_csv, write_metrics_json


def test_measure_ranks_matches_independent_computation(astronaut):
    svd = decompose(astronaut)
    rows = measure_ranks(astronaut, svd, [50, 3, 10])
    assert [r.rank for r in rows] == [3, 10, 50]
    reference = astronaut.astype(np.float64)
    for row in rows:
        approx = np.stack([_lapack_rank_k(reference[:, :, c], row.rank) for c in range(3)], axis=2)
        assert row.relative_error == pytest.approx(
            np.linalg.norm(reference - approx) / np.linalg.norm(reference), rel=1e-4
        )
        shown = np.clip(approx, 0, 1)
        assert row.psnr == pytest.approx(
            skimage.metrics.peak_signal_noise_ratio(reference, shown, data_range=1.0), abs=1e-3
        )
        assert row.ssim == pytest.approx(
            skimage.metrics.structural_similarity(
                reference, shown, data_range=1.0, channel_axis=-1
            ),
            abs=1e-4,
        )
        assert row.stored_values == 3 * row.rank * (512 + 512 + 1)
        assert row.factor_bytes_float32 == 4 * row.stored_values
        assert row.compression_ratio_vs_raw8bit == pytest.approx(
            512 * 512 * 3 / row.factor_bytes_float32
        )
        assert row.energy == pytest.approx(1 - row.relative_error**2)


def _lapack_rank_k(matrix, k):
    U, s, Vt = np.linalg.svd(matrix, full_matrices=False)
    return (U[:, :k] * s[:k]) @ Vt[:k]


def test_measure_ranks_rejects_other_image(camera, astronaut):
    with pytest.raises(ValueError, match="does not match"):
        measure_ranks(astronaut, decompose(camera, rank=3), [3])


def test_write_metrics_csv_and_json_round_trip(tmp_path, camera):
    svd = decompose(camera, rank=20)
    rows = measure_ranks(camera, svd, [5, 20])
    write_metrics_csv(tmp_path / "m.csv", rows)
    write_metrics_json(tmp_path / "m.json", rows, info={"source": "camera"})
    with open(tmp_path / "m.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["image"] == {"source": "camera"}
    for row, line, entry in zip(rows, table, document["ranks"]):
        assert int(line["rank"]) == entry["rank"] == row.rank
        assert float(line["psnr"]) == entry["psnr"] == row.psnr
    with pytest.raises(FileExistsError):
        write_metrics_csv(tmp_path / "m.csv", rows)


# -- the fast path changes no result (issue 10) ----------------------------------------------
def test_sweep_of_a_large_photo_equals_full_svd_and_scikit_image(tmp_path, astronaut):
    """Above the complete-SVD crossover, run() computes only the top ranks it needs (and
    grows them for criteria); every number equals a full LAPACK SVD + scikit-image."""
    import skimage.transform

    image = np.clip(skimage.transform.resize(astronaut, (900, 1200), order=1), 0, 1)
    image = image.astype(np.float32)
    result = run(tmp_path / "out", image, ranks="5,40,psnr=30")
    assert not result.svd.is_complete and result.svd.max_rank < 900
    planes = [np.linalg.svd(image[:, :, c].astype(np.float64)) for c in range(3)]
    total = sum(float(np.sum(s**2)) for _, s, _ in planes)
    rows = {row.rank: row for row in result.rows}
    psnr_rank = None
    for k in range(1, 300):
        approx = np.clip(
            np.stack([(U[:, :k] * s[:k]) @ Vt[:k] for U, s, Vt in planes], axis=-1), 0, 1
        )
        psnr = skimage.metrics.peak_signal_noise_ratio(
            image.astype(np.float64), approx, data_range=1
        )
        if k in rows:
            row = rows[k]
            kept = sum(float(np.sum(s[:k] ** 2)) for _, s, _ in planes)
            assert row.relative_error == pytest.approx(np.sqrt(1 - kept / total), rel=1e-4)
            assert row.energy == pytest.approx(kept / total, abs=1e-6)
            assert row.psnr == pytest.approx(psnr, abs=1e-3)
            ssim = skimage.metrics.structural_similarity(
                image.astype(np.float64), approx, data_range=1.0, channel_axis=-1
            )
            assert row.ssim == pytest.approx(ssim, abs=1e-5)
        if psnr_rank is None and psnr >= 30:
            psnr_rank = k
        if psnr_rank is not None and k >= 40:
            break
    assert "psnr=30" in rows[psnr_rank].criterion  # the criterion picked the same rank


def test_run_takes_the_folder_first_and_the_old_order_warns(tmp_path, camera):
    image = camera[::8, ::8]
    result = run(tmp_path / "new", image, ranks=[2])
    with pytest.deprecated_call(match=r"run\(out, image\)"):
        old = run(image, tmp_path / "old", ranks=[2])
    assert [r.psnr for r in old.rows] == [r.psnr for r in result.rows]
