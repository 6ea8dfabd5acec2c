import threading

import numpy as np

from svdimage import _progress
from svdimage.decomposition import decompose


class Recorder:
    def __init__(self):
        self.events = []

    def started(self, task):
        self.events.append(("start", task.name, task.total, task.unit))

    def advanced(self, task):
        self.events.append(("advance", task.name, task.done))

    def finished(self, task):
        self.events.append(("finish", task.name, task.done))


def test_steps_reach_the_listener_nested_and_in_order():
    recorder = Recorder()
    with _progress.listening(recorder), _progress.task("outer") as outer:
        with _progress.task("inner", 2, unit="things") as inner:
            inner.advance()
            inner.advance()
        outer.advance()
    assert recorder.events == [
        ("start", "outer", None, ""),
        ("start", "inner", 2, "things"),
        ("advance", "inner", 1),
        ("advance", "inner", 2),
        ("finish", "inner", 2),
        ("advance", "outer", 1),
        ("finish", "outer", 1),
    ]


def test_a_step_that_raises_is_still_finished():
    recorder = Recorder()
    with _progress.listening(recorder):
        try:
            with _progress.task("doomed"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert recorder.events[-1] == ("finish", "doomed", 0)


def test_silent_without_a_listener_in_muted_blocks_and_other_threads():
    recorder = Recorder()
    with _progress.task("nobody listens") as step:
        step.advance()  # no listener: nothing happens, nothing fails
    assert step.done == 1
    with _progress.listening(recorder):
        with _progress.listening(None), _progress.task("muted"):
            pass
        thread = threading.Thread(target=lambda: _progress.task("thread").__enter__())
        thread.start()
        thread.join()
    assert recorder.events == []


def test_the_library_reports_its_long_steps():
    """An SVD counts its channels; a search counts the ranks it measured."""
    from svdimage.ranks.selection import rank_for_ssim

    recorder = Recorder()
    image = np.random.default_rng(0).random((40, 30, 3))
    with _progress.listening(recorder):
        svd = decompose(image)
        k = rank_for_ssim(svd, 0.9)
    starts = [e for e in recorder.events if e[0] == "start"]
    assert starts[0] == ("start", "complete SVD of 30x40", 3, "channels")
    assert ("finish", "complete SVD of 30x40", 3) in recorder.events
    search = [e for e in recorder.events if e[1] == "searching the rank for SSIM 0.9"]
    measured = search[-1][2]
    assert search[0][0] == "start" and search[-1][0] == "finish" and 2 <= measured <= k + 1


def test_coding_svdz_files_is_a_counted_step_advanced_from_its_threads(astronaut):
    """GlobalSizes.many codes files in worker threads; its step still counts them, by rank,
    up to its total."""
    from svdimage.codec import GlobalSizes

    recorder = Recorder()
    ranks = [4, 16, 9]
    with _progress.listening(recorder):
        GlobalSizes(astronaut[:128, :160]).many(ranks + [16])
    coding = [e for e in recorder.events if e[1] == "coding 3 .svdz files"]
    assert coding[0] == ("start", "coding 3 .svdz files", sum(ranks), "components")
    advances = sorted(e[2] for e in coding if e[0] == "advance")
    assert len(advances) == 3 and advances[-1] == sum(ranks)
    assert coding[-1] == ("finish", "coding 3 .svdz files", sum(ranks))


def test_a_svdz_storage_search_counts_the_files_it_measured(astronaut):
    from svdimage.codec import GlobalSizes
    from svdimage.ranks.storage import storage_rank

    recorder = Recorder()
    image = astronaut[:128, :160]
    sizes = GlobalSizes(image)
    budget = sizes(40)
    with _progress.listening(recorder):
        k = storage_rank(image.shape, max_bytes=budget, storage="svdz", sizes=sizes)
    name = f"searching the rank for {budget:,} bytes as .svdz"
    search = [e for e in recorder.events if e[1] == name]
    assert search[0] == ("start", name, None, "files measured")
    assert search[-1][0] == "finish" and search[-1][2] >= 1
    assert sizes(k) <= budget


def test_plane_factorizations_say_which_factorization_they_are(astronaut):
    """A plane is factored once per power of two of the rank: each step says which (top-16,
    top-128, complete), so no step name repeats ("plane 1 of 3" twice) and every plane is
    named."""
    from svdimage.codec import GlobalSizes

    recorder = Recorder()
    with _progress.listening(recorder):
        GlobalSizes(astronaut).many([10, 100, 200])
    names = [e[1] for e in recorder.events if e[0] == "start" and "of plane" in e[1]]
    assert len(names) == len(set(names))
    assert {n.rsplit(" of plane ", 1)[1] for n in names} == {"1 of 3", "2 of 3", "3 of 3"}
    assert "top-16 SVD of plane 1 of 3" in names and "top-128 SVD of plane 1 of 3" in names
