import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from svdimage import codec, load_image
from svdimage.cli import EXIT_BAD_INPUT, EXIT_FILES, EXIT_NETWORK, EXIT_USAGE, app
from svdimage.io import to_uint8

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def photo(tmp_path, camera):
    """A 128x96 crop of the camera photo saved as PNG."""
    path = tmp_path / "photo.png"
    Image.fromarray(np.rint(camera[100:196, 200:328] * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def color_photo(tmp_path, astronaut):
    path = tmp_path / "color.jpg"
    Image.fromarray(np.rint(astronaut[::4, ::4] * 255).astype(np.uint8)).save(path, quality=92)
    return path


def assert_one_line_error(result, code, *fragments):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("svdimage: error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_documents_exit_codes():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Exit codes" in result.stdout and "without --force" in result.stdout
    for command in ("demo", "sweep", "reconstruct", "info"):
        assert command in result.stdout


def test_sweep_writes_all_outputs_and_metrics_match_library(tmp_path, photo):
    out = tmp_path / "out"
    result = invoke("sweep", photo, "--ranks", "3,10,20", "--output", out)
    assert result.exit_code == 0, result.output
    for name in ("grid.png", "error_curve.png", "spectrum.png", "metrics.csv", "metrics.json"):
        assert (out / name).stat().st_size > 0
    document = json.loads((out / "metrics.json").read_text())
    assert document["image"]["shape"] == [96, 128]
    image = load_image(photo).astype(np.float64)
    U, s, Vt = np.linalg.svd(image, full_matrices=False)
    for entry in document["ranks"]:
        k = entry["rank"]
        approx = (U[:, :k] * s[:k]) @ Vt[:k]
        assert entry["relative_error"] == pytest.approx(
            np.linalg.norm(image - approx) / np.linalg.norm(image), rel=1e-4
        )
        assert entry["stored_values"] == k * (96 + 128 + 1)
    assert "rank" in result.stdout and "20" in result.stdout


def test_sweep_refuses_existing_outputs_without_force(tmp_path, photo):
    out = tmp_path / "out"
    assert invoke("sweep", photo, "-r", "3", "--output", out).exit_code == 0
    before = (out / "metrics.json").read_bytes()
    result = invoke("sweep", photo, "-r", "5", "--output", out)
    assert_one_line_error(result, EXIT_FILES, "already exists", "--force")
    assert (out / "metrics.json").read_bytes() == before
    assert invoke("sweep", photo, "-r", "5", "--output", out, "--force").exit_code == 0
    assert (out / "metrics.json").read_bytes() != before


def test_sweep_color_and_gray_flag(tmp_path, color_photo):
    result = invoke("sweep", color_photo, "-r", "2,8", "--output", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["image"]["mode"] == "rgb"
    result = invoke("sweep", color_photo, "-r", "2,8", "--gray", "--output", tmp_path / "g")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "g" / "metrics.json").read_text())["image"]["mode"] == "gray"


@pytest.mark.parametrize(
    "ranks,fragment",
    [
        ("0", ">= 1"),
        ("97", "between 1 and 96"),
        ("3,x", "unknown rank criterion"),
        ("3,4x", "not an integer"),
        ("9:2", "start <= stop"),
    ],
)
def test_sweep_bad_ranks(tmp_path, photo, ranks, fragment):
    result = invoke("sweep", photo, "--ranks", ranks, "--output", tmp_path / "o")
    assert_one_line_error(result, EXIT_BAD_INPUT, fragment)
    assert not (tmp_path / "o").exists()


def test_missing_file_and_not_an_image(tmp_path):
    result = invoke("info", tmp_path / "nope.png")
    assert_one_line_error(result, EXIT_FILES, "does not exist")
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    result = invoke("info", fake)
    assert_one_line_error(result, EXIT_BAD_INPUT, "not an image file")


def test_unreachable_url_is_a_network_error():
    result = invoke("info", "http://127.0.0.1:9/x.png", "--timeout", "2")
    assert_one_line_error(result, EXIT_NETWORK, "cannot reach")


def test_reconstruct_writes_image_and_reports_bytes(tmp_path, photo):
    out = tmp_path / "r.png"
    result = invoke("reconstruct", photo, "--rank", "10", "-o", out)
    assert result.exit_code == 0, result.output
    written = load_image(out)
    assert written.shape == (96, 128)
    text = " ".join(result.stdout.split())
    assert f"{photo.stat().st_size:,}" in text
    assert f"{out.stat().st_size:,}" in text
    assert f"{4 * 10 * (96 + 128 + 1):,}" in text
    assert "not a compressed file" in text


@pytest.mark.parametrize(
    "rank,code,fragment",
    [
        ("0", EXIT_BAD_INPUT, "between 1 and 96"),
        ("97", EXIT_BAD_INPUT, "got 97"),
    ],
)
def test_reconstruct_bad_rank(tmp_path, photo, rank, code, fragment):
    result = invoke("reconstruct", photo, "--rank", rank, "-o", tmp_path / "r.png")
    assert_one_line_error(result, code, fragment)
    assert not (tmp_path / "r.png").exists()


def test_reconstruct_never_overwrites_input_or_output_without_force(tmp_path, photo):
    before = photo.read_bytes()
    result = invoke("reconstruct", photo, "--rank", "5", "-o", photo)
    assert_one_line_error(result, EXIT_FILES, "already exists")
    assert photo.read_bytes() == before


def test_reconstruct_usage_error_without_rank(tmp_path, photo):
    result = invoke("reconstruct", photo, "-o", tmp_path / "r.png")
    assert result.exit_code == EXIT_USAGE


def test_info_reports_rank_and_energy(photo):
    result = invoke("info", photo)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    image = load_image(photo)
    assert f"numerical rank │ {np.linalg.matrix_rank(image)}" in text
    assert "99.9 % energy" in text and "128 x 96" in text


def test_info_on_a_large_photo_computes_only_the_top_singular_values(tmp_path, astronaut):
    import skimage.transform

    from svdimage.decomposition import decompose
    from svdimage.ranks.selection import rank_for_energy

    path = tmp_path / "large.png"
    big = skimage.transform.resize(astronaut, (900, 1200), order=1)
    Image.fromarray(np.rint(big * 255).astype(np.uint8)).save(path)
    result = invoke("info", path, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["numerical_rank"] is None and document["singular_values_computed"] < 900
    full = decompose(load_image(path), compute_vectors=False)  # the independent answer
    for percent, fraction in (("90", 0.9), ("99", 0.99), ("99.9", 0.999)):
        assert document["rank_for_energy"][percent] == rank_for_energy(full, fraction)
    complete = json.loads(invoke("info", path, "--json", "--full").stdout)
    assert complete["numerical_rank"] == list(full.numerical_rank())
    assert "--full computes it" in invoke("info", path).stdout


def test_demo_runs_on_bundled_photo(tmp_path):
    result = invoke("demo", "--output", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demo" / "grid.png").exists()
    assert "grid.png" in result.stdout
    result = invoke("demo", "--output", tmp_path / "demo2", "--sample", "nope")
    assert_one_line_error(result, EXIT_BAD_INPUT, "--sample must be one of")


def test_debug_shows_traceback(tmp_path):
    result = invoke("--debug", "info", tmp_path / "nope.png")
    assert result.exit_code != 0
    assert isinstance(result.exception, FileNotFoundError)


def test_animate_command_writes_gif_and_mp4(tmp_path, photo):
    import imageio.v3 as iio

    result = invoke(
        "animate",
        photo,
        "-o",
        tmp_path / "a.gif",
        "--ranks",
        "1:5,10:90:40",
        "--size",
        "300x480",
        "--caption",
        "hello",
    )
    assert result.exit_code == 0, result.output
    assert "8 frames" in result.stdout
    assert iio.imread(tmp_path / "a.gif", index=None).shape[:3] == (8, 480, 300)
    result = invoke("animate", photo, "-o", tmp_path / "a.mp4", "--layout", "side", "--fps", "4")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.mp4").stat().st_size > 0
    assert "73 frames" in result.stdout  # 1..70, 80, 90, the full rank 96


def test_animate_command_default_stops_at_rank_250(tmp_path, monkeypatch):
    """A photo whose full rank is 300: frames 1..70, 80..240, 250, from a rank-250 SVD (the
    complete one is not computed); the frame shows the rank-250 image of a full SVD."""
    import imageio.v3 as iio
    import skimage.data

    from svdimage.cli import explore as explore_commands

    path = tmp_path / "big.png"
    Image.fromarray(skimage.data.astronaut()[:300, :400]).save(path)
    ranks_asked = []
    real = explore_commands.decompose
    monkeypatch.setattr(
        explore_commands,
        "decompose",
        lambda *a, **k: ranks_asked.append(k.get("rank")) or real(*a, **k),
    )
    result = invoke("animate", path, "-o", tmp_path / "a.gif", "--size", "200x320")
    assert result.exit_code == 0, result.output
    assert "88 frames" in result.stdout and ranks_asked == [250]
    frames = iio.imread(tmp_path / "a.gif", index=None)
    assert frames.shape[0] == 88


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["--ranks", "1:x"], EXIT_BAD_INPUT, "not an integer"),
        (["--ranks", "5:2"], EXIT_BAD_INPUT, "start <= stop"),
        (["--ranks", "1,500"], EXIT_BAD_INPUT, "between 1 and 96"),
        (["--size", "big"], EXIT_BAD_INPUT, "--size must look like"),
        (["--layout", "grid"], EXIT_BAD_INPUT, "--layout"),
    ],
)
def test_animate_command_bad_options(tmp_path, photo, args, code, fragment):
    result = invoke("animate", photo, "-o", tmp_path / "a.mp4", *args)
    assert_one_line_error(result, code, fragment)
    assert not (tmp_path / "a.mp4").exists()


def test_animate_command_bad_outputs(tmp_path, photo):
    result = invoke("animate", photo, "-o", tmp_path / "a.avi")
    assert_one_line_error(result, EXIT_BAD_INPUT, ".mp4 or .gif")
    (tmp_path / "plain").write_bytes(b"")
    result = invoke("animate", photo, "-o", tmp_path / "plain" / "a.mp4")
    assert_one_line_error(result, EXIT_FILES, "is a file, not a folder")
    existing = tmp_path / "old.gif"
    existing.write_bytes(b"keep me")
    result = invoke("animate", photo, "-o", existing, "--ranks", "1")
    assert_one_line_error(result, EXIT_FILES, "already exists")
    assert existing.read_bytes() == b"keep me"


def test_choose_with_criterion_explains_rank_and_neighbour(photo):
    from svdimage import decompose
    from svdimage.ranks.selection import rank_for_psnr

    svd = decompose(load_image(photo))
    k = rank_for_psnr(svd, 30)
    result = invoke("choose", photo, "--psnr", "30")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"rank {k}: PSNR") and "(target 30)" in lines[0]
    assert lines[1].startswith(f"rank {k - 1}: PSNR") and "falls short" in lines[1]


