import io

import numpy as np
import pytest
from PIL import Image

from svdimage import decompose
from svdimage.sweep import measure_ranks
from svdimage.visualization import plot_error_curve, plot_grid, plot_spectrum, save_figure
from tests.figure_checks import assert_texts_inside_and_apart


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
    _x, y = ax.get_lines()[0].get_data()
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


def test_figure_bytes_are_the_file_save_figure_writes(tmp_path, small):
    from svdimage.visualization import figure_bytes

    svd = decompose(small)
    data = figure_bytes(plot_spectrum(svd))
    path = save_figure(plot_spectrum(svd), tmp_path / "s.png")
    with Image.open(io.BytesIO(data)) as drawn, Image.open(path) as saved:
        assert drawn.format == "PNG"
        np.testing.assert_array_equal(np.asarray(drawn), np.asarray(saved))


def test_grid_panels_of_big_images_are_block_means():
    from svdimage.visualization import for_display

    image = np.random.default_rng(0).random((2100, 3000, 3)).astype(np.float32)
    shown = for_display(image)
    assert shown.shape == (700, 1000, 3) and shown.dtype == np.float32
    np.testing.assert_allclose(shown[0, 0], image[:3, :3].mean(axis=(0, 1)), rtol=1e-5)
    small = np.zeros((100, 80))
    assert for_display(small) is small


@pytest.mark.parametrize("colour", [False, True])
def test_grid_block_means_of_image_and_factors_agree_with_scikit_image(colour):
    """The grid's panels: block means of the original (the blocks that fit) and of the
    factors, whose product is the block means of the rank-k image (averaging is linear)."""
    from skimage.transform import downscale_local_mean

    from svdimage.visualization import _block_means

    rng = np.random.default_rng(4)
    image = rng.random((301, 452, 3) if colour else (301, 452)).astype(np.float32)
    svd = decompose(image, rank=20)
    blocks = (3, 3, 1) if colour else (3, 3)
    small, (U, s, Vt) = _block_means(image, svd, 3)
    assert small.shape == (100, 150, 3) if colour else (100, 150)
    np.testing.assert_allclose(small, downscale_local_mean(image[:300, :450], blocks), atol=1e-6)
    approx = svd.reconstruct(20, clip=False)
    expected = downscale_local_mean(approx[:300, :450], blocks)
    got = np.stack([(U[c] * s[c]) @ Vt[c] for c in range(len(s))], axis=-1)
    np.testing.assert_allclose(got if colour else got[:, :, 0], expected, atol=1e-5)


@pytest.mark.parametrize(
    ("ranks", "held"),
    [
        ([3, 10, 20, 50, 100], None),
        ([3, 10, 20, 50, 100], 100),  # sweep's default on a big photo: a mark at the last rank
        ([1, 2, 3, 4, 5, 6, 7, 8, 12, 18, 20, 41], None),
        ([1, 2, 127, 128], None),
    ],
)
def test_error_curve_labels_never_overlap_each_other_or_the_curve(camera, ranks, held):
    """Labels clear each other and the curve, and stay inside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    if held is not None:
        svd = decompose(camera, rank=held, method="exact")
    else:
        svd = decompose(camera[::4, ::4].copy() if max(ranks) <= 128 else camera)
    fig = plot_error_curve(svd, marked_ranks=ranks)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    ax = fig.axes[0]
    boxes = []
    for label in ax.texts:
        label.update_positions(renderer)
        boxes.append(Text.get_window_extent(label, renderer))
    assert len(boxes) == len([k for k in ranks if svd.relative_error(k) > 0])
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1 :]), ax.texts[i].get_text()
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, ax.texts[i].get_text()
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, ax.texts[i].get_text()
        for line in ax.get_lines():
            points = line.get_transform().transform(line.get_xydata())
            inside = (
                (points[:, 0] > box.x0)
                & (points[:, 0] < box.x1)
                & (points[:, 1] > box.y0)
                & (points[:, 1] < box.y1)
            )
            assert not inside.any(), ax.texts[i].get_text()


@pytest.mark.parametrize("which", ["gray", "colour"])
def test_no_label_of_a_figure_is_clipped_or_overlaps_another(camera, astronaut, which):
    image = camera[::4, ::4] if which == "gray" else astronaut[::4, ::4]
    svd = decompose(image)
    ranks = [3, 10, 20, 50, 100]
    rows = measure_ranks(image, svd, ranks)
    for fig in (
        plot_grid(image, svd, rows),
        plot_error_curve(svd, marked_ranks=ranks),
        plot_spectrum(svd),
    ):
        assert_texts_inside_and_apart(fig)
