"""The Dask clients svdimage starts: of a running scheduler, or of a quiet local cluster.

Package-internal: the batch engine (:mod:`svdimage.batch`) submits one task an
image to such a client; an image bigger than memory
(:func:`svdimage.chunked_io.running_on`) computes its passes on one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["dask_client", "available_cores"]


#: What a worker process holds besides its share of the data (Python, NumPy, Dask: about
#: 150 MiB measured; the rest is headroom), added to its memory limit.
WORKER_BASE_BYTES = 512 * 2**20


def available_cores() -> int:
    """The cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(
    scheduler: Any,
    workers: int | None,
    *,
    memory_limit: int | None = None,
    set_as_default: bool = False,
) -> Iterator[Any]:
    """A Dask client: ``scheduler`` itself when it is a ``Client``, a client of the
    scheduler at that address, or of a local cluster of ``workers`` processes (default:
    one per core) of one thread each, whose processes are quiet (see
    :func:`_quiet_children`) and share ``memory_limit`` bytes of data (each also gets
    :data:`WORKER_BASE_BYTES` for itself; default: Dask's own limit).
    ``set_as_default`` makes ``dask.compute`` run on it inside the block."""
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s", set_as_default=set_as_default)
        except (OSError, TimeoutError, ValueError) as error:
            why = " ".join(str(error).split()) or type(error).__name__
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {scheduler!r} ({why}); "
                "start one with `dask scheduler` and `dask worker ADDRESS`, or check the address."
            ) from None
        with client:
            yield client
        return
    import dask

    n_workers = workers or available_cores()
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
                n_workers=n_workers,
                threads_per_worker=1,
                # Dask pauses a worker whose whole process passes 80 % of its limit: the
                # share of the data plus what the interpreter and libraries hold.
                memory_limit="auto"
                if memory_limit is None
                else memory_limit // n_workers + WORKER_BASE_BYTES,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        with cluster, Client(cluster, set_as_default=set_as_default) as client:
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
