import errno
import os

import pytest

from svdimage._fileutil import (
    _LIVE,
    NotRegularFileError,
    atomic_path,
    check_regular_input,
    check_writable,
    remove_live_temporaries,
    special_kind,
)


def test_atomic_path_moves_a_complete_file_into_place(tmp_path):
    target = tmp_path / "out.mp4"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(
            ".mp4"
        )  # writers pick formats by suffix
        assert not target.exists()  # nothing visible until done
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert os.listdir(tmp_path) == ["out.mp4"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def test_atomic_path_removes_the_temporary_file_on_error(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.png") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert os.listdir(tmp_path) == []


def test_atomic_path_never_clobbers_a_file_that_appears_meanwhile(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError, match="already exists"), atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
        target.write_bytes(b"someone else's")  # a race with another writer
    assert target.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.png"]


def test_atomic_path_with_force_replaces(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with atomic_path(target, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_check_writable_errors(tmp_path):
    (tmp_path / "exists.png").write_bytes(b"")
    with pytest.raises(FileExistsError, match="force=True"):
        check_writable(tmp_path / "exists.png", force=False)
    with pytest.raises(IsADirectoryError):
        check_writable(tmp_path, force=True)
    # Missing folders are created when the file is written (the package's one rule) ...
    assert check_writable(tmp_path / "missing" / "deep" / "x.png", force=False)
    with atomic_path(tmp_path / "missing" / "deep" / "x.png") as tmp:
        tmp.write_bytes(b"made")
    assert (tmp_path / "missing" / "deep" / "x.png").read_bytes() == b"made"
    # ... but a file on the way is refused before any work.
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        check_writable(tmp_path / "plain" / "sub" / "x.png", force=False)
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        check_writable(tmp_path, force=False)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_stale_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)  # that process has exited
    stale = tmp_path / f".photo.svdimage-{pid}.abc123.tmp.png"
    alive = tmp_path / f".photo.svdimage-{os.getpid()}.def456.tmp.png"
    foreign = tmp_path / ".photo.abc123.tmp.png"  # not named as ours: never touched
    for path in (stale, alive, foreign):
        path.write_bytes(b"partial")
    with atomic_path(tmp_path / "new.png") as tmp:
        assert ".svdimage-" in tmp.name and str(os.getpid()) in tmp.name
        tmp.write_bytes(b"whole")
    assert not stale.exists() and alive.exists() and foreign.exists()
    assert (tmp_path / "new.png").read_bytes() == b"whole"


def test_a_full_disk_is_reported_with_the_outputs_name(tmp_path):
    target = tmp_path / "out.svdz"
    with pytest.raises(OSError) as caught, atomic_path(target) as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert os.listdir(tmp_path) == []


def test_an_unwritable_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode)
    )
    with pytest.raises(PermissionError, match=r"out.png'.*folder .* is not writable"):
        check_writable(tmp_path / "out.png", force=False)
    with pytest.raises(PermissionError, match="not writable"):  # also a new folder inside it
        check_writable(tmp_path / "new" / "out.png", force=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_folder_is_refused_for_real(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    with pytest.raises(PermissionError, match="not writable"):
        check_writable(folder / "out.png", force=False)


def test_live_temporaries_are_known_until_the_write_ends(tmp_path):
    with atomic_path(tmp_path / "out.png") as tmp:
        tmp.write_bytes(b"half")
        assert tmp in _LIVE
        remove_live_temporaries()  # what the signal handler does before exiting
        assert not tmp.exists()
        tmp.write_bytes(b"whole")
    assert not _LIVE and (tmp_path / "out.png").read_bytes() == b"whole"


# -- special files: FIFOs, devices, sockets ----------------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo.jpg"
    os.mkfifo(path)
    return path


def test_special_kinds_are_named(tmp_path, fifo):
    import socket

    (tmp_path / "plain.png").write_bytes(b"x")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "sock"))
        assert special_kind(tmp_path / "sock") == "a socket"
    assert special_kind(fifo) == "a FIFO (named pipe)"
    assert special_kind("/dev/null") == "a character device"
    assert special_kind(tmp_path) == "a folder"
    assert special_kind(tmp_path / "plain.png") is None
    assert special_kind(tmp_path / "missing.png") is None


def test_an_input_that_is_not_a_regular_file_is_refused_without_opening_it(fifo):
    # Opening a FIFO for reading blocks until a writer comes: the check must not open it.
    with pytest.raises(NotRegularFileError, match=r"'.*fifo.jpg' is a FIFO \(named pipe\)"):
        check_regular_input(fifo, what="image file")
    with pytest.raises(NotRegularFileError, match="is a character device"):
        check_regular_input("/dev/zero")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_regular_input(fifo.parent)
    assert isinstance(NotRegularFileError("x"), OSError)  # the CLI's exit code 4


def test_a_device_or_fifo_output_is_never_replaced_even_with_force(tmp_path, fifo):
    for force in (False, True):
        with pytest.raises(NotRegularFileError, match="only regular files are written"):
            check_writable(fifo, force=force)
        with pytest.raises(NotRegularFileError, match="a character device"):
            check_writable("/dev/null", force=force)
    with pytest.raises(NotRegularFileError), atomic_path(fifo, force=True) as tmp:
        tmp.write_bytes(b"data")
    assert special_kind(fifo) == "a FIFO (named pipe)"  # still the FIFO


def test_a_full_disk_is_refused_before_any_work(tmp_path, monkeypatch):
    from svdimage import _fileutil

    monkeypatch.setattr(_fileutil, "_free_bytes", lambda folder: 0)
    with pytest.raises(OSError) as caught:
        check_writable(tmp_path / "out.png", force=False)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "out.png")