def test_choose_storage_budget_and_knee(photo):
    per_rank = 4 * (96 + 128 + 1)
    result = invoke("choose", photo, "--bytes", str(7 * per_rank + 5))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("rank 7:") and "rank 8:" in result.stdout
    assert "does not fit" in result.stdout
    assert invoke("choose", photo, "--knee").exit_code == 0


def test_choose_without_criterion_prints_recommendations(photo):
    result = invoke("choose", photo)
    assert result.exit_code == 0, result.output
    text = result.stdout
    for label in ("knee", "energy 99%", "PSNR 35 dB", "SSIM 0.95"):
        assert label in text
    import re

    assert "Bar: SSIM >= 0.95" in text
    assert re.search(r"(dB|%|0\.9\d|knee) \*\s", text)  # one row marked visually lossless


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["--psnr", "30", "--knee"], EXIT_USAGE, "--psnr and --knee do not go together"),
        (["--psnr", "200"], EXIT_BAD_INPUT, "no rank up to 96 reaches"),
        (["--bytes", "10"], EXIT_BAD_INPUT, "even rank 1"),
    ],
)
def test_choose_bad_criteria(photo, args, code, fragment):
    assert_one_line_error(invoke("choose", photo, *args), code, fragment)


@pytest.mark.parametrize(
    "args",
    [
        ["choose", "--bytes", "10", "--storage", "png"],
        ["compress", "-o", "x.svdz", "--color", "hsv"],
    ],
)
def test_choices_are_checked_by_the_parser(photo, args):
    """Choices are enums: a value outside them is a usage error (exit 2) naming the option
    and the values it takes."""
    result = invoke(args[0], photo, *args[1:])
    assert result.exit_code == EXIT_USAGE
    assert args[-2] in result.stderr and "is not one of" in result.stderr


def test_denoise_with_added_noise_reports_psnr_gain(tmp_path, photo):
    result = invoke(
        "denoise",
        photo,
        "-o",
        tmp_path / "d.png",
        "--add-noise",
        "0.1",
        "--seed",
        "3",
        "--noisy-output",
        tmp_path / "n.png",
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    gain = float(text.split("dB (")[1].split(" dB)")[0])
    assert gain > 0
    assert load_image(tmp_path / "d.png").shape == (96, 128)
    assert (tmp_path / "n.png").exists()
    result = invoke("denoise", photo, "-o", tmp_path / "d.png")
    assert_one_line_error(result, EXIT_FILES, "already exists")


def test_sweep_and_reconstruct_accept_criteria(tmp_path, photo):
    from svdimage import decompose
    from svdimage.ranks.selection import rank_for_energy

    k = rank_for_energy(decompose(load_image(photo)), 0.99)
    result = invoke("sweep", photo, "--ranks", "3,energy=0.99", "--output", tmp_path / "s")
    assert result.exit_code == 0, result.output
    ranks = [r["rank"] for r in json.loads((tmp_path / "s" / "metrics.json").read_text())["ranks"]]
    assert ranks == sorted({3, k})
    result = invoke("reconstruct", photo, "--rank", "energy=0.99", "-o", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert f"chose rank {k}" in result.stdout
    result = invoke("reconstruct", photo, "--rank", "speed=3", "-o", tmp_path / "x.png")
    assert_one_line_error(result, EXIT_BAD_INPUT, "unknown rank criterion")


def test_inspect_shows_the_finer_chroma_means_of_a_low_rate_colour_file(tmp_path, color_photo):
    out = tmp_path / "low.svdz"
    result = invoke("compress", color_photo, "-o", out, "--quality", "10", "--tiles", "8")
    assert result.exit_code == 0, result.output
    result = invoke("inspect", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "version 2.3, checksums OK" in text
    lines = [line for line in result.stdout.splitlines() if line.startswith("plane ")]
    assert "means on step" not in lines[0]  # luma keeps 2.0's means
    assert all("means on step" in line for line in lines[1:])


def test_compress_reports_honest_sizes_and_jpeg(tmp_path, photo):
    out = tmp_path / "p.svdz"
    result = invoke("compress", photo, "-o", out, "--quality", "60", "--tiles", "8")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert f"{out.stat().st_size:,}" in text and f"{photo.stat().st_size:,}" in text
    assert "JPEG quality" in text and "PSNR" in text
    result = invoke("decompress", out, "-o", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert load_image(tmp_path / "p.png").shape == (96, 128)
    result = invoke("inspect", out)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "version 2.3, checksums OK" in text
    assert "128 x 96 gray, SVD of each plane's 8x8 patch matrix" in text
    assert f"{out.stat().st_size:,} in all" in text and "192 patches," in text
    assert "components of a shared basis" in text


def test_compress_targets_and_rank_criteria(tmp_path, photo):
    from svdimage.codec import inspect

    result = invoke("compress", photo, "-o", tmp_path / "s.svdz", "--bytes", "3000")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.svdz").stat().st_size <= 3000
    result = invoke("compress", photo, "-o", tmp_path / "k.svdz", "--rank", "energy=0.99")
    assert result.exit_code == 0, result.output
    info = inspect((tmp_path / "k.svdz").read_bytes())
    assert info.version == (3, 0) and "chose rank" in result.stdout
    chosen = int(result.stdout.split("chose rank")[1].split(".")[0])
    assert info.header["planes"][0]["components"] == chosen  # the rank means the rank
    result = invoke("compress", photo, "-o", tmp_path / "g.svdz", "--global", "--rank", "12")
    assert result.exit_code == 0, result.output
    assert inspect((tmp_path / "g.svdz").read_bytes()).tile_ranks[0]["components"] == 12


def test_decompress_progressive_and_tampered(tmp_path, photo):
    out = tmp_path / "p.svdz"
    assert invoke("compress", photo, "-o", out, "--global").exit_code == 0
    result = invoke(
        "decompress", out, "-o", tmp_path / "half.png", "--max-bytes", str(out.stat().st_size // 2)
    )
    assert result.exit_code == 0, result.output
    data = bytearray(out.read_bytes())
    data[-6] ^= 0xFF
    bad = tmp_path / "bad.svdz"
    bad.write_bytes(bytes(data))
    result = invoke("decompress", bad, "-o", tmp_path / "bad.png")
    assert_one_line_error(result, EXIT_BAD_INPUT, "checksum mismatch")
    assert not (tmp_path / "bad.png").exists()
    bad.write_bytes(b"\x93SVDZ")
    assert_one_line_error(invoke("inspect", bad), EXIT_BAD_INPUT, "truncated file")
    assert_one_line_error(invoke("inspect", tmp_path / "none.svdz"), EXIT_FILES, "does not exist")


def test_decompress_writes_the_decoded_image_in_8_bits(tmp_path, color_photo):
    out = tmp_path / "c.svdz"
    assert invoke("compress", color_photo, "-o", out, "--quality", "60").exit_code == 0
    assert invoke("decompress", out, "-o", tmp_path / "c.png").exit_code == 0
    with Image.open(tmp_path / "c.png") as written:
        np.testing.assert_array_equal(np.asarray(written), to_uint8(codec.load(out)))


def test_compress_refuses_existing_output(tmp_path, photo):
    out = tmp_path / "p.svdz"
    out.write_bytes(b"keep")
    assert_one_line_error(invoke("compress", photo, "-o", out), EXIT_FILES, "already exists")
    assert out.read_bytes() == b"keep"


def test_compress_a_folder_writes_one_file_per_image_and_reports_failures(
    tmp_path, photo, color_photo
):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    (folder / "b.jpg").write_bytes(color_photo.read_bytes())
    (folder / "notes.txt").write_text("not an image, not picked up")
    out = tmp_path / "out"
    result = invoke("compress", folder, "-o", out, "--quality", "50")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.svdz", "b.svdz"]
    assert "2 of 2 images compressed" in result.stdout
    (folder / "c.png").write_text("corrupt")
    result = invoke("compress", folder, "-o", out, "--quality", "50")
    assert result.exit_code in (EXIT_FILES, EXIT_BAD_INPUT)
    assert "a.svdz' already exists" in result.stderr and "c.png" in result.stderr
    assert "Traceback" not in result.output
    result = invoke("compress", folder / "a.png", folder / "b.jpg", "-o", tmp_path / "two")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "two").iterdir())) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(invoke("compress", empty, "-o", out), EXIT_FILES, "no image files")


def test_choose_denoise_shows_threshold_and_neighbouring_sigmas(photo):
    from svdimage import decompose
    from svdimage.denoising import optimal_hard_threshold, optimal_hard_threshold_rank

    svd = decompose(load_image(photo))
    k = optimal_hard_threshold_rank(svd)
    tau = optimal_hard_threshold(svd)[0]
    result = invoke("choose", photo, "--denoise")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert text.startswith(f"rank {k}:") and f"τ = {tau:.4g}" in text
    assert svd.s[k - 1] > tau >= svd.s[k]


def test_tiny_images_work_without_ssim(tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.arange(9, dtype=np.uint8).reshape(3, 3) * 20).save(tiny)
    result = invoke("sweep", tiny, "--ranks", "1,3", "--output", tmp_path / "s")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "s" / "metrics.json").read_text())["ranks"]
    assert rows[0]["ssim"] is None and rows[1]["relative_error"] < 1e-6
    result = invoke("compress", tiny, "-o", tmp_path / "t.svdz")
    assert result.exit_code == 0, result.output


