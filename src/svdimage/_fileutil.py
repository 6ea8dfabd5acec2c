"""Atomic, no-clobber file writing shared by every writer in the package, and the
one rule for inputs.

Every input is a regular file (:func:`check_regular_input`), never a FIFO, a
device or a socket. For every output: a missing folder on the way is created
(with its parents, as ``mkdir -p``) when the output is written; an existing
file is never replaced without ``force``; a path that is a folder, a FIFO or a
device (never replaced, ``force`` or not), a folder on the way that is a file,
a folder that cannot be written, or a full disk is refused before any work is
done; a disk that fills up meanwhile is reported with the output's name, not
the temporary file's. Temporary files are named
``.STEM.svdimage-PID.RANDOM.tmp.EXT``; one left by a killed process is removed
by the next write into its folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "path_bytes",
    "atomic_path",
    "check_writable",
    "check_regular_input",
    "special_kind",
    "remove_live_temporaries",
]


def special_kind(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is not a regular file (following symbolic
    links): ``"a folder"``, ``"a FIFO (named pipe)"``, ``"a character device"``, ``"a block
    device"``, ``"a socket"``; ``None`` for a regular file or a path that does not exist."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"  # pragma: no cover - door files and the like


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """A path that must be a regular file is a FIFO, a device, a socket or a folder."""


def check_regular_input(path: str | os.PathLike[str], *, what: str = "input") -> None:
    """Refuse, at once, an input that is not a regular file.

    Reading a FIFO blocks until something writes to it, a device never ends,
    a socket cannot be opened: none of them is a file an image or an ``.svdz``
    can be read from. Checked with ``stat`` (no ``open``, which would block on
    a FIFO); a path that does not exist is left to the caller.

    Raises
    ------
    IsADirectoryError
        For a folder.
    NotRegularFileError
        For a FIFO, a device or a socket (an :class:`OSError`: the command
        line's exit code 4).
    """
    kind = special_kind(path)
    if kind == "a folder":
        raise IsADirectoryError(f"{what} {os.fspath(path)!r} is a folder, not a file.")
    if kind is not None:
        raise NotRegularFileError(
            f"{what} {os.fspath(path)!r} is {kind}, not a regular file; give a file."
        )


def check_writable(path: str | os.PathLike[str], *, force: bool) -> Path:
    """Fail early when ``path`` cannot be written: it is a folder, it exists and
    ``force`` is off, or something on the way to it is a file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"output {str(path)!r} is a folder, not a file.")
    kind = special_kind(path)
    if kind is not None:  # a device node or a FIFO is never replaced, --force or not
        raise NotRegularFileError(
            f"output {str(path)!r} is {kind}; only regular files are written or replaced "
            "(choose another output)."
        )
    if path.exists() and not force:
        raise _exists_error(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise NotADirectoryError(
            f"cannot write {str(path)!r}: {str(ancestor)!r} is a file, not a folder."
        )
    if ancestor.is_dir() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {str(path)!r}: the folder {str(ancestor)!r} is not writable "
            "(read-only or not yours); choose another output",
        )
    if ancestor.is_dir() and _free_bytes(ancestor) == 0:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return path


def _free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``folder``'s file system (None: unknown)."""
    try:
        info = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return info.f_bavail * info.f_frsize


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success.

    The caller writes the whole file to the yielded path. On normal exit the
    file is renamed onto ``path`` (``os.replace`` with ``force``; a hard link
    that fails if ``path`` appeared meanwhile, without it), so readers never
    see a half-written file and an existing file is never clobbered by
    accident. On error the temporary file is removed and ``path`` is untouched.
    """
    target = check_writable(path, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = target.parent.resolve()
    if folder not in _CLEANED:  # once per folder and process: a batch writes many files
        _CLEANED.add(folder)
        remove_stale_temporaries(folder)
    # Signals are held while the file is created and named, so that a Ctrl-C or SIGTERM
    # cannot land between its creation and ``tmp``; one held meanwhile is delivered when the
    # mask is restored, inside the ``try`` whose ``finally`` removes the file.
    tmp: Path | None = None
    try:
        with _signals_held():
            # Keep the target's extension last: writers such as ffmpeg pick the format from it.
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.stem}.{_TEMP_TAG}{os.getpid()}.",
                suffix=f".tmp{target.suffix}",
                dir=target.parent or ".",
            )
            tmp = Path(tmp_name)
            os.close(fd)
        _LIVE.add(tmp)
        try:
            yield tmp
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
                # The writer names our temporary file; the user knows the output's name.
                raise OSError(err.errno, os.strerror(err.errno), str(target)) from None
            raise
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise _exists_error(target) from None
            except OSError:  # file systems without hard links
                if target.exists():
                    raise _exists_error(target) from None
                os.replace(tmp, target)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            _LIVE.discard(tmp)


#: Temporary files being written now (removed by :func:`remove_live_temporaries` on a signal).
_LIVE: set[Path] = set()


def remove_live_temporaries() -> None:
    """Remove the temporary files being written now: for a signal handler about to exit.

    Safe to call at any moment: a file already renamed into place or removed is
    skipped, and nothing here allocates much or takes a lock.
    """
    for tmp in list(_LIVE):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


#: Temporary files of ours are named ``.STEM.svdimage-PID.RANDOM.tmp.EXT``.
_TEMP_TAG = "svdimage-"
#: Folders already swept of stale temporaries by this process.
_CLEANED: set[Path] = set()
_TEMP_NAME = re.compile(r"^\..*\." + _TEMP_TAG + r"(\d+)\.[^.]+\.tmp(\.[^.]*)?$")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove temporary files that a killed svdimage left in ``folder``; return them.

    Only files named as :func:`atomic_path` names them, whose process no longer
    runs, are removed (a process killed with SIGKILL cannot clean up after itself).
    """
    removed = []
    with contextlib.suppress(OSError):
        for entry in folder.iterdir():
            match = _TEMP_NAME.match(entry.name)
            if match and entry.is_file() and not _process_alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM inside the block (main thread, POSIX); deliver them after."""
    import signal
    import threading

    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = mask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, previous)


def _exists_error(path: Path) -> FileExistsError:
    return FileExistsError(f"output {str(path)!r} already exists; pass force=True to overwrite it.")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def path_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes a file holds, or all the files under a folder (a Zarr array is a folder)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size
