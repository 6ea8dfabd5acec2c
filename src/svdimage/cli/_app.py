"""The shell shared by every command: the Typer app, errors, options, output, formats.

Every error becomes one line on stderr and a documented exit code
(:data:`EXIT_CODES`); ``--debug`` shows the traceback instead. Numbers are
formatted here, one way for each quantity.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional, TypeVar

import typer
import typer.core
from rich.console import Console

try:  # Typer 0.2x carries its own copy of Click; its commands run in that copy's contexts
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
    from typer._click.exceptions import UsageError as ClickUsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - Typer with Click as a dependency
    from click import get_current_context  # type: ignore[no-redef]
    from click.exceptions import ClickException, NoArgsIsHelpError  # type: ignore[assignment]
    from click.exceptions import UsageError as ClickUsageError  # type: ignore[assignment]

import svdimage
from svdimage import _progress
from svdimage._validation import DEFAULT_MAX_PIXELS
from svdimage.io import ImageNote, load_image

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_FILES = 4
EXIT_NETWORK = 5

EXIT_CODES = f"""Exit codes: {EXIT_OK} success; {EXIT_INTERNAL} internal error (a bug: please
report it with --debug output); {EXIT_USAGE} bad command-line usage (unknown or conflicting
options);
{EXIT_BAD_INPUT} bad input value (not an image, corrupt file, rank out of range, over a size or
memory cap);
{EXIT_FILES} file problem (input missing, output exists without --force, folder not writable,
disk full);
{EXIT_NETWORK} network problem (URL unreachable or too slow); 130/143 stopped by Ctrl-C/SIGTERM
(the output being written is removed). Missing output folders are created."""


class Group(typer.core.TyperGroup):
    """The ``svdimage`` command group: a usage error is one line and one hint.

    Click's own report of a usage error is four lines (usage, hint, blank,
    ``Error: ...``) in a box; here it is ``svdimage: error: ...`` and the
    ``--help`` to try, like every other error of the command line.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = functools.partial(
            super().main,
            args,
            prog_name,
            complete_var,
            standalone_mode=False,
            windows_expand_args=windows_expand_args,
            **extra,
        )
        if not standalone_mode:
            return run()
        try:
            code = run()
        except NoArgsIsHelpError as error:  # ``svdimage`` alone: its help
            error.show()
            raise SystemExit(EXIT_USAGE) from None
        except ClickUsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "svdimage"
            err_console.print(error_line(error.format_message()), soft_wrap=True)
            err_console.print(f"Try '{where} --help' for help.", soft_wrap=True)
            raise SystemExit(EXIT_USAGE) from None
        except ClickException as error:
            err_console.print(error_line(error.format_message()), soft_wrap=True)
            raise SystemExit(error.exit_code) from None
        except typer.Abort:
            err_console.print("svdimage: aborted.", soft_wrap=True)
            raise SystemExit(EXIT_INTERNAL) from None
        raise SystemExit(code if isinstance(code, int) else EXIT_OK)


