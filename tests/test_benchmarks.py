"""The benchmark scripts run with --quick so that they cannot rot (no timing is asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_svd_quick_prints_every_method_and_ratios():
    out = run("bench_svd.py")
    for name in (
        "svdimage (ours)",
        "sklearn randomized_svd",
        "scipy svds propack",
        "scipy.linalg.svd gesdd (full)",
        "peak memory",
    ):
        assert name in out
    rows = [line for line in out.splitlines() if "| svdimage (ours) |" in line]
    assert len(rows) == 4  # 2 sizes x 2 ranks
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[4] == "1.00"  # ours is the baseline of every ratio
        assert 0.999 <= float(cells[5]) <= 1.05  # error / optimal, computed directly


def test_bench_sweep_quick_agrees_with_seed_errors():
    out = run("bench_sweep.py")
    assert "seed loop" in out and "error curve" in out
    worst = float(out.rsplit(":", 1)[1])
    assert worst < 1e-3  # same errors as the seed's direct norms


def test_bench_animate_quick_times_both_methods():
    out = run("bench_animate.py")
    assert "seed: FuncAnimation" in out and "animate (ours)" in out
    assert "13 frames of 500x800" in out


def test_bench_rd_quick_compares_every_method():
    out = run("bench_rd.py", "--no-write")
    for method in (
        ".svdz",
        ".svdz global",
        "JPEG",
        "WebP",
        "AVIF",
        "8-bit per-vector factors",
        "float32 factors",
        "PNG of reconstruction",
    ):
        assert f"| {method} |" in out
    assert "tuning set" in out and "evaluation set" in out
    assert "(colour, evaluation)" in out and "(gray, tuning)" in out
    assert " dB |" in out and ".svdz vs WebP: RGB PSNR" in out and "JPEG XL" in out


def test_bench_growth_quick_finds_the_same_ranks_both_ways():
    out = run("bench_growth.py")
    rows = [line for line in out.splitlines() if line.startswith("| retina")]
    assert len(rows) == 4
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == cells[3]  # the rank found by doubling and by extrapolation
        assert float(cells[-1]) > 0
    assert "ratio" in out


@pytest.mark.parametrize(
    "script",
    ["bench_svd.py", "bench_sweep.py", "bench_animate.py", "bench_rd.py", "bench_growth.py"],
)
def test_benchmarks_document_themselves(script):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "--quick" in result.stdout


def test_bench_commands_quick_runs_every_command_as_a_user_would():
    out = run("bench_commands.py")
    for label in ("info", "sweep", "choose --psnr 35", "compress --bpp 1", "decompress", "animate"):
        assert f"| {label}" in out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    seconds, peak = header.index("seconds"), header.index("peak MiB")
    rows = lines[1:]
    assert len(rows) == 10
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert float(cells[seconds]) > 0 and float(cells[peak]) > 0  # both measured


def test_bench_explorer_quick_times_the_page_in_chromium():
    import shutil

    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    out = run("bench_explorer.py")
    tables = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in out.splitlines()
        if line.startswith("| ") and "display |" not in line
    ]
    timed = [cells for cells in tables if len(cells) == 11]
    assert len(timed) == 2
    for cells in timed:
        assert int(cells[2]) >= 1 and float(cells[7].split()[0]) > 0  # ranks; step measured
    budget = [cells for cells in tables if len(cells) == 6]
    assert len(budget) == 6  # smooth, busy, noisy x gray, colour
    for cells in budget:
        held, full = cells[2].split(" of ")
        assert held == full and cells[3] == "4"  # every rank; every mark resolves
        assert float(cells[4].split("(")[1].rstrip(")")) <= 1  # within the budget


def test_bench_batch_quick_runs_all_three_engines_with_the_same_numbers():
    out = run("bench_batch.py")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "images" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "serial, this process (baseline)",
        "local cluster, 2 workers",
        "scheduler + 2 dask workers",
    ]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == "0" and cells[6] == "yes"  # no failure; identical numbers


def test_fuzz_campaign_quick_counts_every_kind_of_problem():
    out = run("fuzz_campaign.py")
    rows = [line for line in out.splitlines() if line.startswith(("| svdz |", "| image |"))]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        cases, decoded, refused = (int(c.replace(",", "")) for c in cells[1:4])
        assert cases == decoded + refused + sum(int(c) for c in cells[4:8])
        assert cells[4:8] == ["0", "0", "0", "0"], row  # no wrong type, hang, overrun, bad image


def test_bench_outofcore_quick_compares_three_paths_on_one_file():
    out = run("bench_outofcore.py")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "case" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "in memory (baseline)",
        "out of core",
        "dask svd_compressed",
    ]
    ours = [c.strip() for c in rows[1].strip("|").split("|")]
    assert float(ours[5]) < 1e-4  # the top half of the singular values, against LAPACK


def test_bench_global_quick_compares_both_formats_on_the_same_factors():
    out = run("bench_global.py")
    assert "3.0 ÷ 1.1" in out and "coins" in out and "evaluation photos" in out


def test_bench_grey_quick_measures_the_cast_three_ways():
    out = run("bench_grey.py")
    assert "stereo_motorcycle" in out and "cast: WebP" in out
