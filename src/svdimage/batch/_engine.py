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

import math
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from svdimage._dask import available_cores, dask_client
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
    return available_cores()


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
    with dask_client(scheduler, workers) as client:
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