app = typer.Typer(
    name="svdimage",
    cls=Group,
    help="Compress and explore images with truncated SVD.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Argument(typer.core.TyperArgument):
    """Arguments shown as Unix help shows them: ``IMAGE`` and ``IMAGE...``, not
    ``{IMAGE}`` with a ``<str>`` or ``<list[str]>`` type tag."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class Command(typer.core.TyperCommand):
    """Every ``svdimage`` command: readable argument names in ``--help``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is typer.core.TyperArgument:
                param.__class__ = _Argument


def command(name: str | None = None) -> Callable[[F], F]:
    """``@command()``: register a function as an ``svdimage`` command."""
    return app.command(name, cls=Command)


def shown(text: str) -> str:
    """``text`` safe to print on one terminal line: control characters (newlines, escape
    sequences, C1 codes such as U+009B) written as Python escapes (``\\n``, ``\\x9b``)."""
    return "".join(repr(char)[1:-1] if _is_control(char) else char for char in text)


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp")


class _Console(Console):
    """A Rich console that prints every string as the text it is: never as markup (a file
    named ``d[/x].png`` or ``[bold]photo.png`` is printed as named) and with its control
    characters escaped (:func:`shown`), wherever the string sits (a line, a table's cell or
    title)."""

    def render_str(self, text: str, **kwargs: Any) -> Any:
        kwargs["markup"] = False
        return super().render_str(shown(text), **kwargs)


out_console = _Console(highlight=False, markup=False)
err_console = _Console(stderr=True, highlight=False, markup=False)


@dataclass(frozen=True)
class Settings:
    """The global options of one ``svdimage`` run (``--debug``, ``--quiet``), kept on the
    command's Click context (``ctx.obj``), not in module state."""

    debug: bool = False
    quiet: bool = False


def settings() -> Settings:
    """This run's :class:`Settings` (the defaults outside a command, as in a library call)."""
    ctx = get_current_context(silent=True)
    obj = None if ctx is None else ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


F = TypeVar("F", bound=Callable[..., Any])


class UsageError(ValueError):
    """Options that do not go together: exit code 2, like Typer's own usage errors."""


# -- options shared by several commands --------------------------------------
ImageArgument = typer.Argument(..., metavar="IMAGE", help="Image file or http(s) URL.")
ImagesArgument = typer.Argument(
    ...,
    metavar="IMAGE...",
    help="Image file or http(s) URL; several, a folder or a glob for a batch.",
)
GrayOption = typer.Option(False, "--gray", help="Convert to gray (BT.709 luma) first.")
ForceOption = typer.Option(False, "--force", "-f", help="Overwrite existing outputs.")
JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout, nothing else.")
MaxPixelsOption = typer.Option(
    DEFAULT_MAX_PIXELS,
    "--max-pixels",
    min=4,
    metavar="N",
    help="Refuse images with more pixels than this.",
)
MaxPixelsLoadOption = typer.Option(
    DEFAULT_MAX_PIXELS,
    "--max-pixels",
    min=4,
    metavar="N",
    help="Load images of up to this many pixels; one TIFF, Zarr or .npy image over it is read "
    "out of core (see --memory-limit), any other (or one of a batch) is refused.",
)
TimeoutOption = typer.Option(
    10.0, "--timeout", min=0.1, metavar="SECONDS", help="Seconds to wait for a URL."
)


# -- errors ------------------------------------------------------------------
def exit_code(error: BaseException) -> int:
    """The documented exit code of an exception."""
    if isinstance(error, MemoryError) or _worker_died(error):
        return EXIT_BAD_INPUT
    if isinstance(error, UsageError):
        return EXIT_USAGE
    if isinstance(error, (TimeoutError, ConnectionError)):
        return EXIT_NETWORK
    if isinstance(error, OSError):
        return EXIT_FILES
    if isinstance(error, (ValueError, TypeError)):
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def message(error: BaseException) -> str:
    """An exception as one line of text."""
    if isinstance(error, MemoryError):
        return "not enough memory for this image; use a smaller image, or free some memory."
    if _worker_died(error):
        return (
            "a Dask worker died computing this image, each time Dask retried (out of memory?); "
            "lower --memory-limit, or give the workers more memory."
        )
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename!s}"
    return cli_text(" ".join((str(error) or type(error).__name__).split()))


def _worker_died(error: BaseException) -> bool:
    """Dask's KilledWorker (distributed is not imported to tell)."""
    return type(error).__name__ == "KilledWorker"


def cli_text(text: str) -> str:
    """A library message with its parameter names as command-line options (:data:`CLI_FIXES`):
    the one place where the command line rewords the library."""
    for python, command_line in CLI_FIXES:
        text = text.replace(python, command_line)
    return text


#: The library's messages name Python parameters; the command line names its options.
#: Every option named here exists on the commands whose errors can contain the phrase
#: (tests/test_cli.py checks it).
CLI_FIXES = (
    ("pass force=True", "pass --force"),
    ("raise max_pixels", "raise --max-pixels"),
    ("raise the timeout", "raise --timeout"),
    ("raise max_bytes if you trust it", "download it yourself and pass the file's path"),
    ("pass max_bytes of at least", "pass --max-bytes of at least"),
    ("pass max_bytes of at most", "pass --max-bytes of at most"),
)


