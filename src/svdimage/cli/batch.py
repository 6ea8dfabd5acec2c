"""The dataset command: survey."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from svdimage import batch
from svdimage.batch import bd_table
from svdimage.cli import _batch
from svdimage.cli._app import (
    ForceOption,
    GrayOption,
    MaxPixelsOption,
    TimeoutOption,
    check_conflicts,
    command,
    count_of,
    handle_errors,
    out_console,
)

BPP_DEFAULT = "0.25,0.5,1,2"
TARGETS_DEFAULT = "ssim=0.95,psnr=35,energy=0.99,knee"


def _rates(text: str) -> list[float]:
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ValueError(
            f"--bpp must be rates separated by commas, such as {BPP_DEFAULT}; got {text!r}."
        ) from None


@command()
@handle_errors
def survey(
    sources: list[str] = typer.Argument(
        ..., metavar="SOURCE...", help="Images, folders (searched recursively), globs or URLs."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="DIR", help="Folder for survey.csv, summary.md, figures."
    ),
    bpp: str = typer.Option(
        BPP_DEFAULT, "--bpp", metavar="LIST", help="Rates to compare codecs at (bits/pixel)."
    ),
    targets: str = typer.Option(
        TARGETS_DEFAULT,
        "--targets",
        metavar="LIST",
        help="Rank criteria to resolve on each image (as 'choose' takes them).",
    ),
    gray: bool = GrayOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
    resume: bool = typer.Option(
        False, "--resume", help="Continue the survey in --output: skip images it already has."
    ),
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
    timeout: float = TimeoutOption,
) -> None:
    """Survey a dataset: per image, the rank each target needs and .svdz against JPEG and
    WebP at equal bytes; then the dataset's summary.

    Writes survey.csv (one row per image, appended as each finishes, so an interrupted run
    keeps its rows and --resume goes on from them), survey.parquet (with pyarrow),
    summary.md (quartiles of every column, BD-PSNR and BD-SSIM against JPEG) and two
    figures. A failing image is a row with its error; the exit code is then 3."""

    check_conflicts("survey", workers=workers, scheduler=scheduler, resume=resume, force=force)
    engine = _batch.where(workers, scheduler)
    rates = _rates(bpp)
    wanted = [item.strip() for item in targets.split(",") if item.strip()]
    with _batch.progress(None, "surveying", lines=True) as advance:
        frame = batch.survey(
            sources,
            output,
            bpp=rates,
            targets=wanted,
            gray=gray,
            resume=resume,
            force=force,
            max_pixels=max_pixels,
            timeout=timeout,
            on_row=lambda outcome, done, total: advance(outcome, total),
            **engine,
        )
    fine = frame[frame["error"] == ""]
    lines = ["Wrote:", *(f"  {path}" for path in batch.survey_outputs(output))]
    for target in wanted:
        ranks = fine[f"rank_{target}"].dropna()
        if len(ranks):
            lines.append(
                f"{target}: median rank {ranks.median():g} "
                f"(quartiles {ranks.quantile(0.25):g}-{ranks.quantile(0.75):g}, "
                f"{count_of(len(ranks), 'image')})"
            )
    for row in bd_table(fine, rates) if len(fine) else []:
        if row["metric"] == "psnr" and math.isfinite(row["mean"]):
            name = ".svdz" if row["codec"] == "svdz" else "WebP"
            lines.append(
                f"{name} against JPEG at equal bytes: BD-PSNR {row['mean']:+.2f} dB "
                f"(mean of {count_of(row['images'], 'image')})"
            )
    for line in lines:
        out_console.print(line, soft_wrap=True)
    failed = int((frame["error"] != "").sum())
    _batch.finish(len(frame), failed, "surveyed")
