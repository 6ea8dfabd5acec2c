"""Whole commands on a 12 MP colour photo, as a user runs them, against one full SVD.

Each command runs as ``python -m svdimage ...`` in a subprocess (interpreter
start, imports, reading the JPEG and writing outputs included) and is timed
with its peak resident memory (``VmHWM`` of that process, polled every 5 ms;
an encoder child such as ffmpeg is not counted).
The reference ``G``, timed in this process right before each command, is one
``scipy.linalg.svd(..., compute_uv=False, lapack_driver="gesdd")`` of ONE
float32 gray 3000x4000 channel, so that a slower or busier machine changes the
seconds, not the ratios (the load of a shared machine drifts within a run: one
G for the whole run let ratios swing by 2x). Targets are those of issue #10.

The photo is deterministic: scikit-image's ``chelsea`` upscaled (bicubic) to
4000x3000 with sensor-like noise (Poisson-Gaussian, seeded) and saved as a
quality-92 JPEG, as a phone would. ``--quick`` uses a 400x300 image (for CI:
it only checks that every command still runs; nothing about time is asserted).

Run ``python benchmarks/bench_commands.py`` (a few minutes) or ``--quick``.
Writes the table to ``benchmarks/results/commands.md`` (not with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table

RESULTS = Path(__file__).resolve().parent / "results" / "commands.md"


def make_photo(path: Path, *, width: int, height: int, seed: int = 12) -> None:
    """A deterministic phone-like colour JPEG of ``width`` x ``height``."""
    import skimage.data
    import skimage.transform
    from PIL import Image

    base = skimage.data.chelsea().astype(np.float32) / 255.0
    big = skimage.transform.resize(base, (height, width, 3), order=3, anti_aliasing=False)
    rng = np.random.default_rng(seed)
    photons = 2000.0  # electrons at full scale: shot noise, then read noise
    noisy = rng.poisson(np.clip(big, 0, 1) * photons) / photons
    noisy += rng.normal(0.0, 0.004, size=noisy.shape)
    pixels = np.rint(np.clip(noisy, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=92)


def reference_seconds(*, height: int, width: int, repeats: int = 3) -> float:
    """G: one full singular-value computation of one float32 gray channel, the fastest of
    ``repeats`` (as ``timeit`` advises: slower runs measure the machine's other work)."""
    import scipy.linalg

    A = np.random.default_rng(0).random((height, width), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scipy.linalg.svd(A, compute_uv=False, lapack_driver="gesdd", check_finite=False)
        best = min(best, time.perf_counter() - start)
    return best


def run_command(args: list[str], *, timeout: float) -> tuple[float | None, int, int, str]:
    """(seconds or None on timeout, peak RSS bytes, exit code, last stderr line)."""
    command = [sys.executable, "-m", "svdimage", "--quiet", *args]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        timed_out = False
        peak = 0
        while True:
            peak = max(peak, _high_water_mark(process.pid))
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout and not timed_out:
                process.kill()
                timed_out = True
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        process.returncode = code = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
    return (None if timed_out else seconds), peak, code, lines[-1] if lines else ""


def _high_water_mark(pid: int) -> int:
    """Peak resident memory of process ``pid`` so far (``VmHWM``, Linux), in bytes.

    Read while it runs: ``ru_maxrss`` would also count the memory of the
    process that forked it, which a child's maximum inherits across exec.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def commands(photo: Path, out: Path, svdz_bytes: int) -> list[tuple[str, list[str], str]]:
    """(label, arguments, target as a multiple of G) in the order of issue #10."""
    p = str(photo)
    return [
        ("info", ["info", p], "0.3"),
        ("sweep (default ranks, 5 outputs)", ["sweep", p, "-o", str(out / "sweep")], "0.8"),
        ("choose (recommendations)", ["choose", p], "1.2"),
        ("choose --psnr 35", ["choose", p, "--psnr", "35"], "0.6"),
        ("choose --ssim 0.95", ["choose", p, "--ssim", "0.95"], "0.6"),
        (
            f"choose --bytes {svdz_bytes} --storage svdz",
            ["choose", p, "--bytes", str(svdz_bytes), "--storage", "svdz"],
            "0.6",
        ),
        ("compress --bpp 1", ["compress", p, "--bpp", "1", "-o", str(out / "c.svdz")], "0.6"),
        ("decompress", ["decompress", str(out / "c.svdz"), "-o", str(out / "d.png")], "0.1"),
        ("animate (default, MP4)", ["animate", p, "-o", str(out / "a.mp4")], "2"),
        (
            "reconstruct --rank 50",
            ["reconstruct", p, "--rank", "50", "-o", str(out / "r50.png")],
            "0.2",
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 400x300 photo (CI)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per command")
    options = parser.parse_args(argv)
    width, height = (400, 300) if options.quick else (4000, 3000)

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        photo = work / "photo.jpg"
        make_photo(photo, width=width, height=height)
        float32_bytes = 4 * 3 * width * height
        rows, references = [], []
        for label, args, target in commands(photo, work, svdz_bytes=width * height // 8):
            # G right before each command: this shared machine's load drifts within a run.
            G = None if options.quick else reference_seconds(height=3000, width=4000, repeats=1)
            references += [G] if G else []
            seconds, peak, code, last = run_command(args, timeout=options.timeout)
            if code != 0 and seconds is not None:
                raise SystemExit(f"{label} failed with exit code {code}: {last}")
            ratio = f"{seconds / G:.2f}" if (G and seconds is not None) else "-"
            rows.append(
                [
                    label,
                    f"{seconds:.2f}" if seconds is not None else f"> {options.timeout:.0f}",
                    f"{G:.2f}" if G else "-",
                    ratio,
                    f"≤ {target}",
                    f"{peak / 2**20:.0f}",
                    f"{peak / float32_bytes:.1f}",
                ]
            )
            print(f"{label}: {rows[-1][1]} s", file=sys.stderr, flush=True)

    headers = ["command", "seconds", "G s", "÷ G", "target ÷ G", "peak MiB", "peak ÷ image f32"]
    size = f"{width}x{height} colour JPEG"
    header = (
        f"Photo: {size}; G = {min(references):.2f}-{max(references):.2f} s"
        if references
        else f"Photo: {size} (quick: no G)"
    )
    print(header)
    print(f"Machine: {machine()}")
    print()
    print_table(headers, rows)
    if not options.quick:
        lines = [
            "# `bench_commands.py`: whole commands on a 12 MP colour photo",
            "",
            f"{header} (one full `gesdd` of one float32 gray 3000x4000 channel,",
            "timed right before each command: its `G s` column).",
            f"Machine: {machine()}. Peak memory is the command's own resident set",
            "(interpreter and libraries included); the float32 image is "
            f"{float32_bytes / 2**20:.0f} MiB.",
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---:" for _ in headers) + "|",
            *("| " + " | ".join(row) + " |" for row in rows),
            "",
        ]
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
