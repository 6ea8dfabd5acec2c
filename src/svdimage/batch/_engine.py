"""The batch engine: one function over many images, on Dask or in this process.

Package-internal; :func:`map` (as ``svdimage.batch.map``) and :class:`Outcome`
are re-exported by :mod:`svdimage.batch`.

Every image is one task, run by :func:`run_one` wherever it runs: with one
BLAS thread (so that workers do not fight over cores, and so that the numbers
are the same bit for bit in this process, on a local cluster and on a remote
one), with its exception turned into an error message (one bad image is one
failed row, never the end of the run). Tasks are submitted through a window
of twice the cluster's threads, so ten thousand images never sit in memory
or in the scheduler at once, and they come back as they finish.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from svdimage._linalg import one_core
from svdimage.batch._sources import is_url

__all__ = ["Outcome", "map", "run_one", "default_workers"]


@dataclass(frozen=True)
class Outcome:
    """What one image gave: ``value`` on success, else a one-line ``error``.

    Attributes
    ----------
    source : str
        The image as given (path or URL).
    value : object
        The function's result (``None`` when it failed).
    error : str or None
        ``None`` on success.
    seconds : float
        Wall time of the function on its worker (NaN when the worker died).
    """

    source: str
    value: Any
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the function returned."""
        return self.error is None


def default_workers() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def error_line(error: BaseException) -> str:
    """An exception as the one line a row or a terminal shows."""
    if isinstance(error, MemoryError):
        return "not enough memory for this image."
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename!s}"
    return " ".join((str(error) or type(error).__name__).split())


def run_one(func: Callable[[str], Any], source: str, path: str) -> Outcome:
    """Run ``func(path)`` for ``source`` on one core (:func:`one_core`); never raises."""
    start = time.perf_counter()
    try:
        with one_core(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes on conversions are not row data
            value = func(path)
    except Exception as error:  # noqa: BLE001 - one bad image is one failed row
        return Outcome(source, None, error_line(error), time.perf_counter() - start)
    return Outcome(source, value, None, time.perf_counter() - start)


def map(
    func: Callable[[str], Any],
    sources: Iterable[str],
    *,
    workers: int | None = None,
    scheduler: Any = None,
) -> Iterator[Outcome]:
    """Apply ``func`` to each image path or URL, yielding outcomes as they finish.

    Parameters
    ----------
    func : callable
        ``func(path_or_url) -> value``: any function Dask can pickle
        (cloudpickle: lambdas and closures too). It is called with an absolute
        path (a worker's working folder may differ) or the URL.
    sources : iterable of str
        Paths or URLs (see :func:`find_images`).
    workers : int, optional
        Worker processes of a local Dask cluster (default: this machine's
        cores, at most one per image), each with one thread; ``0`` runs
        everything in this process, in order, without Dask (the default for
        one image or one core).
    scheduler : str or distributed.Client, optional
        The address of a running Dask scheduler (``'tcp://host:8786'``) or a
        connected client; its workers must reach the images by the same path
        or URL. Not with ``workers``.

    Yields
    ------
    Outcome
        One per source, in the order they finish (the input order with
        ``workers=0``). A failure (a bad image, a worker that died three
        times on it) is an outcome with an ``error``, never an exception.

    Examples
    --------
    >>> from svdimage import batch
    >>> [o.value for o in batch.map(str.upper, ["https://example.org/a.png"], workers=0)]
    ['HTTPS://EXAMPLE.ORG/A.PNG']
    """
    sources = list(sources)
    if workers is not None and scheduler is not None:
        raise ValueError("give workers (a local cluster) or scheduler (a running one), not both.")
    if workers is not None and (isinstance(workers, bool) or not 0 <= workers <= 1024):
        raise ValueError(f"workers must be 0 (this process) to 1024; got {workers!r}.")
    paths = [source if is_url(source) else os.path.abspath(source) for source in sources]
    if workers is None and scheduler is None and min(default_workers(), len(sources)) <= 1:
        workers = 0  # one image or one core: a cluster would only add its start-up
    if workers == 0:
        for source, path in zip(sources, paths):
            yield run_one(func, source, path)
        return
    with _client(scheduler, workers) as client:
        yield from _stream(client, func, sources, paths)


def _stream(client: Any, func: Callable[[str], Any], sources: list[str], paths: list[str]) -> Any:
    from distributed import as_completed

    threads = max(1, sum(client.nthreads().values()))
    window = 2 * threads
    pending = iter(enumerate(zip(sources, paths)))
    run = uuid.uuid4().hex[:12]  # keys unique on a scheduler that other runs share
    origin: dict[str, str] = {}

    def submit() -> Any:
        item = next(pending, None)
        if item is None:
            return None
        index, (source, path) = item
        future = client.submit(
            run_one, func, source, path, key=f"svdimage-{run}-{index}", pure=False
        )
        origin[future.key] = source
        return future

    futures = [f for f in (submit() for _ in range(window)) if f is not None]
    stream = as_completed(futures, loop=client.loop)
    for future in stream:
        source = origin.pop(future.key)
        try:
            outcome = future.result()
        except Exception as error:  # noqa: BLE001 - KilledWorker, lost data: a failed row
            outcome = Outcome(source, None, _lost(error), math.nan)
        finally:
            future.release()
        yield outcome
        following = submit()
        if following is not None:
            stream.add(following)


def _lost(error: BaseException) -> str:
    if type(error).__name__ == "KilledWorker":
        return "the worker processing this image died each time (out of memory?)."
    return f"the cluster lost this task: {error_line(error)}"


@contextlib.contextmanager
def _client(scheduler: Any, workers: int | None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as error:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({error_line(error)}); "
                "start one with `dask scheduler` and `dask worker ADDRESS`, or check the address."
            ) from None
        with client:
            yield client
        return
    import dask

    with (
        _restored_environ(),
        _quiet_dask(),
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's
        # adaptive mmap threshold: every large temporary array is then mapped and faulted
        # in afresh, and a survey runs at half speed (measured: 41 s against 21 s an image).
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}),
    ):
        with _quiet_children():
            cluster = LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        with cluster, Client(cluster, set_as_default=False) as client:
            yield client


@contextlib.contextmanager
def _quiet_children() -> Iterator[None]:
    """Processes started in this block write their stderr to the null device: the local
    cluster's nannies and workers (and the workers they restart), and multiprocessing's
    resource tracker.

    A stop by SIGTERM or Ctrl-C reaches the whole process group; the main process then
    says so in one line (:mod:`svdimage.cli`), while its children, dying beside it, would
    add shutdown noise ("resource_tracker: process died unexpectedly", a BrokenPipeError
    traceback from a finalizer). A failure of a worker still reaches the user, as the
    failed rows of its images.
    """
    from multiprocessing import resource_tracker

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2: nothing to quiet
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        resource_tracker.ensure_running()
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextlib.contextmanager
def _restored_environ() -> Iterator[None]:
    """Dask's nanny writes its workers' variables (OMP_NUM_THREADS=1, ...) into this
    process's environment before spawning them; the caller's environment comes back after."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            del os.environ[key]
        os.environ.update(before)


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own log lines (a restarted worker, a closing comm) are not the user's business:
    a failed image is a row, and the progress shows the rest."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
