"""What the commands' batch modes share: the options, the run, the progress, the exit code.

A command is in batch mode when it is given several images, a folder or a
glob. The work runs on :mod:`svdimage.batch`'s engine; this module only shows
it: a Rich progress bar (images done of all, failures, ETA) on a terminal, a
line per failed image on stderr always, and exit code 3 when some failed.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import typer

from svdimage import _progress, batch
from svdimage.batch.jobs import plan_folder
from svdimage.chunked_io import is_zarr_store
from svdimage.cli._app import (
    EXIT_BAD_INPUT,
    UsageError,
    cli_text,
    count_of,
    err_console,
    error_line,
    note,
    out_console,
    settings,
)

WorkersOption = typer.Option(
    None,
    "--workers",
    min=0,
    metavar="N",
    help="Worker processes of a local Dask cluster: for a batch (default: the cores; 0 runs "
    "in this process), or for an image read out of core (default: threads of this process).",
)
SchedulerOption = typer.Option(
    None,
    "--scheduler",
    metavar="ADDRESS",
    help="A running Dask scheduler (tcp://host:8786) whose workers read the images (a batch, "
    "or an image read out of core) by the same path.",
)
ResumeOption = typer.Option(
    False, "--resume", help="Batch: skip the images whose outputs already exist."
)


def is_batch(items: Sequence[str]) -> bool:
    """Several inputs, a folder or a glob (one that is not itself a file's name)."""
    return len(items) > 1 or any(
        (os.path.isdir(item) and not is_zarr_store(item))
        or (glob.has_magic(item) and not os.path.exists(item))
        for item in items
    )


def where(workers: Optional[int], scheduler: Optional[str]) -> dict[str, Any]:
    """The engine's ``workers``/``scheduler`` arguments (refusing both at once)."""
    if workers is not None and scheduler is not None:
        raise UsageError("--workers and --scheduler do not go together; give one of them.")
    return {"workers": workers, "scheduler": scheduler}


@contextlib.contextmanager
def progress(
    total: int | None, label: str, *, lines: bool = False
) -> Iterator[Callable[..., None]]:
    """A progress bar on a terminal (not with --quiet); ``lines``: else one line per image.

    Yields ``advance(outcome, total=None)`` (``total`` once known, when it was
    not at the start; ``outcome=None`` gives only the total). A failed image is
    always one line on stderr.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    quiet = settings().quiet
    state: dict[str, Any] = {"done": 0, "failed": 0, "total": total}
    bar = None
    if err_console.is_terminal and not quiet:
        bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images, {task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
        )
        task = bar.add_task(label, total=total, failed=0)

    def advance(outcome: Any, total: int | None = None) -> None:
        if total is not None and state["total"] is None:
            state["total"] = total
            if bar is not None:
                bar.update(task, total=total)
        if outcome is None:  # only the total
            return
        state["done"] += 1
        if not outcome.ok:
            state["failed"] += 1
            line = error_line(cli_text(outcome.error), source=outcome.source)
            (bar.console if bar is not None else err_console).print(
                line, soft_wrap=True, markup=False, highlight=False
            )
        elif lines and bar is None and not quiet:
            err_console.print(
                f"svdimage: [{state['done']}/{state['total']}] {outcome.source}: done in "
                f"{outcome.seconds:.1f} s",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )
        if bar is not None:
            bar.update(task, advance=1, failed=state["failed"])

    # The images' bar (or lines) is the display: each image's own steps, run in this
    # process with --workers 0, would only flicker beneath it.
    with _progress.listening(None):
        if bar is None:
            yield advance
        else:
            with bar:
                yield advance


def finish(done: int, failed: int, what: str) -> None:
    """The closing line on stdout; exit 3 when some image failed."""
    text = (
        f"{done - failed:,} of {count_of(done, 'image')} {what}." if done else "Nothing left to do."
    )
    if failed:
        text += f" {failed:,} failed (see the error lines above); exit code {EXIT_BAD_INPUT}."
    out_console.print(text, soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


def run(
    job: Callable[[str], Any],
    sources: Sequence[str],
    *,
    label: str,
    engine: dict[str, Any],
    report: Callable[[Any], None],
    what: str,
) -> None:
    """Run ``job`` over ``sources`` with progress; ``report(outcome)`` prints a success."""

    failed = 0
    with progress(len(sources), label) as advance:
        for outcome in batch.map(job, sources, **engine):
            advance(outcome)
            if outcome.ok:
                report(outcome)
            else:
                failed += 1
    finish(len(sources), failed, what)


def line_report(line: Callable[[Any], str]) -> Callable[[Any], None]:
    """``report`` for :func:`folder_mode`: ``SOURCE -> OUTPUT: line(value)`` on stdout."""
    return lambda o: out_console.print(
        f"{o.source} -> {o.value['output']}: {line(o.value)}", soft_wrap=True
    )


def folder_mode(
    job: Callable[..., Any],
    items: list[str],
    folder: Path,
    *,
    suffix: str,
    label: str,
    options: dict[str, Any],
    loading: dict[str, Any],
    force: bool,
    resume: bool,
    engine: dict[str, Any],
    report: Callable[[Any], None],
    what: str = "written",
    done_marker: str = "",
) -> None:
    """A command's batch mode: ``job`` per image into ``folder`` (outputs named by
    :class:`svdimage.batch.jobs.Outputs`); ``--resume`` skips an image whose output (or
    ``done_marker`` inside its output folder) exists."""
    import functools

    plan = plan_folder(items, folder, suffix=suffix, resume=resume, done_marker=done_marker)
    if plan.done:
        total = len(plan.sources) + plan.done
        note(f"--resume: {plan.done:,} of {count_of(total, 'image')} already done.")
    task = functools.partial(job, outputs=plan.outputs, loading=loading, force=force, **options)
    run(task, plan.sources, label=label, engine=engine, report=report, what=f"{what} into {folder}")