def report_error(error: BaseException, *, source: str | None = None) -> int:
    """Print ``error`` as one line on stderr (or re-raise it with ``--debug``); return its code."""
    if settings().debug:
        raise error
    code = exit_code(error)
    line = error_line(message(error), source=source, internal=code == EXIT_INTERNAL)
    err_console.print(line, soft_wrap=True, markup=False)
    return code


def error_line(text: str, *, source: str | None = None, internal: bool = False) -> str:
    """``svdimage: error: SOURCE: TEXT``, naming the source once: not again when the
    library's message already names it (``photo.jpg is not an image file ...``)."""
    where = f"{source}: " if source and source not in text else ""
    return f"svdimage: {'internal error' if internal else 'error'}: {where}{text}"


def handle_errors(func: F) -> F:
    """Turn exceptions into one line on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        display = StepDisplay()
        try:
            with _progress.listening(display):
                try:
                    return func(*args, **kwargs)
                finally:
                    display.close()
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("svdimage: interrupted.", soft_wrap=True)
            raise typer.Exit(130) from None
        except Exception as error:  # noqa: BLE001 - the one place errors become exit codes
            raise typer.Exit(report_error(error)) from None

    return wrapper  # type: ignore[return-value]


class ColorSpace(str, Enum):
    """``compress --color``."""

    ycbcr = "ycbcr"
    rgb = "rgb"


class StorageCount(str, Enum):
    """``choose --storage``: how byte budgets count."""

    values = "values"
    svdz = "svdz"


#: Options that do not go together, by command: in each group at most one may be given.
#: The one table of them; ``tests/test_cli.py`` runs every pair of every group and expects
#: exit code 2 with one line.
CONFLICTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "compress": (
        ("--quality", "--psnr", "--bytes", "--bpp"),
        ("--tiles", "--global"),
        ("--tiles", "--rank"),
        ("--workers", "--scheduler"),
        ("--resume", "--force"),
    ),
    "choose": (
        (
            "--max-error",
            "--energy",
            "--psnr",
            "--ssim",
            "--ratio",
            "--bytes",
            "--bpp",
            "--percent",
            "--knee",
            "--denoise",
        ),
        ("--workers", "--scheduler"),
    ),
    # --resume keeps what exists, --force replaces it: one or the other.
    "sweep": (("--workers", "--scheduler"), ("--resume", "--force")),
    "reconstruct": (("--workers", "--scheduler"), ("--resume", "--force")),
    "info": (("--workers", "--scheduler"),),
    "explore": (("--workers", "--scheduler"),),
    "denoise": (("--workers", "--scheduler"), ("--resume", "--force")),
    "survey": (("--workers", "--scheduler"), ("--resume", "--force")),
}


def check_conflicts(command: str, **given: Any) -> None:
    """Refuse (exit 2, one line) two options of a group of :data:`CONFLICTS` given together.

    ``given`` maps each option's parameter name (``max_error`` for ``--max-error``) to its
    value; ``None`` and ``False`` count as not given."""
    present = {
        f"--{name.rstrip('_').replace('_', '-')}"
        for name, value in given.items()
        if value not in (None, False)
    }
    for group in CONFLICTS.get(command, ()):
        both = [option for option in group if option in present]
        if len(both) > 1:
            raise UsageError(f"{' and '.join(both)} do not go together; give one of them.")


def renamed(value: Any, old_value: Any, *, new: str, old: str) -> Any:
    """The value of option ``new``, or of its old spelling ``old`` (hidden from ``--help``),
    which still works for one minor version and says so on stderr."""
    if old_value is None:
        return value
    if value is not None:
        raise UsageError(f"{old} is the old spelling of {new}: give {new} once.")
    err_console.print(
        f"svdimage: warning: {old} is deprecated and will be removed in 0.3; use {new}.",
        soft_wrap=True,
        markup=False,
    )
    return old_value


def count_of(n: int, noun: str) -> str:
    """``'1 image'``, ``'1,024 images'``: a count with its noun in the right number."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def one_of(**options: Any) -> None:
    """Refuse (exit 2) when more than one of ``options`` is given."""
    given = [
        f"--{name.replace('_', '-')}"
        for name, value in options.items()
        if value not in (None, False)
    ]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} do not go together; give one of them.")