# -- what the commands mean -----------------------------------------------------------
def test_sweep_names_the_criterion_behind_each_rank(tmp_path, photo):
    from svdimage import decompose
    from svdimage.ranks.selection import knee_rank, rank_for_psnr

    out = tmp_path / "s"
    result = invoke("sweep", photo, "--ranks", "5,psnr=30,knee", "--output", out)
    assert result.exit_code == 0, result.output
    svd = decompose(load_image(photo))
    expected = {5: "", rank_for_psnr(svd, 30.0): "psnr=30", knee_rank(svd): "knee"}
    assert len(expected) == 3  # three different ranks on this photo
    rows = json.loads((out / "metrics.json").read_text())["ranks"]
    assert {row["rank"]: row["criterion"] for row in rows} == expected
    csv_lines = (out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].split(",")[:2] == ["rank", "criterion"]
    assert any(line.split(",")[1] == "psnr=30" for line in csv_lines[1:])
    table = [line for line in result.stdout.splitlines() if "knee" in line]
    assert table and str(knee_rank(svd)) in table[0]


def test_sweep_puts_one_rank_picked_twice_on_one_row(tmp_path, photo):
    result = invoke(
        "sweep", photo, "--ranks", "energy=0.9,energy=0.9000001", "--output", tmp_path / "s"
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "s" / "metrics.json").read_text())["ranks"]
    assert len(rows) == 1 and rows[0]["criterion"] == "energy=0.9; energy=0.9"


def test_choose_storage_svdz_counts_real_files_and_labels_them(photo):
    from svdimage import decompose
    from svdimage.ranks.selection import rank_for_storage
    from svdimage.ranks.storage import svdz_bytes

    svd = decompose(load_image(photo))
    budget = svdz_bytes(svd, 10)
    result = invoke("choose", photo, "--bytes", budget, "--storage", "svdz")
    assert result.exit_code == 0, result.output
    k = rank_for_storage(svd, max_bytes=budget, storage="svdz")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"rank {k}: bytes (.svdz file) {svdz_bytes(svd, k):,}")
    assert lines[1].startswith(f"rank {k + 1}: bytes (.svdz file)") and "does not fit" in lines[1]
    result = invoke("choose", photo, "--ratio", "20", "--storage", "svdz")
    assert result.exit_code == 0, result.output
    assert "ratio to raw 8-bit (.svdz file)" in result.stdout and ".svdzs" not in result.stdout


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["--psnr", "30", "--bytes", "1000"], EXIT_USAGE, "--psnr and --bytes do not go together"),
        (["--quality", "50", "--bpp", "1"], EXIT_USAGE, "--quality and --bpp do not go together"),
        (["--rank", "9999"], EXIT_BAD_INPUT, "rank must be between 1 and 96 for a 128x96 image"),
        (["--rank", "0"], EXIT_BAD_INPUT, "rank must be between 1 and 96"),
        (["--rank", "2.5"], EXIT_BAD_INPUT, "neither a whole number nor a criterion"),
    ],
)
def test_compress_refuses_conflicts_and_bad_ranks_like_reconstruct(
    tmp_path, photo, args, code, fragment
):
    assert_one_line_error(
        invoke("compress", photo, "-o", tmp_path / "x.svdz", *args), code, fragment
    )
    assert not (tmp_path / "x.svdz").exists()
    if "--rank" in args and code == EXIT_BAD_INPUT and args[1] != "2.5":
        result = invoke("reconstruct", photo, "-o", tmp_path / "x.png", *args)
        assert_one_line_error(result, EXIT_BAD_INPUT, fragment)


def test_json_outputs_are_one_document_with_the_librarys_numbers(tmp_path, photo):
    from svdimage import codec, decompose
    from svdimage.ranks.selection import rank_for_energy, rank_for_psnr

    array = load_image(photo)
    svd = decompose(array)
    result = invoke("info", photo, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert (info["width"], info["height"], info["mode"]) == (128, 96, "gray")
    assert info["numerical_rank"] == svd.numerical_rank()
    assert info["sigma1"] == pytest.approx(float(svd.s[0]), rel=1e-6)
    assert info["rank_for_energy"]["99"] == rank_for_energy(svd, 0.99)

    result = invoke("choose", photo, "--psnr", "30", "--json")
    assert result.exit_code == 0, result.output
    choice = json.loads(result.stdout)
    assert choice["rank"] == rank_for_psnr(svd, 30.0) and choice["value"] >= 30
    assert choice["neighbour"]["rank"] == choice["rank"] - 1 and choice["neighbour"]["value"] < 30
    result = invoke("choose", photo, "--json")
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)["rows"]
    assert sum(row["smallest_visually_lossless"] for row in table) <= 1

    out = tmp_path / "p.svdz"
    result = invoke("compress", photo, "-o", out, "--quality", "60", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["rows"]}
    assert rows[".svdz"]["nbytes"] == out.stat().st_size
    decoded = np.rint(np.clip(codec.load(out), 0, 1) * 255) / 255  # its 8-bit pixels
    from svdimage.metrics import peak_signal_noise_ratio

    assert rows[".svdz"]["psnr"] == pytest.approx(peak_signal_noise_ratio(array, decoded))
    assert rows["JPEG"]["nbytes"] <= rows[".svdz"]["nbytes"]

    result = invoke("inspect", out, "--json")
    assert result.exit_code == 0, result.output
    inspected = json.loads(result.stdout)
    assert inspected["version"] == "2.3" and inspected["file_bytes"] == out.stat().st_size
    assert inspected["header"]["shape"] == [96, 128] and inspected["checksums"] == "ok"
    assert inspected["header_bytes"] + inspected["payload_bytes"] + 27 == out.stat().st_size


