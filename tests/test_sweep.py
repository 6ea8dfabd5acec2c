import csv
import json

import numpy as np
import pytest
import skimage.metrics

from svdimage import decompose
from svdimage.sweep import measure_ranks, write_metrics_csv, write_metrics_json


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