@contextlib.contextmanager
def step(text: str) -> Iterator[None]:
    """A step of the command itself, shown as the library's steps are (:class:`StepDisplay`)."""

    with _progress.task(text):
        yield


class StepDisplay:
    """How a command shows the library's steps (:mod:`svdimage._progress`) on stderr.

    On a terminal: one Rich line per running step, with a bar, done/total and
    an ETA when the step's work can be counted (an SVD's channels, ranks
    measured, frames), its elapsed time otherwise; each line goes when its
    step ends. Elsewhere (a log, a pipe): one line per finished step that
    took a second or more. Nothing with ``--quiet``.
    """

    #: Steps shorter than this are not worth a line in a log.
    LOG_SECONDS = 1.0

    def __init__(self) -> None:
        self._bar: Any = None
        self._ids: dict[int, Any] = {}
        self._live = err_console.is_terminal and not settings().quiet

    def started(self, task: Any) -> None:
        if not self._live:
            return
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self._bar.start()
        self._ids[id(task)] = self._bar.add_task(
            shown(task.name),
            total=task.total,
            count=self._count(task),
            eta="ETA" if task.total else "",
        )

    def advanced(self, task: Any) -> None:
        if self._bar is not None and id(task) in self._ids:
            self._bar.update(
                self._ids[id(task)], completed=task.done, total=task.total, count=self._count(task)
            )

    @staticmethod
    def _count(task: Any) -> str:
        """``2/3 channels``; ``5 ranks measured`` when the total is not known."""
        done = f"{task.done:,}/{task.total:,}" if task.total else f"{task.done:,}"
        return f"{done} {task.unit}" if task.unit else (done if task.total else "")

    def finished(self, task: Any) -> None:
        if self._bar is not None and id(task) in self._ids:
            self._bar.remove_task(self._ids.pop(id(task)))
            if not self._ids:
                self._bar.stop()
                self._bar = None
        elif not settings().quiet and not self._live and task.seconds >= self.LOG_SECONDS:
            counted = f"{task.done:,} of {task.total:,}" if task.total else f"{task.done:,}"
            counted = f"{counted} {task.unit} in " if task.unit else ""
            err_console.print(
                f"svdimage: {task.name}: {counted}{task.seconds:.1f} s",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )

    def close(self) -> None:
        """Stop the display (a step interrupted by an error leaves no bar behind)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def print_json(document: Any) -> None:
    """``document`` as JSON on stdout (non-finite numbers as null)."""
    out_console.print_json(json.dumps(_finite(document)), highlight=False, ensure_ascii=True)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- numbers, one format per quantity ------------------------------------------
def fmt_count(n: int) -> str:
    """Counts and bytes: thousands separators."""
    return f"{n:,}"


def fmt_psnr(db: float | None) -> str:
    """PSNR in dB: 2 decimals (identical images: inf)."""
    if db is None:
        return ""
    return "inf" if math.isinf(db) else f"{db:.2f}"


def fmt_ssim(value: float | None) -> str:
    """SSIM: 4 decimals; n/a below SSIM's 7x7 window."""
    if value is None:
        return ""
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def fmt_error(value: float) -> str:
    """Relative error: 4 decimals."""
    return f"{value:.4f}"


def fmt_sigma(value: float) -> str:
    """Singular values: 4 significant digits, trailing zeros kept, so that the values of a
    list line up (``319.0, 243.2, 175.5``, not ``319, 243.2, 175.5``)."""
    return f"{value:#.4g}".rstrip(".")


def fmt_bpp(value: float) -> str:
    """Bits per pixel: 3 decimals."""
    return f"{value:.3f}"


