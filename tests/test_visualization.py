import numpy as np
import pytest
from PIL import Image

from svdimage import decompose
from svdimage.sweep import measure_ranks
from svdimage.visualization import plot_error_curve, plot_grid, plot_spectrum, save_figure


@pytest.fixture(scope="module")
def small(camera):
    return camera[::4, ::4].copy()


def test_plot_grid_has_one_panel_per_rank_plus_original(small):
    svd = decompose(small)
    rows = measure_ranks(small, svd, [2, 8, 32])
    fig = plot_grid(small, svd, rows)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled[0].startswith("original 128x128")
    assert [t.split("\n")[0] for t in titled[1:]] == ["rank 2", "rank 8", "rank 32"]
    assert f"{rows[1].relative_error:.4f}" in titled[2]
    shown = fig.axes[2].get_images()[0].get_array()
    np.testing.assert_allclose(shown, svd.reconstruct(8), atol=1e-6)


def test_plot_error_curve_plots_sigma_derived_errors_on_log_axis(small):
    svd = decompose(small)
    fig = plot_error_curve(svd, marked_ranks=[5, 20])
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    x, y = ax.get_lines()[0].get_data()
    positive = np.asarray(svd.relative_error()) > 0
    np.testing.assert_allclose(y, np.asarray(svd.relative_error())[positive])
    assert len(ax.texts) == 2


def test_plot_spectrum_color_has_three_curves_and_energy(astronaut):
    svd = decompose(astronaut[::4, ::4])
    fig = plot_spectrum(svd)
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["σ (R)", "σ (G)", "σ (B)"]
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), 100 * svd.energy())


def test_save_figure_writes_png_and_refuses_overwrite(tmp_path, small):
    fig = plot_spectrum(decompose(small))
    path = save_figure(fig, tmp_path / "s.png")
    with Image.open(path) as written:
        assert written.format == "PNG"
    with pytest.raises(FileExistsError):
        save_figure(fig, path)


# -- animation -------------------------------------------------------------------
import re  # noqa: E402
import subprocess  # noqa: E402

import imageio.v3 as iio  # noqa: E402
import imageio_ffmpeg  # noqa: E402

from svdimage.visualization import animate, default_animation_ranks, render_frame  # noqa: E402


def read_mp4(path):
    """Decode every frame with the bundled ffmpeg; return (metadata, frames).

    A plain subprocess: imageio's readers leave pipes open (ResourceWarning).
    """
    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path), "-f", "rawvideo",
                             "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    log = result.stderr.decode()
    video = re.search(r"Video: (\w+).*?, (\d+)x(\d+).*?, ([\d.]+) fps", log)
    codec, width, height, fps = video[1], int(video[2]), int(video[3]), float(video[4])
    frames = np.frombuffer(result.stdout, np.uint8).reshape(-1, height, width, 3)
    return {"codec": codec, "size": (width, height), "fps": fps}, list(frames)


def test_default_animation_ranks_are_the_seeds():
    ranks = default_animation_ranks(512)
    assert ranks[:70] == list(range(1, 71))
    assert ranks[70:73] == [80, 90, 100] and ranks[-2:] == [510, 512]
    assert default_animation_ranks(50) == list(range(1, 51))
    assert default_animation_ranks(75) == list(range(1, 71)) + [75]


@pytest.fixture(scope="module")
def small_svd(camera):
    return decompose(camera[::4, ::4].copy())  # 128x128: 70 + 5 + 1 = 76 frames


def test_animate_mp4_frames_count_size_and_first_last_ranks(tmp_path, small_svd):
    path = animate(small_svd, tmp_path / "a.mp4", size=(320, 481), fps=8)
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
    path = animate(small_svd, tmp_path / "a.gif", ranks=ranks, size=(300, 480),
                   layout="stacked", caption="test caption")
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (4, 480, 300)
    for frame, rank in zip(frames, ranks):
        reference = render_frame(small_svd, rank, ranks=ranks, size=(300, 480),
                                 caption="test caption")
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
    path = animate(svd, tmp_path / "c.mp4", layout="side", ranks=[1, 32, 64])
    meta, frames = read_mp4(path)
    assert meta["size"] == (1000, 500) and len(frames) == 3
    reference = render_frame(svd, 64, ranks=[1, 32, 64], layout="side")
    assert np.abs(frames[-1].astype(int) - reference.astype(int)).mean() < 3


def test_animate_reports_progress_and_refuses_overwrite(tmp_path, small_svd):
    calls = []
    path = animate(small_svd, tmp_path / "p.gif", ranks=[1, 2, 3],
                   progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        animate(small_svd, path, ranks=[1])
    assert path.read_bytes() == before
    animate(small_svd, path, ranks=[1], force=True)
    assert path.read_bytes() != before


@pytest.mark.parametrize("kwargs,error,match", [
    ({"ranks": [0, 3]}, ValueError, "between 1 and 128"),
    ({"ranks": [200]}, ValueError, "between 1 and 128"),
    ({"layout": "grid"}, ValueError, "layout"),
    ({"size": (10, 10)}, ValueError, "size"),
    ({"fps": 0}, ValueError, "fps"),
])
def test_animate_rejects_bad_options(tmp_path, small_svd, kwargs, error, match):
    with pytest.raises(error, match=match):
        animate(small_svd, tmp_path / "x.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_animate_rejects_bad_paths(tmp_path, small_svd):
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        animate(small_svd, tmp_path / "x.avi")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        animate(small_svd, tmp_path / "missing" / "x.mp4")


def test_blitted_frames_match_full_redraws_in_the_error_panel(small_svd):
    from svdimage.visualization import _AnimationFigure

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


def test_grid_panels_of_big_images_are_block_means():
    from svdimage.visualization import _for_display

    image = np.random.default_rng(0).random((2100, 3000, 3)).astype(np.float32)
    shown = _for_display(image)
    assert shown.shape == (700, 1000, 3) and shown.dtype == np.float32
    np.testing.assert_allclose(shown[0, 0], image[:3, :3].mean(axis=(0, 1)), rtol=1e-5)
    small = np.zeros((100, 80))
    assert _for_display(small) is small
