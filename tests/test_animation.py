"""The animation: frames, files, schedule, and blitting against full redraws."""

import re
import subprocess

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from svdimage import decompose
from svdimage.animation import animate, default_animation_ranks, render_frame


def read_mp4(path):
    """Decode every frame with the bundled ffmpeg; return (metadata, frames).

    A plain subprocess: imageio's readers leave pipes open (ResourceWarning).
    """
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-i",
            str(path),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    )
    log = result.stderr.decode()
    video = re.search(r"Video: (\w+).*?, (\d+)x(\d+).*?, ([\d.]+) fps", log)
    codec, width, height, fps = video[1], int(video[2]), int(video[3]), float(video[4])
    frames = np.frombuffer(result.stdout, np.uint8).reshape(-1, height, width, 3)
    return {"codec": codec, "size": (width, height), "fps": fps}, list(frames)


def test_default_animation_ranks_are_the_seeds():
    ranks = default_animation_ranks(512, last=512)
    assert ranks[:70] == list(range(1, 71))
    assert ranks[70:73] == [80, 90, 100] and ranks[-2:] == [510, 512]
    assert default_animation_ranks(50) == list(range(1, 51))
    assert default_animation_ranks(75) == list(range(1, 71)) + [75]


def test_default_animation_ranks_stop_at_the_last_rank_unless_asked():
    ranks = default_animation_ranks(3000)
    assert ranks[-3:] == [230, 240, 250] and len(ranks) == 70 + 17 + 1
    assert default_animation_ranks(3000, last=3000)[-2:] == [2990, 3000]
    assert default_animation_ranks(255)[-2:] == [240, 250]


@pytest.fixture(scope="module")
def small_svd(camera):
    return decompose(camera[::4, ::4].copy())  # 128x128: 70 + 5 + 1 = 76 frames


def test_animate_mp4_frames_count_size_and_first_last_ranks(tmp_path, small_svd):
    path = animate(tmp_path / "a.mp4", small_svd, size=(320, 481), fps=8)
    meta, frames = read_mp4(path)
    ranks = default_animation_ranks(128)
    assert len(frames) == len(ranks) == 76
    assert meta["size"] == (320, 480)  # rounded down to even for yuv420p
    assert meta["fps"] == 8 and meta["codec"].startswith("h264")
    for index, rank in ((0, 1), (-1, 128)):
        reference = render_frame(small_svd, rank, size=(320, 480))
        difference = np.abs(frames[index].astype(int) - reference.astype(int))
        assert difference.mean() < 3, (rank, difference.mean())  # codec + resampling only
    # rank 1 and full rank really differ, so the comparison above can tell frames apart
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 5


def test_animate_gif_matches_frames_rendered_alone(tmp_path, small_svd):
    ranks = [1, 5, 20, 128]
    path = animate(
        tmp_path / "a.gif",
        small_svd,
        ranks=ranks,
        size=(300, 480),
        layout="stacked",
        caption="test caption",
    )
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (4, 480, 300)
    for frame, rank in zip(frames, ranks):
        reference = render_frame(
            small_svd, rank, ranks=ranks, size=(300, 480), caption="test caption"
        )
        difference = np.abs(frame[..., :3].astype(int) - reference.astype(int))
        assert difference.mean() < 3, rank  # palette quantization + resampling filter
    with Image.open(path) as gif:
        assert gif.info.get("loop") == 0
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert sum(durations) == len(ranks) * 125  # 8 fps on average, in GIF's 10 ms ticks


def test_animate_side_layout_color(tmp_path, astronaut):
    svd = decompose(astronaut[::8, ::8].copy())
    path = animate(tmp_path / "c.mp4", svd, layout="side", ranks=[1, 32, 64])
    meta, frames = read_mp4(path)
    assert meta["size"] == (1000, 500) and len(frames) == 3
    reference = render_frame(svd, 64, ranks=[1, 32, 64], layout="side")
    assert np.abs(frames[-1].astype(int) - reference.astype(int)).mean() < 3


