"""Commands for real compression: compress, decompress, inspect."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.table import Table

from svdimage import codec
from svdimage._fileutil import check_writable, path_bytes
from svdimage._validation import is_chunked
from svdimage.batch.jobs import compress_image, compress_job
from svdimage.cli import _batch
from svdimage.cli._app import (
    ColorSpace,
    ForceOption,
    GrayOption,
    JsonOption,
    MaxPixelsLoadOption,
    MaxPixelsOption,
    MemoryLimitOption,
    TimeoutOption,
    UsageError,
    check_conflicts,
    command,
    fmt_bpp,
    fmt_count,
    fmt_psnr,
    fmt_ratio,
    fmt_ssim,
    handle_errors,
    image_for,
    out_console,
    print_json,
    renamed,
    step,
)
from svdimage.io import save_image
from svdimage.metrics import bits_per_pixel
from svdimage.ranks.criteria import parse_rank_item


@command()
@handle_errors
def compress(
    images: list[str] = typer.Argument(
        ..., metavar="IMAGE...", help="Image files, folders of images, or URLs."
    ),
    output: Path = typer.Option(
        ...,
        "--output",
        "-o",
        metavar="PATH",
        help="Output .svdz file; a folder for several images.",
    ),
    quality: Optional[float] = typer.Option(
        None, "--quality", min=1, max=100, metavar="Q", help="1-100, monotone (default 75)."
    ),
    rank: Optional[str] = typer.Option(
        None,
        "--rank",
        "-k",
        metavar="K",
        help="Global rank K (implies --global), or a criterion resolved on the global SVD: "
        "energy=0.99, error=0.05, ssim=0.95, knee, ...",
    ),
    psnr: Optional[float] = typer.Option(
        None, "--psnr", metavar="DB", help="Smallest file reaching DB."
    ),
    nbytes: Optional[int] = typer.Option(
        None,
        "--bytes",
        min=1,
        metavar="N",
        help="Best file of at most N bytes (within 3 % below it).",
    ),
    old_size: Optional[int] = typer.Option(None, "--size", min=1, hidden=True),
    bpp: Optional[float] = typer.Option(
        None, "--bpp", metavar="B", help="Best file of at most B bits/pixel (within 3 % below it)."
    ),
    tiles: Optional[int] = typer.Option(
        None,
        "--tiles",
        min=4,
        max=16,
        metavar="SIDE",
        help="Patch side in pixels: 4, 8 or 16 (the rows of the patch matrix whose SVD is "
        "coded). Default: 4 or 8, whichever codes this image better (each is tried).",
    ),
    global_svd: bool = typer.Option(False, "--global", help="One SVD per plane, no tiles."),
    color: ColorSpace = typer.Option(ColorSpace.ycbcr, "--color", help="ycbcr (4:2:0) or rgb."),
    gray: bool = GrayOption,
    force: bool = ForceOption,
    json_output: bool = JsonOption,
    max_pixels: int = MaxPixelsLoadOption,
    timeout: float = TimeoutOption,
    workers: Optional[int] = _batch.WorkersOption,
    scheduler: Optional[str] = _batch.SchedulerOption,
    resume: bool = _batch.ResumeOption,
    memory_limit: int = MemoryLimitOption,
) -> None:
    """Compress images to real .svdz files and compare them honestly with JPEG at equal size.

    One image: OUTPUT is the file, and a table compares it with the original and with the
    best JPEG of at most the same bytes. Several images, a folder (searched recursively) or a
    glob: OUTPUT is a folder (created if needed) that receives NAME.svdz for each (mirroring
    the input folder's subfolders), in parallel, with one line per image; a failing image is
    reported and skipped, and the exit code is then 3."""

    nbytes = renamed(nbytes, old_size, new="--bytes", old="--size")
    check_conflicts(
        "compress",
        quality=quality,
        psnr=psnr,
        bytes=nbytes,
        bpp=bpp,
        tiles=tiles,
        global_=global_svd,
        rank=rank,
        workers=workers,
        scheduler=scheduler,
        resume=resume,
        force=force,
    )
    batch = _batch.is_batch(images)
    if not batch and output.suffix.lower() != ".svdz":
        raise UsageError(
            f"output {str(output)!r} must end in .svdz (compress writes .svdz files; "
            "decompress turns one into a PNG)."
        )
    cap = None if rank is None else parse_rank_item(rank)
    loading: dict[str, Any] = dict(gray=gray, max_pixels=max_pixels, timeout=timeout)
    options: dict[str, Any] = dict(
        quality=quality,
        rank=cap,
        psnr=psnr,
        max_bytes=nbytes,
        bpp=bpp,
        tile=None if global_svd or rank is not None else ("auto" if tiles is None else tiles),
        color=color.value,
    )
    if not batch:
        check_writable(output, force=force)
        with image_for(
            images[0],
            **loading,
            memory_limit=memory_limit,
            workers=workers,
            scheduler=scheduler,
        ) as array:
            original = path_bytes(images[0]) if os.path.exists(images[0]) else None
            with step(f"compressing {images[0]}"):
                report = compress_image(
                    array,
                    output,
                    options=options,
                    force=force,
                    compare_jpeg=True,
                    original_bytes=original,
                )
        if json_output:
            print_json(_report_json(images[0], report))
        else:
            _print_report(images[0], report, out_of_core=is_chunked(array))
        return

    documents: list[dict[str, Any]] = []

    def one_line(outcome: Any) -> None:
        done = outcome.value
        if json_output:
            documents.append({"source": outcome.source, **done})
            return
        before = f"{fmt_count(done['original_bytes'])} -> " if done["original_bytes"] else ""
        out_console.print(
            f"{outcome.source} -> {done['output']}: {before}{fmt_count(done['bytes'])} "
            f"bytes, {fmt_bpp(done['bpp'])} bpp, PSNR {fmt_psnr(done['psnr'])} dB",
            soft_wrap=True,
        )

    try:
        _batch.folder_mode(
            compress_job,
            images,
            output,
            suffix=".svdz",
            label="compressing",
            options=dict(options=options),
            loading=loading,
            force=force,
            resume=resume,
            engine=_batch.where(workers, scheduler),
            report=one_line,
            what="compressed",
        )
    finally:
        if json_output:
            print_json(documents)


def _report_json(source: str, report: Any) -> dict[str, Any]:
    return {
        "source": source,
        "output": str(report.path),
        "shape": list(report.shape),
        "rank": report.rank,
        "jpeg_quality": report.jpeg_quality,
        "rows": [vars(row) for row in report.rows],
    }


def _print_report(source: str, report: Any, *, out_of_core: bool = False) -> None:
    if report.rank is not None:
        out_console.print(f"{source}: the criterion chose rank {report.rank}.", soft_wrap=True)
    table = Table(title=f"{source} -> {report.path}")
    for header in ("", "bytes", "bpp", "ratio", "PSNR dB", "SSIM"):
        table.add_column(header, justify="left" if not header else "right")
    original = report.rows[0].nbytes if report.rows[0].name == "original file" else None
    names = {
        ".svdz": ".svdz (this file)",
        "JPEG": f"JPEG quality {report.jpeg_quality} (no larger)",
    }
    for row in report.rows:
        ratio = fmt_ratio(original / row.nbytes) if original else ""
        table.add_row(
            names.get(row.name, row.name),
            fmt_count(row.nbytes),
            fmt_bpp(row.bits_per_pixel),
            ratio,
            fmt_psnr(row.psnr),
            fmt_ssim(row.ssim),
        )
    out_console.print(table)
    if out_of_core:
        out_console.print(
            "A tiled .svdz file (format 2.4: tiles of 2048 pixels, each decoded on its own). "
            "No JPEG is compared: Pillow encodes a JPEG whole, in memory.",
            soft_wrap=True,
        )
    elif report.jpeg_quality is None:
        out_console.print("No JPEG is this small (even quality 1 is larger).", soft_wrap=True)


@command()
@handle_errors
def decompress(
    source: Path = typer.Argument(..., metavar="FILE", help="An .svdz file."),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="FILE", help="Output image (.png, ...)."
    ),
    max_bytes: Optional[int] = typer.Option(
        None,
        "--max-bytes",
        min=1,
        metavar="N",
        help="Decode only the first N bytes (progressive: a lower-rank image).",
    ),
    force: bool = ForceOption,
    max_pixels: int = MaxPixelsOption,
) -> None:
    """Decode an .svdz file to an image. A tiled file (format 2.4 or 2.1, an image compressed
    out of core) decoded to .tif or .zarr is written band by band, never whole in memory."""

    check_writable(output, force=force)
    if codec.is_tiled(source) and output.suffix.lower() in (".tif", ".tiff", ".zarr"):
        if max_bytes is not None:
            raise ValueError("a tiled file decodes whole tiles; --max-bytes does not apply to it.")
        lazy = codec.open_tiled(source)
        shape = tuple(int(n) for n in lazy.shape)
        with step(f"decoding {source} tile by tile into {output}"):
            save_image(output, lazy, force=force)
        out_console.print(
            f"Wrote {output} ({shape[1]}x{shape[0]}, tile by tile) from "
            f"{fmt_count(os.path.getsize(source))} bytes.",
            soft_wrap=True,
        )
        return
    # 8-bit pixels straight from the decoder: the same file as from its float32 image.
    image = codec.load(source, max_bytes=max_bytes, max_pixels=max_pixels, dtype=np.uint8)
    save_image(output, image, force=force)
    used = os.path.getsize(source) if max_bytes is None else min(max_bytes, os.path.getsize(source))
    out_console.print(
        f"Wrote {output} ({image.shape[1]}x{image.shape[0]}) from {fmt_count(used)} bytes.",
        soft_wrap=True,
    )


@command("inspect")
@handle_errors
def inspect_command(
    source: Path = typer.Argument(..., metavar="FILE", help="An .svdz file."),
    json_output: bool = JsonOption,
    max_pixels: int = MaxPixelsOption,
) -> None:
    """Summarize an .svdz file (version, size, planes, ranks, bytes) after checking all of it."""

    info = codec.inspect(codec.read_file(source, max_pixels=max_pixels), max_pixels=max_pixels)
    header = info.header
    shape = tuple(header["shape"])
    bpp = bits_per_pixel(info.file_bytes, shape)
    if json_output:
        print_json(
            {
                "file": str(source),
                "version": f"{info.version[0]}.{info.version[1]}",
                "file_bytes": info.file_bytes,
                "header_bytes": info.header_bytes,
                "payload_bytes": info.payload_bytes,
                "bits_per_pixel": bpp,
                "checksums": "ok",
                "header": header,
                "planes": info.tile_ranks,
            }
        )
        return
    if "tile" in header and "color" not in header:  # tiled (2.1, 2.4): tiles are 2.0, 2.3
        count = int(info.tile_ranks[0]["tiles"])
        for line in (
            f"{source}: .svdz version {info.version[0]}.{info.version[1]}, checksums OK, "
            "every tile decoded and checked",
            f"image: {fmt_count(shape[1])} x {fmt_count(shape[0])} "
            f"{'gray' if len(shape) == 2 else 'colour'}, {fmt_count(count)} tiles of "
            f"{header['tile']} x {header['tile']} pixels, each a version-"
            f"{'2.3' if tuple(info.version) == (2, 4) else '2.0'} file",
            f"bytes: {fmt_count(info.file_bytes)} in all = {fmt_count(info.header_bytes)} header "
            f"+ {fmt_count(info.payload_bytes)} payload (a table of {fmt_count(count)} lengths "
            f"and the tiles); {fmt_bpp(bpp)} bits per pixel",
        ):
            out_console.print(line, soft_wrap=True)
        return
    mode = {
        "gray": "gray",
        "rgb": "RGB",
        "ycbcr": f"YCbCr {header['chroma'][0]}:{header['chroma'][1]}:{header['chroma'][2]}",
    }[header["color"]]
    if "patch" in header:
        layout = f"SVD of each plane's {header['patch']}x{header['patch']} patch matrix"
    elif header.get("tile") is None:
        layout = "global SVD (one tile per plane)"
    else:
        layout = f"{header['tile']}x{header['tile']} tiles"
    overhead = info.file_bytes - info.header_bytes - info.payload_bytes
    lines = [
        f"{source}: .svdz version {info.version[0]}.{info.version[1]}, checksums OK, "
        "payload fully checked",
        f"image: {fmt_count(shape[1])} x {fmt_count(shape[0])} {mode}, {layout}",
        f"bytes: {fmt_count(info.file_bytes)} in all = {fmt_count(info.header_bytes)} header + "
        f"{fmt_count(info.payload_bytes)} payload + {fmt_count(overhead)} framing; "
        f"{fmt_bpp(bpp)} bits per pixel",
    ]
    names = (
        ["gray"]
        if header["color"] == "gray"
        else (["R", "G", "B"] if header["color"] == "rgb" else ["Y", "Cb", "Cr"])
    )
    for name, plane, stats in zip(names, header["planes"], info.tile_ranks):
        h, w = plane["shape"]
        if "patches" in stats:
            what = (
                f"{fmt_count(int(stats['patches']))} patches, {int(stats['components'])} "
                "components of a shared basis"
            )
        elif "tiles" not in stats:  # 3.0: the global SVD
            what = f"rank {int(stats['components'])}"
        else:
            what = (
                f"{fmt_count(int(stats['tiles']))} tiles, mean rank "
                f"{stats['mean_rank']:.2f}, max rank {int(stats['max_rank'])}"
            )
        means = ""
        if plane.get("mean_divisor", 1) > 1:  # 2.2: means on a finer step than 2.0's
            means = (
                f", means on step {plane['step'] / (header['patch'] * plane['mean_divisor']):.3g}"
            )
        if plane.get("prediction", 0) > 0:  # 2.3: the second checkerboard half predicted
            means += f", every other patch predicted (weight {plane['prediction']}/4)"
        lines.append(
            f"plane {name} ({fmt_count(w)} x {fmt_count(h)}): {what}, "
            f"step {plane['step']:.4g}{means}"
        )
    for line in lines:
        out_console.print(line, soft_wrap=True)
