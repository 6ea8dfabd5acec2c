"""svdimage.batch: sources, the engine on every scheduler, the survey, resume, the summary.

Every survey number is recomputed here from independent references (LAPACK
SVD, Pillow, scikit-image); the engines are compared row by row.
"""

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import skimage.metrics
from PIL import Image
from typer.testing import CliRunner

from svdimage import batch, codec, load_image
from svdimage.cli import app

BPP = (0.75, 1.5, 3.0)
TARGETS = ("psnr=30", "energy=0.99", "knee")
SECONDS = ["seconds", "decompose_seconds"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Small crops of four photos (gray and colour, one in a subfolder, one JPEG named .dat),
    and the files a real folder holds besides: corrupt, empty, not an image, hidden."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "sub").mkdir()
    (root / ".cache").mkdir()
    Image.fromarray(skimage.data.camera()[100:196, 200:328]).save(root / "camera.png")
    Image.fromarray(skimage.data.astronaut()[30:126, 150:278]).save(root / "sub" / "astro.png")
    Image.fromarray(skimage.data.coffee()[100:196, 250:378]).save(root / "coffee.png")
    Image.fromarray(skimage.data.chelsea()[50:146, 100:228]).save(root / "cat.dat", "JPEG")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (root / "empty.png").write_bytes(b"")
    (root / "fake.png").write_text("a text file with an image's name")
    (root / "notes.txt").write_text("not an image, and not named like one")
    (root / ".hidden.png").write_bytes((root / "camera.png").read_bytes())
    (root / ".cache" / "x.png").write_bytes((root / "camera.png").read_bytes())
    Image.fromarray(np.zeros((130, 130), np.uint8)).save(root / "huge.png")  # over max_pixels
    return root


GOOD = ["camera.png", "cat.dat", "coffee.png", "sub/astro.png"]
BAD = ["broken.jpg", "empty.png", "fake.png", "huge.png"]


def frame_of(rows):
    return rows.drop(columns=SECONDS).reset_index(drop=True)


# -- sources -------------------------------------------------------------------------------
def test_find_images_recursive_by_extension_or_content_skipping_hidden(dataset):
    found = batch.find_images(dataset)
    names = sorted(os.path.relpath(p, dataset) for p in found)
    assert names == sorted(GOOD + BAD)  # notes.txt: neither an image's name nor content
    assert batch.find_images([str(dataset / "*.png")]) == [
        str(dataset / n) for n in ("camera.png", "coffee.png", "empty.png", "fake.png", "huge.png")
    ]
    assert batch.find_images([str(dataset / "**" / "astro.png")]) == [
        str(dataset / "sub" / "astro.png")
    ]
    url = "https://example.org/x.jpg"
    one = str(dataset / "camera.png")
    assert batch.find_images([url, one, one, url]) == [url, one]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        batch.find_images([str(dataset / "missing.png")])
    with pytest.raises(FileNotFoundError, match="no file matches"):
        batch.find_images([str(dataset / "*.tiff")])
    (dataset / "sub" / "nothing").mkdir(exist_ok=True)
    with pytest.raises(FileNotFoundError, match="no image files"):
        batch.find_images([str(dataset / "sub" / "nothing")])


def test_output_paths_mirror_the_folder_and_name_loose_files():
    from svdimage.batch import output_path

    roots = ["/data/photos"]
    assert output_path("/data/photos/2024/a.jpg", roots=roots, folder="out", suffix=".svdz") == (
        os.path.join("out", "2024", "a.svdz")
    )
    assert output_path("/else/b.png", roots=roots, folder="out", suffix="") == "out/b"
    assert output_path("https://x.org/p/c.jpg?s=1", roots=roots, folder="o", suffix=".png") == (
        "o/c.png"
    )


# -- the engine ----------------------------------------------------------------------------
def shout(path):
    if "bad" in path:
        raise ValueError(f"cannot read {path}\nsecond line")
    return os.path.basename(path).upper()


def test_map_in_process_turns_errors_into_outcomes(tmp_path):
    outcomes = list(batch.map(shout, ["a.png", "bad.png", "c.png"], workers=0))
    assert [o.source for o in outcomes] == ["a.png", "bad.png", "c.png"]  # in order
    assert [o.value for o in outcomes] == ["A.PNG", None, "C.PNG"]
    assert outcomes[1].error.startswith("cannot read") and "\n" not in outcomes[1].error
    assert [o.ok for o in outcomes] == [True, False, True]
    with pytest.raises(ValueError, match="not both"):
        list(batch.map(shout, ["a"], workers=2, scheduler="tcp://127.0.0.1:1"))


def test_map_runs_on_one_core_per_task():
    from threadpoolctl import threadpool_info

    def blas(path):
        from svdimage._linalg import pool_threads

        return pool_threads(), [i["num_threads"] for i in threadpool_info()]

    ((pool, threads),) = [o.value for o in batch.map(blas, ["x"], workers=0)]
    assert pool == 1 and set(threads) == {1}


def trim_setting(path):
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_workers_keep_glibc_adaptive_malloc(restored_environ):
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_, which halves a survey's speed."""
    if "MALLOC_TRIM_THRESHOLD_" in os.environ:
        pytest.skip("set in this environment; workers inherit it")
    outcomes = list(batch.map(trim_setting, ["a", "b"], workers=2))
    assert [o.value for o in outcomes] == [None, None]


def test_unreachable_scheduler_is_a_connection_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler"):
        list(batch.map(shout, ["a", "b"], scheduler=f"tcp://127.0.0.1:{port}"))
    assert time.perf_counter() - start < 60


def slow_name(path):
    time.sleep(0.4)
    return os.path.basename(path)


@pytest.fixture
def restored_environ():
    """A LocalCluster's nanny writes its workers' variables into this process's os.environ
    (OMP_NUM_THREADS, MALLOC_TRIM_THRESHOLD_): undo that for the tests that follow."""
    before = dict(os.environ)
    yield
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(restored_environ):
    from distributed import Client, LocalCluster

    sources = [f"img{i}.png" for i in range(10)]
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        pids = list(client.run(os.getpid).values())
        outcomes = []
        for outcome in batch.map(slow_name, sources, scheduler=client):
            outcomes.append(outcome)
            if len(outcomes) == 2:
                os.kill(pids[0], signal.SIGKILL)  # the nanny restarts it; Dask reschedules
    assert sorted(o.source for o in outcomes) == sorted(sources)
    assert all(o.ok and o.value == o.source for o in outcomes), outcomes


# -- the survey ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def serial(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    frame = batch.survey(dataset, out, bpp=BPP, targets=TARGETS, workers=0, max_pixels=15_000)
    return out, frame


def test_survey_rows_match_independent_references(dataset, serial):
    from svdimage.decomposition import decompose
    from svdimage.ranks.criteria import parse_criterion, resolve_criterion

    _, frame = serial
    assert list(frame.columns) == batch.survey_columns(BPP, TARGETS)
    by_name = {os.path.relpath(p, dataset): row for p, row in zip(frame["path"], frame.iloc)}
    assert sorted(by_name) == sorted(GOOD + BAD)
    for name in BAD:
        assert by_name[name]["error"] != "" and np.isnan(by_name[name]["width"])
    assert "15,000" in by_name["huge.png"]["error"] or "15000" in by_name["huge.png"]["error"]
    for name in GOOD:
        row = by_name[name]
        assert row["error"] == ""
        path = dataset / name
        image = load_image(path)
        assert (row["height"], row["width"]) == image.shape[:2]
        assert row["mode"] == ("gray" if image.ndim == 2 else "rgb")
        assert row["original_bytes"] == path.stat().st_size
        full = decompose(image, method="exact")  # the complete LAPACK SVD
        for target in TARGETS:
            expected = resolve_criterion(full, parse_criterion(target), image=image)
            assert row[f"rank_{target}"] == expected, (name, target)
        pixels = image.shape[0] * image.shape[1]
        for rate in BPP:
            key = f"@{rate:g}"
            data = codec.encode(image, max_bytes=rate * pixels / 8)
            assert row["svdz_bytes" + key] == len(data)
            assert row["svdz_bpp" + key] == 8 * len(data) / pixels
            decoded = np.rint(np.clip(codec.decode(data), 0, 1) * 255) / 255  # its 8-bit pixels
            assert row["svdz_psnr" + key] == pytest.approx(
                skimage.metrics.peak_signal_noise_ratio(image, decoded, data_range=1), abs=1e-4
            )
            for name_codec, format in (("jpeg", "JPEG"), ("webp", "WEBP")):
                pixels8 = Image.fromarray(np.rint(image * 255).astype(np.uint8))
                options = {"optimize": True} if format == "JPEG" else {}
                buffer = io.BytesIO()
                if np.isnan(row[f"{name_codec}_quality" + key]):  # none that small:
                    pixels8.save(buffer, format=format, quality=1, **options)
                    assert len(buffer.getvalue()) > len(data)  # even quality 1 is larger
                    continue
                pixels8.save(
                    buffer,
                    format=format,
                    quality=int(row[f"{name_codec}_quality" + key]),
                    **options,
                )
                assert row[f"{name_codec}_bytes" + key] == len(buffer.getvalue()) <= len(data)
                reference = np.asarray(Image.open(buffer).convert(pixels8.mode)) / 255.0
                assert row[f"{name_codec}_psnr" + key] == pytest.approx(
                    skimage.metrics.peak_signal_noise_ratio(image, reference, data_range=1),
                    abs=1e-4,
                )
                channel = {"channel_axis": 2} if image.ndim == 3 else {}
                assert row[f"{name_codec}_ssim" + key] == pytest.approx(
                    skimage.metrics.structural_similarity(
                        image.astype(np.float64), reference, data_range=1, **channel
                    ),
                    abs=1e-4,
                )


def test_csv_parquet_and_frame_hold_the_same_numbers(serial):
    pd = pytest.importorskip("pandas")
    out, frame = serial
    again = batch.read_survey(out)
    pd.testing.assert_frame_equal(again, frame)
    pytest.importorskip("pyarrow")
    parquet = pd.read_parquet(out / "survey.parquet")
    assert parquet["path"].tolist() == frame["path"].tolist()
    numeric = [c for c in frame.columns if c not in ("path", "mode", "method", "error")]
    np.testing.assert_array_equal(parquet[numeric].to_numpy(float), frame[numeric].to_numpy(float))


def test_serial_local_cluster_and_scheduler_give_identical_rows(
    dataset, serial, tmp_path, restored_environ
):
    _, expected = serial
    local = batch.survey(dataset, None, bpp=BPP, targets=TARGETS, workers=2, max_pixels=15_000)
    assert frame_of(local).equals(frame_of(expected))
    with DaskCluster(workers=2) as address:
        remote = batch.survey(
            dataset, tmp_path, bpp=BPP, targets=TARGETS, scheduler=address, max_pixels=15_000
        )
    assert frame_of(remote).equals(frame_of(expected))
    assert frame_of(batch.read_survey(tmp_path)).equals(frame_of(expected))


class DaskCluster:
    """A scheduler and workers started as the README says, as subprocesses on 127.0.0.1."""

    def __init__(self, *, workers):
        self.workers = workers

    def __enter__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{port}"
        bin_dir = Path(sys.executable).parent
        self.processes = [
            subprocess.Popen(
                [
                    bin_dir / "dask",
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-dashboard",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        ]
        for _ in range(self.workers):
            self.processes.append(
                subprocess.Popen(
                    [bin_dir / "dask", "worker", self.address, "--nthreads", "1", "--no-dashboard"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(self.workers, timeout=60)
        return self.address

    def __exit__(self, *exc):
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_resume_after_a_kill_processes_only_the_missing_images(dataset, serial, tmp_path):
    """A run killed mid-write: its complete rows stay, its cut line goes, the rest is done."""
    _, expected = serial
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "svdimage",
        "survey",
        str(dataset),
        "-o",
        str(out),
        "--bpp",
        ",".join(f"{r:g}" for r in BPP),
        "--targets",
        ",".join(TARGETS),
        "--workers",
        "0",
        "--max-pixels",
        "15000",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv_path = out / "survey.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if csv_path.exists() and csv_path.read_text().count("\n") >= 4:  # header + 3 rows
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    with open(csv_path, "a") as file:
        file.write(f"{dataset / 'sub' / 'astro.png'},80,64,rgb,1")  # a line cut short
    before = list(csv.reader(io.StringIO(csv_path.read_text())))
    complete = {row[0]: row for row in before[1:] if len(row) == len(before[0])}
    assert 3 <= len(complete) < len(GOOD + BAD)
    seen = []
    frame = batch.survey(
        dataset,
        out,
        bpp=BPP,
        targets=TARGETS,
        workers=0,
        max_pixels=15_000,
        resume=True,
        on_row=lambda outcome, done, total: outcome and seen.append(outcome.source),
    )
    assert sorted(seen) == sorted(set(map(str, batch.find_images(dataset))) - set(complete))
    assert frame["path"].tolist() == expected["path"].tolist()  # each image once, in order
    after = {row[0]: row for row in csv.reader(io.StringIO(csv_path.read_text()))}
    for source, row in complete.items():
        assert after[source] == row  # kept as written, seconds included: not recomputed
    assert frame_of(frame).equals(frame_of(expected))


def test_an_existing_survey_needs_resume_or_force(dataset, serial, tmp_path):
    out, _ = serial
    with pytest.raises(FileExistsError, match="--resume .* --force"):
        batch.survey(dataset, out, bpp=BPP, targets=TARGETS, workers=0)
    with pytest.raises(ValueError, match="other rates or targets"):
        batch.survey(dataset, out, bpp=(1.0,), targets=TARGETS, workers=0, resume=True)
    for bad in ((0,), (-1.0,), (float("nan"),), ()):
        with pytest.raises(ValueError, match="bpp"):
            batch.survey(dataset, tmp_path / "x", bpp=bad, workers=0)
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "summary.md").write_text("someone's notes")
    with pytest.raises(FileExistsError, match="summary.md' already exists"):
        batch.survey(dataset, tmp_path / "z", bpp=BPP, targets=TARGETS, workers=0)
    assert (tmp_path / "z" / "summary.md").read_text() == "someone's notes"
    with pytest.raises(ValueError, match="unknown rank criterion"):
        batch.survey(dataset, tmp_path / "y", targets=("sharpness=3",), workers=0)


# -- the summary ---------------------------------------------------------------------------
def independent_bd(rates_a, psnr_a, rates_b, psnr_b):
    """Bjontegaard's delta by numerical integration of the two interpolating cubics."""
    from scipy.integrate import quad

    fits = []
    for rates, psnr in ((rates_a, psnr_a), (rates_b, psnr_b)):
        keep = np.isfinite(rates) & np.isfinite(psnr)
        x = np.log10(np.asarray(rates)[keep])
        fits.append((np.poly1d(np.polyfit(x, np.asarray(psnr)[keep], min(3, keep.sum() - 1))), x))
    (fa, xa), (fb, xb) = fits
    lo = max(xa.min(), xb.min(), np.log10(min(BPP)))
    hi = min(xa.max(), xb.max(), np.log10(max(BPP)))
    return quad(lambda x: fa(x) - fb(x), lo, hi)[0] / (hi - lo)


def test_summary_numbers_recomputed_from_the_csv(serial):
    out, _ = serial
    text = (out / "summary.md").read_text()
    with open(out / "survey.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    fine = [row for row in rows if not row["error"]]
    assert f"# Survey of {len(rows)} images" in text
    assert f"{len(fine)} succeeded, {len(rows) - len(fine)} failed" in text

    def numbers(line):
        return [float(x) for x in re.findall(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?", line)]

    for target in TARGETS:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {target} |"))
        ranks = [float(row[f"rank_{target}"]) for row in fine if row[f"rank_{target}"]]
        q1, med, q3 = np.percentile(ranks, [25, 50, 75])
        assert numbers(line.split("|", 2)[2])[-3:] == pytest.approx([q1, med, q3], abs=0.05)
    line = next(ln for ln in text.splitlines() if ln.startswith("| .svdz | BD-PSNR"))
    per_image = []
    for row in fine:

        def get(name, row=row):
            return np.array([float(row[f"{name}@{r:g}"] or "nan") for r in BPP])

        per_image.append(
            independent_bd(get("svdz_bpp"), get("svdz_psnr"), get("jpeg_bpp"), get("jpeg_psnr"))
        )
    count, mean, median = numbers(line.split("|", 3)[3])[:3]
    assert count == len(per_image)
    assert mean == pytest.approx(np.mean(per_image), abs=0.006)
    assert median == pytest.approx(np.median(per_image), abs=0.006)
    line = next(ln for ln in text.splitlines() if ln.startswith("| width |"))
    widths = [float(row["width"]) for row in fine]
    assert numbers(line)[1:] == pytest.approx(
        [min(widths), *np.percentile(widths, [25, 50, 75]), max(widths)], rel=1e-3
    )
    for name in ("broken.jpg", "empty.png", "fake.png", "huge.png"):
        assert name in text.split("## Failed images")[1]
    for figure in ("rd_curves.png", "target_ranks.png"):
        with Image.open(out / figure) as image:
            assert image.size[0] > 500


# -- the command line ----------------------------------------------------------------------
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_survey_writes_the_outputs_and_exits_3_on_failures(dataset, serial, tmp_path):
    _, expected = serial
    out = tmp_path / "cli"
    args = [
        "survey",
        dataset,
        "-o",
        out,
        "--bpp",
        ",".join(f"{r:g}" for r in BPP),
        "--targets",
        ",".join(TARGETS),
        "--workers",
        "0",
        "--max-pixels",
        "15000",
    ]
    result = invoke(*args)
    assert result.exit_code == 3, result.output
    assert "4 of 8 images surveyed. 4 failed" in result.stdout
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("svdimage: error:")]
    assert len(errors) == 4 and all(any(b in ln for b in BAD) for ln in errors)
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "rd_curves.png",
        "summary.md",
        "survey.csv",
        "survey.parquet",
        "target_ranks.png",
    ]
    written = result.stdout.split("Wrote:", 1)[1].split()  # every file written is listed
    assert sorted(os.path.basename(line) for line in written[:5]) == sorted(
        p.name for p in out.iterdir()
    )
    assert frame_of(batch.read_survey(out)).equals(frame_of(expected))
    result = invoke(*args)
    assert result.exit_code == 4 and "--resume" in result.stderr
    result = invoke(*args, "--resume")  # nothing to do; the survey still has its failures
    assert result.exit_code == 3 and "4 of 8 images surveyed" in result.stdout
    assert "svdimage: error:" not in result.stderr  # the failed rows were not tried again
    result = invoke(*args, "--scheduler", "tcp://127.0.0.1:1")
    assert result.exit_code == 2 and "do not go together" in result.stderr
    result = invoke(
        "survey", dataset / "camera.png", "-o", tmp_path / "one", "--workers", "0", "--bpp", "1"
    )
    assert result.exit_code == 0, result.output
    assert "1 of 1 image surveyed." in result.stdout  # the noun agrees with the count


def test_cli_folder_modes_of_sweep_reconstruct_denoise_and_compress(dataset, tmp_path):
    good = [dataset / name for name in GOOD]
    for command, options, made in (
        ("sweep", ["--ranks", "2,5", "--output"], lambda o: sorted(o.rglob("metrics.json"))),
        ("reconstruct", ["-k", "5", "-o"], lambda o: sorted(o.rglob("*.png"))),
        ("denoise", ["-o"], lambda o: sorted(o.rglob("*.png"))),
        ("compress", ["--quality", "60", "-o"], lambda o: sorted(o.rglob("*.svdz"))),
    ):
        out = tmp_path / command
        result = invoke(command, *good, *options, out, "--workers", "0")
        assert result.exit_code == 0, result.output
        assert len(made(out)) == 4 and "4 of 4 images" in result.stdout
        assert any("sub" in str(p) for p in made(out)) is False  # files named one by one
        result = invoke(command, dataset, *options, out, "--workers", "0")
        assert result.exit_code == 3  # existing outputs and the bad files: error lines
        assert "pass --force" in result.stderr and "Traceback" not in result.output
        result = invoke(command, dataset, *options, tmp_path / f"{command}-tree", "--workers", "0")
        assert result.exit_code == 3
        assert any("sub" in str(p) for p in made(tmp_path / f"{command}-tree"))  # mirrored
        result = invoke(command, *good, *options, out, "--workers", "0", "--resume")
        assert result.exit_code == 0 and "Nothing left to do" in result.stdout
        assert "4 of 4 images already done" in result.stderr
    result = invoke("denoise", *good, "-o", tmp_path / "n", "--add-noise", "0.1")
    assert result.exit_code == 2 and "one image" in result.stderr
    result = invoke("reconstruct", *good, "-k", "5", "-o", good[0])
    assert result.exit_code == 4 and "must be a folder" in result.stderr


def test_rd_curves_average_the_same_images_at_every_rate():
    """An image that a codec does not reach at one rate is left out of every rate's mean, so
    each curve averages one set of images (the figure says how many); a mean over the images
    complete at each rate alone would mix images along the curve."""
    import pandas as pd

    from svdimage.batch._summary import LABELS, _mean_curves, plot_rd_curves, plot_target_ranks
    from tests.figure_checks import assert_texts_inside_and_apart

    rates = [0.25, 0.5, 1.0]
    rows = []
    for i in range(4):
        row = {}
        for name in LABELS:
            for rate in rates:
                missing = i == 0 and rate == 0.25 and name == "jpeg"  # image 0: no JPEG there
                row[f"{name}_bpp@{rate:g}"] = None if missing else rate * (1 + 0.01 * i)
                row[f"{name}_psnr@{rate:g}"] = None if missing else 20 + 10 * rate + 5 * i
                row[f"{name}_ssim@{rate:g}"] = None if missing else 0.5 + 0.1 * rate
        rows.append(row)
    frame = pd.DataFrame(rows)
    curves = _mean_curves(frame, rates)
    for name in LABELS:
        assert curves[name]["images"] == [3, 3, 3]
        expected = [float(np.mean([20 + 10 * r + 5 * i for i in (1, 2, 3)])) for r in rates]
        assert np.allclose(curves[name]["psnr"], expected)
        assert curves[name]["psnr"] == sorted(curves[name]["psnr"])
    figure = plot_rd_curves(frame, rates)
    assert "same 3 of 4 images at every rate" in figure.get_suptitle()
    assert_texts_inside_and_apart(figure)
    for target in ("psnr=30", "knee"):
        frame[f"rank_{target}"] = [12, 40, 55, 90]
    assert_texts_inside_and_apart(plot_target_ranks(frame, ["psnr=30", "knee"]))


def test_plan_folder_names_outputs_refuses_collisions_and_resumes(tmp_path):
    """The folder mode's rules live in the library: outputs mirror the input folder,
    two inputs that would write one output are refused, resume leaves out what is done,
    and a missing file is kept for its job to report."""
    from svdimage.batch.jobs import plan_folder

    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    for path in (source / "a.png", source / "sub" / "b.png"):
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "out"
    plan = plan_folder([str(source), str(tmp_path / "gone.png")], out, suffix=".svdz")
    names = [plan.outputs(os.path.abspath(s)) for s in plan.sources]
    assert names == [str(out / "a.svdz"), str(out / "sub" / "b.svdz"), str(out / "gone.svdz")]
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "b.svdz").write_bytes(b"done")
    resumed = plan_folder([str(source)], out, suffix=".svdz", resume=True)
    assert resumed.done == 1 and resumed.sources == [str(source / "a.png")]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="would both write"):
        plan_folder([str(source / "a.png"), str(tmp_path / "other" / "a.png")], out, suffix=".x")