def test_every_command_creates_missing_output_folders(tmp_path, photo):
    result = invoke("reconstruct", photo, "-k", "5", "-o", tmp_path / "a" / "b" / "r.png")
    assert result.exit_code == 0, result.output
    result = invoke("sweep", photo, "-r", "5", "--output", tmp_path / "c" / "d")
    assert result.exit_code == 0, result.output
    result = invoke("compress", photo, "-o", tmp_path / "e" / "p.svdz")
    assert result.exit_code == 0, result.output
    result = invoke("decompress", tmp_path / "e" / "p.svdz", "-o", tmp_path / "f" / "p.png")
    assert result.exit_code == 0, result.output
    for path in ("a/b/r.png", "c/d/grid.png", "e/p.svdz", "f/p.png"):
        assert (tmp_path / path).is_file()


def test_help_shows_readable_metavars():
    for command in ("sweep", "compress", "choose", "reconstruct", "animate", "inspect"):
        result = invoke(command, "--help")
        assert result.exit_code == 0, result.output
        assert "{" not in result.stdout and "<list" not in result.stdout
        assert "<str>" not in result.stdout


def test_animate_with_one_rank_prints_no_warning(tmp_path, photo):
    result = invoke("animate", photo, "-o", tmp_path / "one.gif", "--ranks", "1")
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and "warn" not in result.stderr.lower()


def test_messages_name_cli_options_that_exist(tmp_path, photo):
    import re as regex

    from svdimage.cli._app import CLI_FIXES

    result = invoke("info", photo, "--max-pixels", "100")
    assert_one_line_error(result, EXIT_BAD_INPUT, "raise --max-pixels")
    result = invoke("reconstruct", photo, "-k", "3", "-o", photo)
    assert_one_line_error(result, EXIT_FILES, "pass --force")
    result = invoke("info", "ftp://example.org/a.png")
    assert_one_line_error(result, EXIT_BAD_INPUT, "only http:// and https://")
    # Every option a translated message names exists on every command that loads an image
    # (the messages come from loading) or writes an output (--force).
    named = {m for _, cli in CLI_FIXES for m in regex.findall(r"--[a-z-]+", cli)}
    assert "--max-bytes" in invoke("decompress", "--help").stdout  # the prefix message's
    named -= {"--max-bytes"}
    assert named == {"--force", "--max-pixels", "--timeout"}
    for command in ("sweep", "reconstruct", "info", "choose", "denoise", "animate", "compress"):
        help_text = invoke(command, "--help").stdout
        for option in named - ({"--force"} if command in ("info", "choose") else set()):
            assert option in help_text, (command, option)
    for command in ("decompress", "inspect"):
        assert "--max-pixels" in invoke(command, "--help").stdout


def test_an_output_that_is_a_folder_is_called_a_folder(tmp_path, photo):
    for force in ([], ["--force"]):
        result = invoke("reconstruct", photo, "-k", "3", "-o", tmp_path, *force)
        assert_one_line_error(result, EXIT_FILES, "is a folder, not a file")


# -- notes, --quiet, memory, signals (issue 11, items 6, 7, 12, 13) --------------------------
@pytest.fixture
def transparent_png(tmp_path):
    rgba = np.zeros((32, 40, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, 20:, 3] = 255
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    return path


def test_conversions_are_one_note_line_and_quiet_hides_them(transparent_png):
    result = invoke("info", transparent_png)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"svdimage: note: {transparent_png}: its transparency was composited on a white background."
    ]
    quiet = invoke("--quiet", "info", transparent_png)
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout == result.stdout


def test_quiet_and_debug_may_follow_the_command(transparent_png):
    import subprocess
    import sys

    command = [sys.executable, "-m", "svdimage", "info", str(transparent_png), "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "" and "rank" in done.stdout


def test_images_that_need_more_memory_than_there_is_exit_3(photo, monkeypatch):
    monkeypatch.setattr("svdimage._validation.available_memory", lambda: 100_000)
    result = invoke("info", photo)
    assert_one_line_error(result, EXIT_BAD_INPUT, "needs about", "more than the memory available")


def test_running_out_of_memory_later_is_exit_3_with_a_clear_line(photo, monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("svdimage.decomposition.decompose", exhausted)
    result = invoke("info", photo)
    assert_one_line_error(result, EXIT_BAD_INPUT, "not enough memory")


def test_an_unwritable_output_folder_is_refused_before_the_work(tmp_path, photo, monkeypatch):
    import os

    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode)
    )
    monkeypatch.setattr("svdimage.cli._app.load", _never_called)
    result = invoke("compress", photo, "-o", locked / "out.svdz")
    assert_one_line_error(result, EXIT_FILES, str(locked / "out.svdz"), "not writable")


def _never_called(*args, **kwargs):
    raise AssertionError("the image was loaded before the output was checked")