def fmt_ratio(value: float) -> str:
    """Ratios: 2 decimals."""
    return f"{value:.2f}"


def fmt_percent(fraction: float) -> str:
    """A fraction as a percentage: 3 decimals."""
    return f"{100 * fraction:.3f}"


# -- loading -------------------------------------------------------------------
def load(source: str, *, gray: bool, max_pixels: int, timeout: float) -> Any:
    """Load an image for a command, with a spinner; its notes become lines on stderr."""
    with step(f"loading {source}"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageNote)
        image = load_image(
            source, mode="gray" if gray else "auto", max_pixels=max_pixels, timeout=timeout
        )
    for warning in caught:
        if isinstance(warning.message, ImageNote):
            note(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return image


@contextlib.contextmanager
def image_for(
    source: str,
    *,
    gray: bool,
    max_pixels: int,
    timeout: float,
    memory_limit: int,
    workers: Optional[int] = None,
    scheduler: Optional[str] = None,
) -> Iterator[Any]:
    """The command's image for the block: loaded (:func:`load`), or, for a TIFF, Zarr or
    ``.npy`` image too big to load (:func:`svdimage.chunked_io.open_if_too_big`), a lazy
    Dask array whose computations run on the Dask scheduler ``workers``/``scheduler``
    name (:func:`svdimage.chunked_io.running_on`) inside the block, with part of it kept in
    memory (:func:`svdimage.chunked_io.memory_plan`); a note says so."""
    from svdimage import chunked_io

    if workers == 0:
        workers = None  # --workers 0 (this process) is the threads of this process
    lazy = chunked_io.open_if_too_big(
        source, max_pixels=max_pixels, memory_limit=memory_limit, workers=workers
    )
    if lazy is None:
        yield load(source, gray=gray, max_pixels=max_pixels, timeout=timeout)
        return
    from svdimage._validation import format_bytes

    M, N = (int(n) for n in lazy.shape[:2])
    nbytes = 4 * int(math.prod(lazy.shape))
    where = f"on {scheduler}" if scheduler else f"on {workers} local workers" if workers else ""
    note(
        f"{source} is {N:,}x{M:,} ({format_bytes(nbytes)} as float32): read out of core, in "
        f"passes over its chunks{' ' + where if where else ''}, in at most "
        f"{format_bytes(memory_limit)} besides the factors (--memory-limit)."
    )
    if gray:
        lazy = chunked_io.luma(lazy)
    _, keep = chunked_io.memory_plan(memory_limit, workers=workers)
    with chunked_io.running_on(workers=workers, scheduler=scheduler, memory_limit=memory_limit):
        with step(f"reading up to {format_bytes(keep)} of {source} into memory"):
            lazy = chunked_io.keep_leading(lazy, keep)
        yield lazy


def memory_limit_option(value: str) -> int:
    """``--memory-limit``: bytes from ``2GiB``, ``512MB``, ``1e9``."""
    from dask.utils import parse_bytes

    try:
        limit = int(parse_bytes(value))
    except (ValueError, TypeError):
        raise typer.BadParameter(f"{value!r} is not a size; write it like 2GiB or 512MB.") from None
    if limit < 64 * 2**20:
        raise typer.BadParameter(f"{value!r} is below the 64MiB an out-of-core pass needs.")
    return limit


MemoryLimitOption = typer.Option(
    "2GiB",
    "--memory-limit",
    metavar="SIZE",
    parser=memory_limit_option,
    help="An image too big to load (a TIFF, Zarr or .npy over --max-pixels or a quarter of "
    "the memory) is read out of core in this much memory, besides its factors.",
)


def note(text: str) -> None:
    """An informational line on stderr (``svdimage: note: ...``), unless ``--quiet``."""
    if not settings().quiet:
        err_console.print(f"svdimage: note: {text}", soft_wrap=True, markup=False)


def _version(value: bool) -> None:
    if value:
        out_console.print(f"svdimage {svdimage.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="No notes or progress on stderr, only errors (may follow the command, too).",
    ),
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.find_root().obj = Settings(debug=debug, quiet=quiet)
