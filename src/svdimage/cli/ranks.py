"""Commands that choose a rank: choose, denoise."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from svdimage import metrics
from svdimage._fileutil import check_writable
from svdimage.batch.jobs import denoise_job
from svdimage.cli import _batch
from svdimage.cli._app import (
    ForceOption,
    GrayOption,
    ImageArgument,
    ImagesArgument,
    JsonOption,
    MaxPixelsLoadOption,
    MaxPixelsOption,
    MemoryLimitOption,
    StorageCount,
    TimeoutOption,
    UsageError,
    check_conflicts,
    command,
    fmt_bpp,
    fmt_count,
    fmt_error,
    fmt_psnr,
    fmt_ratio,
    fmt_sigma,
    fmt_ssim,
    handle_errors,
    image_for,
    load,
    out_console,
    print_json,
    step,
)
from svdimage.denoising import add_noise as make_noisy
from svdimage.denoising import denoise as run_denoise
from svdimage.io import save_image
from svdimage.ranks.criteria import (
    RECOMMENDED_TARGETS,
    VISUALLY_LOSSLESS_SSIM,
    Choice,
    Criterion,
    criterion_label,
    explain,
    recommend,
    smallest_visually_lossless,
)
from svdimage.ranks.growth import decompose_for
from svdimage.ranks.selection import MeasurementCache


def _fmt_value(name: str, value: float) -> str:
    """A criterion's measure, in that quantity's format."""
    if name == "psnr":
        return fmt_psnr(value)
    if name == "ssim":
        return fmt_ssim(value)
    if name == "bytes":
        return fmt_count(int(value))
    if name == "bpp":
        return fmt_bpp(value)
    if name == "denoise":
        return fmt_sigma(value)
    if name in ("ratio", "percent"):
        return fmt_ratio(value)
    return fmt_error(value)  # relative error and energy: 4 decimals


@command()
@handle_errors
def choose(
    image: str = ImageArgument,
    max_error: Optional[float] = typer.Option(
        None, "--max-error", metavar="E", help="Smallest rank with relative error <= E."
    ),
    energy: Optional[float] = typer.Option(
        None, "--energy", metavar="F", help="Smallest rank keeping this fraction of energy."
    ),
    psnr: Optional[float] = typer.Option(
        None, "--psnr", metavar="DB", help="Smallest rank with PSNR >= DB."
    ),
    ssim: Optional[float] = typer.Option(
        None, "--ssim", metavar="V", help="Smallest rank with SSIM >= V."
    ),
    ratio: Optional[float] = typer.Option(
        None,
        "--ratio",
        metavar="R",
        help="Largest rank R times smaller than the raw 8-bit image (counted as --storage says).",
    ),
    nbytes: Optional[int] = typer.Option(
        None, "--bytes", metavar="N", help="Largest rank that fits N bytes."
    ),
    bpp: Optional[float] = typer.Option(
        None, "--bpp", metavar="B", help="Largest rank that fits B bits per pixel."
    ),
    percent: Optional[float] = typer.Option(
        None, "--percent", metavar="P", help="Rank as P % of the short side."
    ),
    storage: StorageCount = typer.Option(
        StorageCount.values,
        "--storage",
        help="How --ratio/--bytes/--bpp count: 'values' (float32 "
        "factors) or 'svdz' (the real file `compress --rank K --global` writes).",
    ),
    knee: bool = typer.Option(False, "--knee", help="The knee of the error curve (Kneedle)."),
    denoise: bool = typer.Option(
        False, "--denoise", help="Gavish-Donoho optimal hard threshold (noise estimated)."
    ),
    gray: bool = GrayOption,
    json_output: bool = JsonOption,
    max_pixels: int = MaxPixelsLoadOption,
    timeout: float = TimeoutOption,
    memory_limit: int = MemoryLimitOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
) -> None:
    """Answer "which rank?": the rank a criterion picks and why, or, with no
    criterion, a table of the ranks common targets pick with their quality and storage."""

    check_conflicts(
        "choose",
        max_error=max_error,
        energy=energy,
        psnr=psnr,
        ssim=ssim,
        ratio=ratio,
        bytes=nbytes,
        bpp=bpp,
        percent=percent,
        knee=knee,
        denoise=denoise,
        workers=workers,
        scheduler=scheduler,
    )
    given = [
        Criterion(name, value)
        for name, value in (
            ("error", max_error),
            ("energy", energy),
            ("psnr", psnr),
            ("ssim", ssim),
            ("ratio", ratio),
            ("bytes", nbytes),
            ("bpp", bpp),
            ("percent", percent),
        )
        if value is not None
    ]
    given += [Criterion(name) for name, flag in (("knee", knee), ("denoise", denoise)) if flag]
    with image_for(
        image,
        gray=gray,
        max_pixels=max_pixels,
        timeout=timeout,
        memory_limit=memory_limit,
        workers=workers,
        scheduler=scheduler,
    ) as array:
        _choose(image, array, given, storage=storage, json_output=json_output)


def _choose(
    image: str,
    array: Any,
    given: list[Criterion],
    *,
    storage: StorageCount,
    json_output: bool,
) -> None:
    cache = MeasurementCache(array)  # what the search measures, the explanation reuses
    # A budget is answered from the image's shape or its .svdz files, before any SVD.
    with step("choosing the rank" if given else "computing the SVD"):
        # Only the ranks the question needs (see growth.decompose_for).
        wanted = given[:1] or [criterion for _, criterion in RECOMMENDED_TARGETS]
        answers: dict[Criterion, int] = {}
        svd = decompose_for(
            array,
            wanted,
            storage=storage.value,
            answers=answers,
            explain_only=bool(given),
            cache=cache,
        )
    if given:
        with step("resolving the criterion"):
            choice = explain(
                svd,
                given[0],
                storage=storage.value,
                rank=answers.get(given[0]),
                cache=cache,
            )
        _print_choice(choice, json_output=json_output)
        return
    with step("measuring candidate ranks"):
        rows = recommend(svd, cache=cache)
    best = smallest_visually_lossless(rows)
    if json_output:
        print_json(
            {
                "source": image,
                "rows": [{**vars(row), "smallest_visually_lossless": row is best} for row in rows],
            }
        )
        return
    # A light frame, as sweep's: with the file's own PSNR the table must still fit 80 columns.
    table = Table(
        title=f"{image}: which rank? ({array.shape[1]}x{array.shape[0]}, "
        f"{'color' if svd.is_color else 'gray'})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    headers = ("target", "rank", "PSNR", "SSIM", "float32 B", ".svdz B", ".svdz bpp", ".svdz dB")
    for header in headers:
        table.add_column(header, justify="left" if header == "target" else "right", no_wrap=True)
    for row in rows:
        mark = " *" if row is best else ""
        table.add_row(
            row.criterion + mark,
            fmt_count(row.rank),
            fmt_psnr(row.psnr),
            fmt_ssim(row.ssim),
            fmt_count(row.factor_bytes_float32),
            "-" if row.svdz_bytes is None else fmt_count(row.svdz_bytes),
            "-" if row.svdz_bits_per_pixel is None else fmt_bpp(row.svdz_bits_per_pixel),
            "-" if row.svdz_psnr is None else fmt_psnr(row.svdz_psnr),
        )
    out_console.print(table)
    raw = int(math.prod(array.shape))
    svdz = (
        "per value; .svdz is a real file of the global rank-k SVD, and .svdz dB the PSNR it "
        "decodes to (8-bit pixels): mostly below the rank's, as its factors are quantized."
        if rows and rows[0].svdz_bytes is not None
        else "per value; no .svdz file of the global SVD is written for an image read out "
        "of core (-)."
    )
    out_console.print(
        f"* smallest visually lossless rank. Bar: SSIM >= {VISUALLY_LOSSLESS_SSIM} (Flynn et al., "
        "HCI International 2013: most observers stop telling compressed from original there). "
        f"The raw 8-bit image is {fmt_count(raw)} bytes "
        f"({8 * raw / (array.shape[0] * array.shape[1]):g} bpp); float32 factors count 4 bytes "
        + svdz,
        soft_wrap=True,
    )


def _print_choice(choice: object, *, json_output: bool) -> None:
    assert isinstance(choice, Choice)
    name = choice.criterion.name
    if json_output:
        print_json(
            {
                "criterion": criterion_label(choice.criterion),
                "rank": choice.rank,
                "measure": choice.unit,
                "value": choice.value,
                "neighbour": None if choice.neighbour is None else vars(choice.neighbour),
                "thresholds": [vars(t) for t in choice.thresholds],
            }
        )
        return
    if choice.thresholds:  # a noise threshold per channel (denoise)
        lines = [
            f"rank {choice.rank}: the singular values above the Gavish-Donoho threshold "
            "(noise estimated from the median singular value)"
        ]
        color = len(choice.thresholds) > 1
        for c, t in enumerate(choice.thresholds):
            channel = f"channel {c}: " if color else ""
            below = f", σ{t.rank + 1} = {fmt_sigma(t.dropped)}" if t.dropped is not None else ""
            lines.append(
                f"{channel}threshold τ = {fmt_sigma(t.threshold)}; σ{t.rank} = "
                f"{fmt_sigma(t.kept)}{below} (rank {t.rank})"
            )
    else:
        value = choice.criterion.value
        target = "" if value is None else f" (target {value:g})"
        lines = [f"rank {choice.rank}: {choice.unit} {_fmt_value(name, choice.value)}{target}"]
        if choice.neighbour is not None:
            other, other_value, why = (
                choice.neighbour.rank,
                choice.neighbour.value,
                choice.neighbour.why,
            )
            lines.append(f"rank {other}: {choice.unit} {_fmt_value(name, other_value)} ({why})")
    for line in lines:
        out_console.print(line, soft_wrap=True)


@command("denoise")
@handle_errors
def denoise_command(
    images: list[str] = ImagesArgument,
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        metavar="FILE",
        help="Denoised image (.png, ...); a folder for several images (NAME.png).",
    ),
    sigma: Optional[float] = typer.Option(
        None,
        "--sigma",
        min=0.0,
        metavar="S",
        help="Known noise level in [0, 1] units (default: estimated from the median σ).",
    ),
    add_noise: Optional[float] = typer.Option(
        None,
        "--add-noise",
        min=0.0,
        metavar="S",
        help="Treat IMAGE as clean: add Gaussian noise of this level first, then report "
        "PSNR before and after against the clean image.",
    ),
    seed: Optional[int] = typer.Option(
        None, "--seed", metavar="N", help="Seed of the added noise."
    ),
    noisy_output: Optional[Path] = typer.Option(
        None, "--noisy-output", metavar="FILE", help="Also save the noisy image here."
    ),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
    resume: bool = _batch.ResumeOption,
) -> None:
    """Remove Gaussian noise by keeping the singular values above the Gavish-Donoho
    optimal hard threshold.

    Several images, a folder or a glob: NAME.png in the --output folder for each, in
    parallel, one line per image (not with --add-noise); exit code 3 when some failed."""
    check_conflicts("denoise", workers=workers, scheduler=scheduler, resume=resume, force=force)

    if _batch.is_batch(images):
        if add_noise is not None or noisy_output is not None:
            raise UsageError("--add-noise and --noisy-output take one image, not a batch.")
        _batch.folder_mode(
            denoise_job,
            images,
            output,
            suffix=".png",
            label="denoising",
            options=dict(sigma=sigma),
            loading=dict(gray=gray, max_pixels=max_pixels, timeout=timeout),
            force=force,
            resume=resume,
            engine=_batch.where(workers, scheduler),
            report=_batch.line_report(lambda v: f"kept rank {v['rank']} of {v['full_rank']}"),
        )
        return
    image = images[0]
    if noisy_output is not None and add_noise is None:
        raise UsageError("--noisy-output needs --add-noise.")
    check_writable(output, force=force)
    if noisy_output is not None:
        check_writable(noisy_output, force=force)
    clean = load(image, gray=gray, max_pixels=max_pixels, timeout=timeout)
    noisy = clean if add_noise is None else make_noisy(clean, add_noise, rng=seed)
    with step("computing the SVD"):
        result = run_denoise(noisy, sigma=sigma)
    save_image(output, result.image, force=force)
    if noisy_output is not None:
        save_image(noisy_output, noisy, force=force)
    how = (
        f"known σ = {sigma:g}"
        if sigma is not None
        else "σ estimated from the median singular value"
    )
    out_console.print(
        f"Kept rank {result.rank} of {result.svd.full_rank} ({how}); wrote {output}.",
        soft_wrap=True,
    )
    if add_noise is not None:
        before = metrics.peak_signal_noise_ratio(clean, noisy.clip(0, 1))
        after = metrics.peak_signal_noise_ratio(clean, result.image)
        out_console.print(
            f"PSNR against the clean image: noisy {fmt_psnr(before)} dB, "
            f"denoised {fmt_psnr(after)} dB ({after - before:+.2f} dB).",
            soft_wrap=True,
        )