@pytest.mark.parametrize("signum,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_the_write_leaves_nothing_behind(tmp_path, camera, signum, code):
    import signal
    import subprocess
    import sys
    import time

    source = tmp_path / "big.png"
    Image.fromarray(np.rint(np.tile(camera, (2, 2)) * 255).astype(np.uint8)).save(source)
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "svdimage", "animate", str(source)]
    command += ["-o", str(out / "anim.mp4"), "--ranks", "1:200"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(out.iterdir()) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the command ended before its temporary file appeared"
    time.sleep(0.3)  # well inside the write: frames are being encoded
    process.send_signal(getattr(signal, signum))
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stderr.decode().strip().splitlines()[-1] == (
        f"svdimage: stopped by {signum}; no partial output was left."
    )
    assert list(out.iterdir()) == []


def test_decoder_warnings_and_failures_are_one_line_each():
    from pathlib import Path

    images = Path(__file__).parent / "data" / "images"
    warned = invoke("info", images / "pillow-tag-warning.tif")
    assert warned.exit_code == 0, warned.output
    assert warned.stderr.splitlines() == [
        f"svdimage: note: {images / 'pillow-tag-warning.tif'}: Tag data larger than file. "
        "Skipping tag 65000"
    ]
    failed = invoke("info", images / "libtiff-incompatible-type.tif")
    assert_one_line_error(failed, EXIT_BAD_INPUT, "truncated or corrupt", "libtiff: TIFF")


def test_a_file_declaring_more_work_than_its_payload_holds_is_one_line(tmp_path):
    import json as _json
    import struct
    import zlib

    from svdimage.codec._entropy import compress_symbols
    from svdimage.codec._format import MAGIC

    tiles = 500 * 500
    symbols = np.zeros(2 * tiles, dtype=np.int64)
    symbols[tiles:] = 8  # every 8x8 tile claims rank 8, and no component follows
    plane = {"shape": [4000, 4000], "step": 0.01, "dc_step": 0.01, "max_rank": 8}
    header = {"shape": [4000, 4000], "color": "gray", "chroma": "444", "tile": 8}
    header |= {"planes": [plane], "coder": "lzma-varint", "order": "rank-major"}
    text, payload = _json.dumps(header).encode(), compress_symbols(symbols)
    head = MAGIC + bytes((1, 1)) + struct.pack("<I", len(text)) + text
    data = head + struct.pack("<I", zlib.crc32(head)) + struct.pack("<Q", len(payload))
    data += payload + struct.pack("<I", zlib.crc32(payload))
    path = tmp_path / "claims.svdz"
    path.write_bytes(data)
    for command in ("inspect", "decompress"):
        args = [command, path] + (["-o", tmp_path / "out.png"] if command == "decompress" else [])
        assert_one_line_error(invoke(*args), EXIT_BAD_INPUT, "tile ranks declare")
    assert not (tmp_path / "out.png").exists()


def test_explore_writes_one_page_and_never_overwrites(tmp_path, color_photo):
    out = tmp_path / "page.html"
    result = invoke("explore", color_photo, "-o", out, "--max-rank", 20, "--no-storage")
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.stdout and str(out) in result.stdout.replace("\n", "")
    text = out.read_text(encoding="utf-8")
    assert '"maxRank":20' in text and "color.jpg" in text
    before = out.stat().st_mtime_ns
    assert_one_line_error(invoke("explore", color_photo, "-o", out), EXIT_FILES, "--force")
    assert out.stat().st_mtime_ns == before
    assert invoke("explore", color_photo, "-o", out, "--max-rank", 5, "--force").exit_code == 0
    assert '"maxRank":5' in out.read_text(encoding="utf-8")


def test_explore_bad_input_is_one_line(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert_one_line_error(
        invoke("explore", broken, "-o", tmp_path / "x.html"), EXIT_BAD_INPUT, "broken.png"
    )
    assert not (tmp_path / "x.html").exists()


# -- progress (issue 10): steps are shown, or logged one line each, or silenced ---------------
def test_steps_are_logged_one_line_each_when_stderr_is_not_a_terminal(tmp_path, photo, monkeypatch):
    from svdimage.cli._app import StepDisplay

    monkeypatch.setattr(StepDisplay, "LOG_SECONDS", 0.0)  # every step, however short
    result = invoke("choose", photo, "--ssim", "0.9")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "svdimage: complete SVD of 128x96: 1 of 1 channels in " in "\n".join(lines)
    search = [line for line in lines if line.startswith("svdimage: searching the rank for")]
    assert len(search) == 1 and " ranks measured in " in search[0]
    assert all(line.startswith("svdimage: ") and line.endswith(" s") for line in lines)
    quiet = runner.invoke(app, ["--quiet", "choose", str(photo), "--ssim", "0.9"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_batch_modes_log_images_not_their_steps(tmp_path, photo, monkeypatch):
    from svdimage.cli._app import StepDisplay

    monkeypatch.setattr(StepDisplay, "LOG_SECONDS", 0.0)
    second = tmp_path / "second.png"
    second.write_bytes(photo.read_bytes())
    result = invoke(
        "reconstruct", photo, second, "--rank", "5", "-o", tmp_path / "out", "--workers", "0"
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # each image's SVD and writing are not logged ...
    assert result.stdout.count(" -> ") == 2  # ... its result line is


# -- one grammar: the same option means the same thing in every command -----------------

#: A value for each option of the conflict table (flags take none).
_OPTION_VALUES = {
    "--quality": "50",
    "--psnr": "30",
    "--size": "3000",
    "--bpp": "1",
    "--tiles": "8",
    "--global": None,
    "--rank": "5",
    "--workers": "1",
    "--scheduler": "tcp://127.0.0.1:1",
    "--max-error": "0.1",
    "--energy": "0.9",
    "--ssim": "0.9",
    "--ratio": "4",
    "--bytes": "3000",
    "--percent": "10",
    "--knee": None,
    "--denoise": None,
    "--resume": None,
    "--force": None,
}


def _conflicting_pairs():
    from itertools import combinations

    from svdimage.cli._app import CONFLICTS

    for command, groups in CONFLICTS.items():
        for group in groups:
            for first, second in combinations(group, 2):
                yield command, first, second


@pytest.mark.parametrize("command,first,second", list(_conflicting_pairs()))
def test_every_pair_of_conflicting_options_exits_2_with_one_line(
    tmp_path, photo, command, first, second
):
    """The conflict table, pair by pair: exit 2, one line naming both, nothing written."""
    args = [command, photo]
    if command in ("compress", "sweep", "reconstruct", "denoise", "survey"):
        suffix = {"compress": ".svdz", "reconstruct": ".png", "denoise": ".png"}.get(command, "")
        args += ["-o", tmp_path / f"out{suffix}"]
    if command == "reconstruct" and "--rank" not in (first, second):
        args += ["--rank", "5"]
    for option in (first, second):
        args += [option] if _OPTION_VALUES[option] is None else [option, _OPTION_VALUES[option]]
    result = invoke(*args)
    assert_one_line_error(result, EXIT_USAGE, first, second, "do not go together")
    assert not list(tmp_path.glob("out*"))


def test_q_is_quiet_everywhere_and_quality_is_spelled_out(tmp_path, photo):
    """``-q`` is only --quiet, before or after the command; compress's quality is --quality."""
    import subprocess
    import sys

    out = tmp_path / "x.svdz"
    run = [sys.executable, "-m", "svdimage", "compress", str(photo), "-q", "-o", str(out)]
    done = subprocess.run([*run, "--quality", "50"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.exists() and done.stderr == ""
    result = invoke("compress", photo, "-o", tmp_path / "y.svdz", "-q", "50")
    assert result.exit_code == EXIT_USAGE and "No such option: -q" in result.stderr


def test_compress_refuses_an_output_that_is_not_svdz(tmp_path, photo):
    assert_one_line_error(
        invoke("compress", photo, "-o", tmp_path / "out.png"), EXIT_USAGE, "must end in .svdz"
    )
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("command", ["sweep", "demo"])
def test_old_out_spelling_still_works_and_says_it_is_deprecated(tmp_path, photo, command):
    """-o/--output on every command; sweep's and demo's old --out is hidden and warns."""
    args = [command, photo] if command == "sweep" else [command, "--sample", "camera"]
    result = invoke(*args, "--out", tmp_path / "old")
    assert result.exit_code == 0, result.output
    assert "--out is deprecated" in result.stderr and "use --output" in result.stderr
    assert (tmp_path / "old" / "metrics.csv").exists()
    result = invoke(*args, "--output", tmp_path / "a", "--out", tmp_path / "b")
    assert_one_line_error(result, EXIT_USAGE, "--out is the old spelling of --output")


def test_a_missing_image_in_a_batch_is_reported_and_skipped(tmp_path, photo):
    """compress a.png missing.png -o out/: the good image is compressed, the missing one is
    one failed line, exit 3 (as the help says), not an abort of the whole batch."""
    result = invoke("compress", photo, tmp_path / "missing.png", "-o", tmp_path / "out")
    assert result.exit_code == 3, result.output
    assert (tmp_path / "out" / "photo.svdz").exists()
    assert "missing.png" in result.stderr


def test_criterion_names_are_checked_where_the_criterion_is_built(photo):
    """`--ranks PSNR2=35` is refused with the known names, never answered as something else."""
    result = invoke("sweep", photo, "-o", "unused", "--ranks", "PSNR2=35")
    assert_one_line_error(result, EXIT_BAD_INPUT, "unknown rank criterion", "psnr=DB, ssim=V")


def test_reconstruct_prints_the_error_of_the_image_it_wrote(tmp_path, photo):
    """The printed relative error is that of the written (clipped) image; the SVD's kept
    triplets are exact, so it equals the optimal error to the clipping."""
    from svdimage import decompose, metrics

    out = tmp_path / "r.png"
    result = invoke("reconstruct", photo, "--rank", "10", "-o", out)
    assert result.exit_code == 0, result.output
    image = load_image(photo)
    svd = decompose(image)
    written = metrics.relative_error(image, svd.reconstruct(10))
    assert f"{written:.4f}" in result.stdout
    assert f"{float(svd.relative_error(10)):.4f}" in result.stdout


def test_a_batch_error_names_the_failing_file_once(tmp_path, photo):
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    result = invoke("compress", photo, notes, "-o", tmp_path / "out")
    assert result.exit_code == 3, result.output
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("svdimage: error:")]
    assert line.count(str(notes)) == 1 and "is not an image file" in line


def test_singular_values_of_a_list_keep_their_trailing_zeros():
    from svdimage.cli._app import fmt_sigma

    assert [fmt_sigma(v) for v in (319.0, 243.2, 175.5)] == ["319.0", "243.2", "175.5"]
    assert fmt_sigma(1234.0) == "1234"


@pytest.mark.parametrize(
    "args",
    [
        ["compress", "-o", "{tmp}/c.svdz"],
        ["choose"],
        ["info"],
        ["sweep", "-o", "{tmp}/s", "--ranks", "3,psnr=30,knee"],
        ["reconstruct", "--rank", "ssim=0.9", "-o", "{tmp}/r.png"],
    ],
)
def test_tables_fit_80_columns(tmp_path, color_photo, args):
    """Every table row a command prints fits an 80-column terminal (no row wraps); lines
    that name a path are printed whole, however long."""
    args = [a.format(tmp=tmp_path) for a in args]
    result = invoke(args[0], color_photo, *args[1:])
    assert result.exit_code == 0, result.output
    table_lines = [
        ln
        for ln in result.stdout.splitlines()
        if ln[:1] in "┃│┏┡└ " and ln.strip() and str(tmp_path) not in ln
    ]
    assert table_lines and all(len(ln) <= 80 for ln in table_lines)
    rows = [ln.split("│") for ln in table_lines if ln.count("│") >= 3]
    assert all(cells[2].strip() for cells in rows)  # a wrapped row leaves its numbers empty


def test_compress_byte_budget_is_bytes_as_in_choose(tmp_path, photo):
    """A byte budget is --bytes in every command (animate's --size is a frame size);
    compress's old --size still works, hidden, and says so."""
    result = invoke("compress", photo, "-o", tmp_path / "a.svdz", "--bytes", "3000")
    assert result.exit_code == 0 and (tmp_path / "a.svdz").stat().st_size <= 3000
    result = invoke("compress", photo, "-o", tmp_path / "b.svdz", "--size", "3000")
    assert result.exit_code == 0 and "--size is deprecated" in result.stderr
    assert (tmp_path / "a.svdz").read_bytes() == (tmp_path / "b.svdz").read_bytes()


def test_explore_measures_files_with_compare_files_and_the_old_storage_flag_warns(tmp_path, photo):
    """--storage means how budgets count bytes (choose); explore's on/off switch for real
    files is --compare-files, and its old --storage/--no-storage still works, with a warning."""
    result = invoke("explore", photo, "-o", tmp_path / "a.html", "--no-compare-files")
    assert result.exit_code == 0, result.output
    assert "deprecated" not in result.stderr
    result = invoke("explore", photo, "-o", tmp_path / "b.html", "--no-storage")
    assert result.exit_code == 0, result.output
    assert "--storage is deprecated" in result.stderr and "--compare-files" in result.stderr
    assert (tmp_path / "b.html").stat().st_size > 0


# -- hostile names, special files, usage errors (round 3) --------------------------------------
#: A file name holding what a printer, a template or a terminal could take for its own: Rich
#: markup (a closing tag, through the folder "d["), the explorer's placeholders, HTML, quotes,
#: a newline, an ANSI escape and a C1 control (U+009B, the 8-bit CSI).
HOSTILE = "x]{{SCRIPT}}{{DATA}}<b>'\"\n\x1b[31m\x9b.png"


@pytest.fixture
def hostile_photo(tmp_path, camera):
    folder = tmp_path / "d["
    folder.mkdir()
    path = folder / HOSTILE
    Image.fromarray(np.rint(camera[100:164, 200:280] * 255).astype(np.uint8)).save(
        path, format="PNG"
    )
    return path


HOSTILE_COMMANDS = {
    "info": lambda src, out: ["info", src],
    "choose": lambda src, out: ["choose", src, "--energy", "0.9"],
    "sweep": lambda src, out: ["sweep", src, "-o", out / "d[" / "sweep", "-r", "3,10"],
    "reconstruct": lambda src, out: ["reconstruct", src, "-k", "5", "-o", out / "d[" / "r].png"],
    "denoise": lambda src, out: ["denoise", src, "-o", out / "d[" / "n].png"],
    "compress": lambda src, out: ["compress", src, "-o", out / "d[" / f"{HOSTILE}.svdz"],
    "explore": lambda src, out: ["explore", src, "-o", out / "d[" / "e].html"],
    "animate": lambda src, out: ["animate", src, "-o", out / "d[" / "a].gif", "-r", "1:3"],
    "survey": lambda src, out: ["survey", src, "-o", out / "d[" / "survey]", "--workers", "0"],
}


@pytest.mark.parametrize("command", sorted(HOSTILE_COMMANDS))
def test_hostile_file_names_are_printed_as_named_through_every_command(
    tmp_path, hostile_photo, command
):
    # Reproducer: a path holding "[/x]" made these commands exit 1 with "internal error:
    # closing tag '[/x]' ... doesn't match any open tag", after writing their outputs.
    result = invoke(*HOSTILE_COMMANDS[command](hostile_photo, tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    if command in ("info", "sweep", "compress"):  # the commands whose output names the image
        shown = str(hostile_photo).replace("\n", "\\n").replace("\x1b", "\\x1b")
        shown = shown.replace("\x9b", "\\x9b")
        assert "".join(shown.split()) in "".join(result.stdout.split())  # titles wrap
    assert "\x1b" not in result.output and "\x9b" not in result.output


def test_a_hostile_svdz_name_through_inspect_and_decompress(tmp_path, hostile_photo):
    target = tmp_path / "d[" / f"{HOSTILE}.svdz"
    assert invoke("compress", hostile_photo, "-o", target).exit_code == 0
    for args in (["inspect", target], ["inspect", "--json", target]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.stdout and "\x9b" not in result.stdout
    document = json.loads(invoke("inspect", "--json", target).stdout)
    assert document["file"] == str(target)  # JSON escapes; the name comes back whole
    result = invoke("decompress", target, "-o", tmp_path / "d[" / "[/y].png")
    assert result.exit_code == 0 and "[/y].png" in result.stdout, result.output


def test_markup_in_a_name_is_shown_not_applied(tmp_path, photo):
    named = tmp_path / "[bold]photo.png"
    named.write_bytes(photo.read_bytes())
    result = invoke("info", named)
    assert result.exit_code == 0 and "[bold]photo.png" in result.stdout


def test_explorer_placeholders_in_a_name_stay_text(tmp_path, hostile_photo):
    # Reproducer: "{{SCRIPT}}.png" put the page's whole script into <title> and <h1>.
    page = tmp_path / "page.html"
    assert invoke("explore", hostile_photo, "-o", page).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert html.count("window.svdimage = {") == 1 and html.count('"maxRank"') == 1
    title = html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "{{SCRIPT}}{{DATA}}&lt;b&gt;" in title


def test_inspect_json_escapes_control_characters_of_header_keys(tmp_path):
    # Reproducer: an "x-" key holding U+009B was written raw by inspect --json.
    from svdimage.codec import encode
    from svdimage.codec._format import unpack

    from .codec.svdz_files import rebuild

    header, payload, version = unpack(encode(np.full((16, 16), 0.5), quality=50))
    header["x-comment"] = "a\x9bb\x1bc"
    path = tmp_path / "x.svdz"
    path.write_bytes(rebuild(header, payload, version=version))
    result = invoke("inspect", "--json", path)
    assert result.exit_code == 0, result.output
    assert "\x9b" not in result.stdout and "\x1b" not in result.stdout
    assert json.loads(result.stdout)["header"]["x-comment"] == "a\x9bb\x1bc"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["info", "--bogus", "x"], "No such option: --bogus"),
        (["decompress", "x.svdz", "-o", "y.png", "--max-bytes", "-5"], "'--max-bytes'"),
        (["bogus"], "No such command 'bogus'"),
        (["info"], "Missing argument 'IMAGE'"),
        (["compress", "x.png", "--quality", "abc"], "'--quality'"),
    ],
)
def test_usage_errors_are_one_line_and_one_hint(args, fragment):
    # Reproducer: Click's box, four lines on stderr (usage, hint, blank, "Error: ...").
    result = invoke(*args)
    assert result.exit_code == EXIT_USAGE
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("svdimage: error: ") and fragment in lines[0]
    assert lines[1].startswith("Try 'svdimage") and lines[1].endswith(" --help' for help.")


@pytest.mark.parametrize("command", ["info", "compress", "inspect", "survey", "choose"])
def test_a_fifo_input_is_refused_at_once(tmp_path, command):
    # Reproducer: `info fifo.jpg` never returned; `inspect fifo.jpg` said it did not exist.
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    args = {
        "info": ["info", fifo],
        "compress": ["compress", fifo, "-o", tmp_path / "x.svdz"],
        "inspect": ["inspect", fifo],
        "survey": ["survey", fifo, "-o", tmp_path / "s", "--workers", "0"],
        "choose": ["choose", fifo, "--energy", "0.9"],
    }[command]
    result = invoke(*args)
    if command == "survey":  # a batch: the FIFO is a failed row, the run goes on
        assert result.exit_code == EXIT_BAD_INPUT
        assert "is a FIFO (named pipe), not a regular file" in result.stderr
    else:
        assert_one_line_error(result, EXIT_FILES, "is a FIFO (named pipe), not a regular file")


def test_a_fifo_in_a_folder_is_a_failed_row_not_a_silent_gap(tmp_path, photo):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(photo.read_bytes())
    os.mkfifo(folder / "pipe.png")
    result = invoke("survey", folder, "-o", tmp_path / "s", "--workers", "0")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "pipe.png" in result.stderr and "FIFO" in result.stderr
    assert "1 of 2 images surveyed" in result.stdout


@pytest.mark.parametrize("force", [False, True])
def test_a_fifo_output_is_never_replaced(tmp_path, photo, force):
    # Reproducer: `compress ... -o NODE --force` replaced a device node with a regular file.
    fifo = tmp_path / "out.svdz"
    os.mkfifo(fifo)
    result = invoke("compress", photo, "-o", fifo, *(["--force"] if force else []))
    assert_one_line_error(result, EXIT_FILES, "is a FIFO (named pipe)", "only regular files")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize(
    "make", ["file_as_folder", "file_on_the_way", "full_disk"], ids=lambda m: m
)
def test_sweep_checks_its_outputs_before_any_work(tmp_path, photo, monkeypatch, make):
    # Reproducer: sweep exited 4 only after "drawing figures" (two stderr lines).
    from svdimage import _fileutil

    out = tmp_path / "out"
    if make == "file_as_folder":
        out.write_bytes(b"a file")
    elif make == "file_on_the_way":
        (tmp_path / "file").write_bytes(b"a file")
        out = tmp_path / "file" / "out"
    else:
        monkeypatch.setattr(_fileutil, "_free_bytes", lambda folder: 0)
    monkeypatch.setattr(
        "svdimage.cli.explore.load", lambda *a, **k: pytest.fail("the image was loaded")
    )
    assert_one_line_error(invoke("sweep", photo, "-o", out), EXIT_FILES)


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.7])
def test_sigterm_to_the_process_group_of_a_dask_run_is_one_line(tmp_path, astronaut, delay):
    # Reproducer: `timeout` (SIGTERM to the whole group) during `survey --workers 1`: 3 of
    # 10 runs printed a resource_tracker UserWarning or a BrokenPipeError traceback too.
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.rint(astronaut * 255).astype(np.uint8)).save(folder / f"a{i}.png")
    errors = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "svdimage", "survey", str(folder)]
    command += ["-o", str(tmp_path / "out"), "--workers", "1"]
    with open(errors, "wb") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while "done in" not in errors.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, errors.read_text()
            time.sleep(0.05)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    time.sleep(1.0)  # what the children would print, they print by now
    lines = errors.read_text().splitlines()
    assert process.returncode == 143
    assert lines[-1] == "svdimage: stopped by SIGTERM; no partial output was left.", lines
    assert all("done in" in line for line in lines[:-1]), lines


# -- the name target: any file name through the command line ------------------------------------
NAME_CHARACTERS = st.sampled_from(
    list("ab[]/{}<>\"'\\$%&;|*?!#~` \t\n\r\x1b\x07\x9b\x85\u2028é語🙂")
)


def _any_name_through_info(camera_png, name):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)  # a "/" in the name: folders on the way
        path.write_bytes(camera_png)
        for args in (["info", path], ["choose", path, "--energy", "0.9"]):
            result = invoke(*args)
            assert result.exit_code == 0, result.output
            assert "internal error" not in result.output and "Traceback" not in result.output
            for raw in ("\x1b", "\x07", "\x9b", "\x85", "\r", "\u2028"):
                assert raw not in result.output
        if name.isascii() and name.isprintable():
            assert "".join(str(path).split()) in "".join(invoke("info", path).stdout.split())


@pytest.fixture(scope="module")
def camera_png(camera):
    buffer = io.BytesIO()
    Image.fromarray(np.rint(camera[100:132, 200:240] * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


NAMES = st.text(NAME_CHARACTERS, min_size=1, max_size=24).filter(
    lambda n: all(part not in ("", ".", "..") for part in n.split("/"))
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES)
def test_fuzz_any_file_name_is_printed_safely(camera_png, name):
    _any_name_through_info(camera_png, name)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES)
def test_fuzz_many_file_names(camera_png, name):
    _any_name_through_info(camera_png, name)


@pytest.mark.parametrize(
    "command",
    ["compress", "reconstruct", "denoise", "animate", "explore", "sweep", "decompress", "survey"],
)
def test_every_writer_checks_its_outputs_before_any_work(tmp_path, photo, monkeypatch, command):
    from svdimage import _fileutil
    from svdimage.codec import encode

    source = tmp_path / "x.svdz"
    source.write_bytes(encode(np.full((16, 16), 0.5), quality=50))
    monkeypatch.setattr(_fileutil, "_free_bytes", lambda folder: 0)  # a full disk
    monkeypatch.setattr("svdimage.cli._app.load_image", _never_called)
    out = tmp_path / "out"
    args = {
        "compress": ["compress", photo, "-o", out / "a.svdz"],
        "reconstruct": ["reconstruct", photo, "-k", "3", "-o", out / "a.png"],
        "denoise": ["denoise", photo, "-o", out / "a.png"],
        "animate": ["animate", photo, "-o", out / "a.gif"],
        "explore": ["explore", photo, "-o", out / "a.html"],
        "sweep": ["sweep", photo, "-o", out],
        "decompress": ["decompress", source, "-o", out / "a.png"],
        "survey": ["survey", photo, "-o", out, "--workers", "0"],
    }[command]
    assert_one_line_error(invoke(*args), EXIT_FILES, "No space left on device")
    assert not out.exists() or not any(out.iterdir())


def test_decompress_a_prefix_too_short_names_the_smallest_that_decodes(tmp_path, color_photo):
    target = tmp_path / "c.svdz"
    assert invoke("compress", color_photo, "-o", target).exit_code == 0
    result = invoke("decompress", target, "-o", tmp_path / "c.png", "--max-bytes", "400")
    assert_one_line_error(result, EXIT_BAD_INPUT, "smallest prefix that decodes")
    assert "pass --max-bytes of at least" in result.stderr
    least = result.stderr.rsplit("at least ", 1)[1].rstrip(".\n").replace(",", "")
    done = invoke("decompress", target, "-o", tmp_path / "c.png", "--max-bytes", least)
    assert done.exit_code == 0, done.output


def test_decompress_a_truncated_file_names_the_max_bytes_that_decodes_it(tmp_path, color_photo):
    target = tmp_path / "c.svdz"
    assert invoke("compress", color_photo, "-o", target).exit_code == 0
    data = target.read_bytes()
    cut = tmp_path / "cut.svdz"
    cut.write_bytes(data[: len(data) * 3 // 4])
    result = invoke("decompress", cut, "-o", tmp_path / "c.png")
    assert_one_line_error(result, EXIT_BAD_INPUT, "truncated file")
    held = f"{len(data) * 3 // 4:,}"
    assert f"pass --max-bytes of at most {held} to decode the part it holds" in result.stderr
    done = invoke("decompress", cut, "-o", tmp_path / "c.png", "--max-bytes", held.replace(",", ""))
    assert done.exit_code == 0, done.output


# -- images too big to load: out of core -------------------------------------------------
#: Over this many pixels (and under the 1 MP of the test images) an image is read out of
#: core; 64 MiB of --memory-limit cuts a 1 MP colour image in bands of 256 rows.
SMALL_CAP = ("--max-pixels", "500000", "--memory-limit", "64MiB")


@pytest.fixture(scope="module")
def big_tiff(tmp_path_factory, astronaut):
    """A 1024x1024 colour photo as a tiled (128 px), zlib-compressed BigTIFF."""
    import tifffile

    path = tmp_path_factory.mktemp("big") / "big.tif"
    pixels = np.rint(np.kron(astronaut, np.ones((2, 2, 1))) * 255).astype(np.uint8)
    tifffile.imwrite(path, pixels, tile=(128, 128), compression="zlib", photometric="rgb",
                     bigtiff=True)  # fmt: skip
    return path


def _rank_lines(result):
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.startswith("rank ")]


def test_info_reads_a_tiff_too_big_to_load_out_of_core_with_the_same_answers(big_tiff):
    loaded = json.loads(invoke("info", big_tiff, "--json").stdout)
    streamed = invoke("info", big_tiff, "--json", *SMALL_CAP)
    assert streamed.exit_code == 0, streamed.output
    assert "read out of core" in streamed.stderr
    document = json.loads(streamed.stdout)
    assert document["rank_for_energy"] == loaded["rank_for_energy"]
    np.testing.assert_allclose(document["sigma1"], loaded["sigma1"], rtol=1e-6)
    assert document["singular_values_computed"] == 200 and document["numerical_rank"] is None
    full = invoke("info", big_tiff, "--full", *SMALL_CAP)
    assert full.exit_code == EXIT_BAD_INPUT and "--full computes every singular" in full.stderr


def test_choose_out_of_core_picks_the_ranks_the_in_memory_path_picks(big_tiff):
    for criterion in (["--psnr", "30"], ["--ssim", "0.85"], ["--energy", "0.99"], ["--knee"]):
        loaded = _rank_lines(invoke("choose", big_tiff, *criterion))
        streamed = invoke("choose", big_tiff, *criterion, *SMALL_CAP)
        assert _rank_lines(streamed) == loaded, criterion  # rank k, and rank k - 1 short
        assert "read out of core" in streamed.stderr
    for refused, fragment in (
        (["--denoise"], "needs every singular value"),
        (["--bytes", "100000", "--storage", "svdz"], "--storage values"),
    ):
        result = invoke("choose", big_tiff, *refused, *SMALL_CAP)
        assert result.exit_code == EXIT_BAD_INPUT and fragment in result.stderr.splitlines()[-1]


def test_sweep_out_of_core_measures_what_the_in_memory_sweep_measures(tmp_path, big_tiff):
    import csv

    def rows(folder):
        with open(folder / "metrics.csv", newline="") as handle:
            return list(csv.DictReader(handle))

    ranks = ("-r", "5,20,psnr=27")
    assert invoke("sweep", big_tiff, *ranks, "-o", tmp_path / "a").exit_code == 0
    streamed = invoke("sweep", big_tiff, *ranks, "-o", tmp_path / "b", *SMALL_CAP)
    assert streamed.exit_code == 0, streamed.output
    loaded, lazy = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert [r["rank"] for r in lazy] == [r["rank"] for r in loaded]
    assert [r["criterion"] for r in lazy] == [r["criterion"] for r in loaded]
    for a, b in zip(loaded, lazy):
        assert float(b["psnr"]) == pytest.approx(float(a["psnr"]), abs=1e-3)
        assert float(b["ssim"]) == pytest.approx(float(a["ssim"]), abs=1e-4)
    for name in ("grid.png", "error_curve.png", "spectrum.png"):
        with Image.open(tmp_path / "b" / name) as figure:
            assert figure.size[0] > 300


def test_reconstruct_out_of_core_writes_the_in_memory_image_tile_by_tile(tmp_path, big_tiff):
    import tifffile

    for rank in ("20", "psnr=28"):
        loaded = invoke("reconstruct", big_tiff, "-k", rank, "-o", tmp_path / f"{rank}.png")
        streamed = invoke(
            "reconstruct", big_tiff, "-k", rank, "-o", tmp_path / f"{rank}.tif", *SMALL_CAP
        )
        assert streamed.exit_code == 0, streamed.output
        assert "out of core" in streamed.stdout and "read out of core" in streamed.stderr
        rank_of = [
            next(line for line in r.stdout.splitlines() if line.startswith("rank ")).split()[1]
            for r in (loaded, streamed)
        ]
        assert rank_of[0] == rank_of[1]
        written = tifffile.imread(tmp_path / f"{rank}.tif").astype(int)
        expected = np.asarray(Image.open(tmp_path / f"{rank}.png")).astype(int)
        assert np.abs(written - expected).max() <= 1  # 8-bit rounding of the same image
    png = invoke("reconstruct", big_tiff, "-k", "5", "-o", tmp_path / "r.png", *SMALL_CAP)
    lines = png.stderr.splitlines()  # the out-of-core note, then the error
    assert png.exit_code == EXIT_BAD_INPUT and len(lines) == 2, png.stderr
    assert lines[0].startswith("svdimage: note:") and "written to .tif" in lines[1]
    assert not (tmp_path / "r.png").exists()


def test_explore_out_of_core_shows_a_block_mean_of_the_image(tmp_path, big_tiff):
    import re

    out = tmp_path / "page.html"
    result = invoke("explore", big_tiff, "-o", out, "--max-side", "300", "--no-compare-files",
                    *SMALL_CAP)  # fmt: skip
    assert result.exit_code == 0, result.output
    found = re.search(
        r'<script type="application/json" id="svdimage-data">(.*?)</script>',
        out.read_text(),
        re.S,
    )
    data = json.loads(found.group(1))
    assert (data["sourceWidth"], data["sourceHeight"]) == (1024, 1024)
    assert max(data["width"], data["height"]) <= 300


def test_out_of_core_reads_ome_zarr_groups_and_tiff_pyramids(tmp_path, astronaut):
    import tifffile
    import zarr

    pixels = np.rint(np.kron(astronaut, np.ones((2, 2, 1))) * 255).astype(np.uint8)
    group = zarr.open_group(tmp_path / "slide.zarr", mode="w")
    group.create_array("0", shape=(3, 1024, 1024), chunks=(3, 128, 128), dtype="uint8")[:] = (
        pixels.transpose(2, 0, 1)
    )
    group.create_array("1", shape=(3, 512, 512), chunks=(3, 128, 128), dtype="uint8")
    group.attrs["multiscales"] = [{"datasets": [{"path": "0"}, {"path": "1"}]}]
    with tifffile.TiffWriter(tmp_path / "p.ome.tif", bigtiff=True, ome=True) as tif:
        options = dict(tile=(128, 128), compression="zlib", photometric="rgb")
        tif.write(pixels, subifds=1, **options)
        tif.write(pixels[::2, ::2], subfiletype=1, **options)
    expected = json.loads(invoke("info", tmp_path / "p.ome.tif", "--json").stdout)
    for name in ("slide.zarr", "p.ome.tif"):
        result = invoke("info", tmp_path / name, "--json", *SMALL_CAP)
        assert result.exit_code == 0 and "read out of core" in result.stderr, result.output
        document = json.loads(result.stdout)
        assert (document["width"], document["height"]) == (1024, 1024)
        assert document["rank_for_energy"] == expected["rank_for_energy"]
    # A Zarr store is one image for a command (loaded whole when it fits), not a folder.
    whole = invoke("info", tmp_path / "slide.zarr", "--json")
    assert whole.exit_code == 0 and "read out of core" not in whole.stderr, whole.output


def test_a_damaged_tile_out_of_core_is_one_line_exit_3_and_no_output(tmp_path, astronaut):
    import tifffile

    path = tmp_path / "bad.tif"
    pixels = np.rint(np.kron(astronaut, np.ones((2, 2, 1))) * 255).astype(np.uint8)
    tifffile.imwrite(path, pixels, tile=(128, 128), compression="zlib", photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[40]  # row 5 of tiles: rows 640-767
    data = bytearray(path.read_bytes())
    data[offset : offset + 32] = b"\xff" * 32
    path.write_bytes(bytes(data))
    for command in (["reconstruct", "-k", "10", "-o", tmp_path / "out.tif"], ["info"]):
        result = invoke(command[0], path, *command[1:], *SMALL_CAP)
        lines = result.stderr.splitlines()
        assert result.exit_code == EXIT_BAD_INPUT, result.output
        assert len(lines) == 2 and lines[0].startswith("svdimage: note:"), result.stderr
        assert "could not read rows 512-767" in lines[1] and "bad.tif" in lines[1]  # its band
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tif"]  # nothing half-written


def test_out_of_core_runs_on_a_local_cluster_of_worker_processes(big_tiff):
    loaded = json.loads(invoke("info", big_tiff, "--json").stdout)
    result = invoke("info", big_tiff, "--json", "--workers", "2", *SMALL_CAP)
    assert result.exit_code == 0, result.output
    assert "on 2 local workers" in result.stderr
    document = json.loads(result.stdout)
    assert document["rank_for_energy"] == loaded["rank_for_energy"]
    both = invoke("info", big_tiff, "--workers", "2", "--scheduler", "tcp://x:1")
    assert both.exit_code == EXIT_USAGE


def test_a_worker_that_dies_each_time_is_one_line():
    from svdimage.cli._app import exit_code, message

    class KilledWorker(Exception):  # noqa: N818 - as distributed names it
        pass

    error = KilledWorker("('read-123', 4)", "<WorkerState 'tcp://127.0.0.1:4000'>")
    assert exit_code(error) == EXIT_BAD_INPUT
    assert "a Dask worker died" in message(error) and "--memory-limit" in message(error)


def test_compress_out_of_core_writes_tiles_and_decompress_reads_them_back(tmp_path, big_tiff):
    import tifffile

    from svdimage import codec, metrics

    out = tmp_path / "big.svdz"
    result = invoke("compress", big_tiff, "-o", out, "--json", *SMALL_CAP)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    svdz = next(row for row in report["rows"] if row["name"] == ".svdz")
    data = out.read_bytes()
    assert data[5:7] == bytes((2, 4)) and svdz["nbytes"] == len(data)
    assert report["jpeg_quality"] is None  # no JPEG: Pillow encodes one whole
    original = tifffile.imread(big_tiff) / 255.0
    decoded = codec.decode(data)
    eight_bits = np.rint(np.clip(decoded, 0, 1) * 255) / 255  # measured as its 8-bit pixels
    assert svdz["psnr"] == pytest.approx(
        metrics.peak_signal_noise_ratio(original, eight_bits), abs=1e-3
    )
    assert svdz["ssim"] == pytest.approx(
        metrics.structural_similarity(original, eight_bits), abs=1e-4
    )
    # The same image loaded whole: one file of about the same size and quality.
    whole = json.loads(invoke("compress", big_tiff, "-o", tmp_path / "w.svdz", "--json").stdout)
    whole_svdz = next(row for row in whole["rows"] if row["name"] == ".svdz")
    assert abs(svdz["psnr"] - whole_svdz["psnr"]) < 0.2
    # Back to a tiled TIFF, tile by tile; to a PNG in memory; the same pixels.
    assert invoke("decompress", out, "-o", tmp_path / "back.tif").exit_code == 0
    assert invoke("decompress", out, "-o", tmp_path / "back.png").exit_code == 0
    expected = np.rint(decoded * 255).astype(np.uint8)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "back.tif"), expected)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "back.png")), expected)
    lines = invoke("inspect", out).stdout
    assert "version 2.4" in lines and "tiles of 2048 x 2048" in lines
    assert "each a version-2.3 file" in lines
    refused = invoke("compress", big_tiff, "-o", tmp_path / "b.svdz", "--bpp", "1", *SMALL_CAP)
    assert refused.exit_code == EXIT_BAD_INPUT and "set the quality only" in refused.stderr
    assert not (tmp_path / "b.svdz").exists()