def test_animate_reports_progress_and_refuses_overwrite(tmp_path, small_svd):
    calls = []
    path = animate(
        tmp_path / "p.gif",
        small_svd,
        ranks=[1, 2, 3],
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        animate(path, small_svd, ranks=[1])
    assert path.read_bytes() == before
    animate(path, small_svd, ranks=[1], force=True)
    assert path.read_bytes() != before


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"ranks": [0, 3]}, ValueError, "between 1 and 128"),
        ({"ranks": [200]}, ValueError, "between 1 and 128"),
        ({"layout": "grid"}, ValueError, "layout"),
        ({"size": (10, 10)}, ValueError, "size"),
        ({"fps": 0}, ValueError, "fps"),
    ],
)
def test_animate_rejects_bad_options(tmp_path, small_svd, kwargs, error, match):
    with pytest.raises(error, match=match):
        animate(tmp_path / "x.mp4", small_svd, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_animate_rejects_bad_paths(tmp_path, small_svd):
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        animate(tmp_path / "x.avi", small_svd)
    (tmp_path / "plain").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        animate(tmp_path / "plain" / "x.mp4", small_svd)


def test_blitted_frames_match_full_redraws_in_the_error_panel(small_svd):
    from svdimage.animation import _AnimationFigure

    ranks = list(range(1, 11)) + [20, 40, 90, 128]
    fast = _AnimationFigure(small_svd, ranks, size=(400, 640), layout="stacked", caption=None)
    slow = _AnimationFigure(small_svd, ranks, size=(400, 640), layout="stacked", caption=None)
    box = fast.err_box
    rows, cols = fast._pixels(box.x0, box.y0, box.x1, box.y1)
    frames = zip(fast.panels(), small_svd.iter_reconstructions(ranks))
    for index, (panel, (rank, image)) in enumerate(frames):
        blitted = fast.frame(index, panel).astype(int)
        full = slow.full_frame(index, image).astype(int)
        # Only where the curve meets the axes frame may the drawing order differ.
        stale = np.abs(blitted[rows, cols] - full[rows, cols]).max(axis=2) > 60
        assert stale.sum() <= 30, (rank, stale.sum())
        title = fast.title_band
        assert np.abs(blitted[title] - full[title]).mean() < 1, rank


@pytest.mark.parametrize("layout", ["stacked", "side"])
@pytest.mark.parametrize("size", [(320, 480), (400, 640), (640, 400)])
def test_error_curve_labels_stay_inside_every_frame(layout, size):
    """The y label ("relative error") and tick labels of the live error curve lie inside the
    figure, whatever the frame size (the stacked layout cut the label at the left edge);
    measured on the rendered text extents."""
    from svdimage.animation import _AnimationFigure

    image = np.random.default_rng(0).random((200, 600)).astype(np.float32)
    frame = _AnimationFigure(decompose(image), [1, 2, 3], size=size, layout=layout, caption=None)
    renderer = frame.fig.canvas.get_renderer()
    for text in (frame.ax_err.yaxis.label, frame.ax_err.xaxis.label):
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= frame.fig.bbox.width, text.get_text()
        assert box.y0 >= 0 and box.y1 <= frame.fig.bbox.height, text.get_text()
    drawn = frame.ax_err.get_tightbbox(renderer)  # every tick label drawn, too
    assert drawn.x0 >= 0 and drawn.y0 >= 0
    assert drawn.x1 <= frame.fig.bbox.width and drawn.y1 <= frame.fig.bbox.height


def test_the_old_data_first_order_still_writes_and_warns(tmp_path, small_svd):
    """Writers take the destination first (as numpy.save and imageio.imwrite); the order of
    before 0.2 works until 0.3 and says so."""
    with pytest.deprecated_call(match=r"animate\(path, svd\)"):
        path = animate(small_svd, tmp_path / "old.gif", ranks=[1, 2])
    assert path.exists()


def test_mp4_quality_is_its_own_name(tmp_path, small_svd):
    """quality is the codec's 1-100 setting; the MP4 encoder's 0-10 scale is mp4_quality,
    and the old quality= still works until 0.3, with a warning."""
    new = animate(tmp_path / "new.mp4", small_svd, ranks=[1, 2], mp4_quality=3)
    with pytest.deprecated_call(match="use mp4_quality="):
        old = animate(tmp_path / "old.mp4", small_svd, ranks=[1, 2], quality=3)
    assert len(read_mp4(old)[1]) == len(read_mp4(new)[1]) == 2


def test_a_caption_is_drawn_as_written_not_as_mathtext(small_svd):
    # Reproducer: `animate --caption 'price $x^$'` failed with matplotlib's mathtext
    # ParseSyntaxException (exit 3) instead of drawing the text.
    from svdimage.animation import _AnimationFigure

    caption = "price $x^$ and \\frac{"
    figure = _AnimationFigure(small_svd, [1, 2], size=(300, 480), layout="stacked", caption=caption)
    frame = figure.full_frame(0, small_svd.reconstruct(1))
    assert frame.shape[:2] == (480, 300)
    assert caption in [t.get_text() for t in figure.fig.texts]
