"""The explorer page's data, checked in Python (the browser tests are in test_explorer_page.py)."""

import base64
import html
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from svdimage import decompose, explore, metrics
from svdimage.explorer import resize_matrix
from svdimage.sweep import measure_ranks


def page_data(page_html: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="svdimage-data">(.*?)</script>', page_html, re.S
    )
    assert match, "no data block"
    return json.loads(match.group(1))


def display_factors(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Decode the embedded factors as the page does, written here independently (one bit at
    a time): (K, C, H) and (K, C, W)."""
    K, C, H, W = data["maxRank"], data["channels"], data["height"], data["width"]
    factors = data["factors"]
    assert factors["encoding"] == "rice"
    bits = np.unpackbits(np.frombuffer(base64.b64decode(factors["data"]), np.uint8)).tolist()
    steps = {
        side: np.frombuffer(base64.b64decode(factors[f"{side}Step"]), "<f4").reshape(K, C)
        for side in ("u", "v")
    }
    rice = {
        side: np.frombuffer(base64.b64decode(factors[f"{side}Rice"]), np.uint8).reshape(K, C)
        for side in ("u", "v")
    }
    U, V = np.zeros((K, C, H)), np.zeros((K, C, W))
    position = 0
    for i in range(K):
        for c in range(C):
            for side, out, n in (("u", U, H), ("v", V, W)):
                for e in range(n):
                    ones = 0
                    while ones < 24 and bits[position]:
                        ones, position = ones + 1, position + 1
                    if ones < 24:
                        position += 1  # the zero that ends the quotient
                    low = 24 if ones == 24 else int(rice[side][i, c])
                    z = 0 if ones == 24 else ones
                    for _ in range(low):
                        z, position = 2 * z + bits[position], position + 1
                    out[i, c, e] = ((z >> 1) ^ -(z & 1)) * steps[side][i, c]
    assert position <= len(bits) < position + 8  # every bit used, but the last byte's padding
    return U, V


def pillow_box(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize each channel with Pillow's box filter (the independent reference)."""
    planes = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(planes[..., c], np.float32)).resize(
                    size, Image.Resampling.BOX
                )
            )
            for c in range(planes.shape[2])
        ],
        axis=-1,
    )
    return out[..., 0] if image.ndim == 2 else out


@pytest.mark.parametrize("n, size", [(3000, 768), (37, 10), (7, 3), (999, 1), (5, 5)])
def test_resize_matrix_is_pillows_box_filter(n, size, rng):
    x = rng.random((n, 6)).astype(np.float32)
    expected = pillow_box(x, (6, size))
    np.testing.assert_allclose(resize_matrix(n, size) @ x, expected, atol=1e-6)


def test_resize_matrix_refuses_enlarging():
    with pytest.raises(ValueError, match="downscales"):
        resize_matrix(3, 4)


def test_embedded_factors_rebuild_every_rank_of_the_display_image(astronaut):
    image = astronaut[:300, :400]
    page = explore(image, max_side=200, storage=False)
    data = page.data
    assert (data["height"], data["width"]) == (150, 200)
    assert page.max_rank == data["fullRank"] == 150  # every rank of the displayed image
    display = pillow_box(image, (200, 150))
    reference = decompose(display, method="exact")  # LAPACK, independently of the page
    U, V = display_factors(data)
    for k in (1, 17, 90, page.max_rank):
        built = np.einsum("kch,kcw->hwc", U[:k], V[:k])
        expected = reference.reconstruct(k, clip=False)
        error = np.sqrt(np.mean((built - expected) ** 2)) * 255
        assert error < 0.3, f"rank {k}: RMS {error:.3f} grey levels"  # the quantization bound
    np.testing.assert_allclose(
        data["relativeError"], reference.relative_error()[: page.max_rank], rtol=1e-5, atol=1e-7
    )


def test_quantization_precision_falls_with_sigma(camera):
    page = explore(camera, max_side=128, storage=False)
    steps = np.frombuffer(base64.b64decode(page.data["factors"]["uStep"]), "<f4")
    sigma = np.asarray(page.data["sigma"][0])
    # Equal noise per component: the step of sqrt(s_i) u_i grows as s_i falls ...
    assert np.all(np.diff(steps[: page.max_rank // 2]) >= -1e-6 * steps[0])
    # ... in proportion to 1 / sqrt(s_i) (v's mean square is s_i / N).
    ratio = steps * np.sqrt(sigma)
    assert ratio.max() / ratio.min() < 1.01


def test_state_equals_pythons_numbers_of_the_displayed_image(camera):
    page = explore(camera, max_side=256)
    display = pillow_box(camera, (256, 256))
    svd = decompose(display, method="exact")
    assert page.max_rank == 256
    rows = {r.rank: r for r in measure_ranks(display, svd, page.data["quality"]["ranks"])}
    for k in (1, 7, 45, 120, 256):
        state = page.state(k)
        assert state["relativeError"] == pytest.approx(svd.relative_error(k), rel=1e-5, abs=1e-7)
        assert state["energy"] == pytest.approx(svd.energy(k), rel=1e-6)
        assert state["storedValues"] == svd.stored_values(k)
        assert state["float32Bytes"] == 4 * svd.stored_values(k)
        grid_rank = state["psnrRank"]
        assert abs(grid_rank - k) == min(abs(r - k) for r in rows)
        assert state["psnr"] == pytest.approx(rows[grid_rank].psnr, rel=1e-4)
        assert state["ssim"] == pytest.approx(rows[grid_rank].ssim, abs=1e-4)
    # The storage grid holds real files of the displayed image.
    storage = page.data["storage"]
    assert storage["ranks"][0] == 1 and storage["ranks"][-1] == 256
    assert storage["svdzBytes"] == sorted(storage["svdzBytes"])
    # The JPEG beside each .svdz never has more bytes.
    for svdz, jpeg in zip(storage["svdzBytes"], storage["jpegBytes"]):
        assert jpeg is None or jpeg <= svdz
    # Each file's own PSNR is its 8-bit decode's, below its rank's reconstruction.
    from svdimage import codec

    k, psnr = storage["ranks"][3], storage["svdzPsnr"][3]
    data = codec.encode(display, rank=k, tile=None)
    assert len(data) == storage["svdzBytes"][3]
    pixels = np.rint(np.clip(codec.decode(data), 0, 1) * 255) / 255
    assert psnr == pytest.approx(metrics.peak_signal_noise_ratio(display, pixels), abs=1e-4)
    assert psnr < metrics.peak_signal_noise_ratio(display, svd.reconstruct(k))


def test_targets_are_the_ranks_choose_gives_on_the_displayed_image(camera):
    from svdimage.ranks.criteria import parse_criterion, resolve_criterion

    page = explore(camera, max_side=256, storage=False)
    display = pillow_box(camera, (256, 256))
    svd = decompose(display, method="exact")
    for target in page.data["targets"]:
        expected = resolve_criterion(svd, parse_criterion(target["criterion"]), image=display)
        assert target["rank"] == expected, target  # every rank is on the page: all resolve


def test_original_is_the_resized_image(astronaut):
    image = astronaut[::2, ::2]
    page = explore(image, max_side=100, max_rank=5, storage=False)
    blob = base64.b64decode(page.data["original"]["data"])
    with Image.open(io.BytesIO(blob)) as decoded:
        pixels = np.asarray(decoded.convert("RGB"), dtype=np.float64)
    expected = np.rint(np.clip(pillow_box(image, (100, 100)), 0, 1) * 255)
    tolerance = 0 if page.data["original"]["mime"] != "image/jpeg" else 3
    assert np.abs(pixels - expected).mean() <= tolerance


def test_default_file_holds_every_rank_within_the_budget_on_a_12_megapixel_photo():
    """<= 3 quality-90 JPEGs of the display image + 1 MB; a busy photo gets a smaller
    display image, never fewer ranks."""
    import skimage.data
    from skimage.transform import resize

    rng = np.random.default_rng(5)
    photo = resize(skimage.data.chelsea(), (3000, 4000), order=1).astype(np.float32)
    photo = np.clip(photo + rng.normal(0, 0.02, photo.shape).astype(np.float32), 0, 1)
    page = explore(photo, storage=False)
    width, height = page.data["width"], page.data["height"]
    assert abs(width - height * 4 / 3) <= 1 and 256 <= width <= 1024
    display = pillow_box(photo, (width, height))
    buffer = io.BytesIO()
    Image.fromarray(np.rint(np.clip(display, 0, 1) * 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=90
    )
    size = len(page.to_html().encode())
    assert size <= 3 * buffer.tell() + 1_000_000
    assert page.max_rank == page.data["fullRank"] == height
    assert all(t["rank"] is not None for t in page.data["targets"])


def test_text_cannot_break_out_of_the_page(camera):
    title = '</script><script>alert(1)</script><!-- "&'
    page = explore(camera[:64, :64], title=title, storage=False)
    text = page.to_html()
    assert "<script>alert(1)" not in text
    assert text.count("</script>") == 3  # the data block, the worker and the page's script
    assert html.escape(title) in text
    assert page_data(text)["title"] == title


def test_page_loads_nothing_from_outside(camera):
    text = explore(camera[:32, :32], storage=False).to_html()
    assert "default-src 'none'" in text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text)
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text


def test_repr_html_is_a_sandboxed_iframe(camera):
    svd = decompose(camera[:40, :50])  # a complete decomposition: the image itself
    out = svd._repr_html_()
    assert out.startswith("<iframe") and 'sandbox="allow-scripts"' in out
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', out).group(1))
    assert page_data(srcdoc)["maxRank"] == 40


def test_a_truncated_decomposition_without_image_explores_the_image_it_holds(camera):
    svd = decompose(camera[:64, :64], rank=12)
    page = explore(svd, storage=False)
    assert page.data["sourceTruncated"] is True
    # The rank-12 image it holds has rank 12: the page's ranks beyond it add nothing.
    errors = np.asarray(page.data["relativeError"])
    assert errors[11] < 1e-3 and page.max_rank == 64


def test_tiny_images(rng):
    for shape in [(2, 2), (2, 2, 3), (2, 9)]:
        image = rng.random(shape).astype(np.float32)
        page = explore(image)
        assert page.max_rank == min(shape[:2])
        assert page.state(page.max_rank)["relativeError"] == pytest.approx(0, abs=1e-5)
        assert page.data["quality"]["ssim"][0] is None  # smaller than SSIM's window


def test_save_is_atomic_and_does_not_overwrite(tmp_path, camera):
    page = explore(camera[:16, :16], storage=False)
    path = page.save(tmp_path / "page.html")
    assert path.read_text(encoding="utf-8") == page.to_html()
    with pytest.raises(FileExistsError):
        page.save(path)
    page.save(path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_bad_arguments(camera):
    with pytest.raises(ValueError, match="max_side"):
        explore(camera, max_side=0)
    with pytest.raises(ValueError, match="singular vectors"):
        explore(decompose(camera, compute_vectors=False))
    with pytest.raises(ValueError, match="rank"):
        explore(camera[:10, :10], max_rank=11)


def test_psnr_in_the_page_is_sweeps(camera):
    """The PSNR grid uses the clipped reconstruction, as sweep does (of the image shown)."""
    page = explore(camera[:128, :128], max_rank=30, storage=False)
    svd = decompose(camera[:128, :128], method="exact")
    k = page.data["quality"]["ranks"][5]
    assert page.data["quality"]["psnr"][5] == pytest.approx(
        metrics.peak_signal_noise_ratio(camera[:128, :128], svd.reconstruct(k)), rel=1e-5
    )


# -- in a real browser: Playwright driving the system's Chromium ------------------------------
def _chromium() -> str | None:
    import os
    import shutil

    for name in (os.environ.get("SVDIMAGE_CHROMIUM"), "chromium", "chromium-browser"):
        path = name and shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable)
        yield chromium
        chromium.close()


class PageSession:
    """A page loaded from file:// with every network request refused and recorded."""

    def __init__(self, browser, path, viewport=(1280, 900)):
        self.page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.requests, self.problems = [], []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))

        def route(request_route):
            url = request_route.request.url
            self.requests.append(url)
            if url == path.as_uri():
                request_route.continue_()
            else:
                request_route.abort()

        self.page.route("**/*", route)
        self.page.goto(path.as_uri())
        self.page.evaluate("window.svdimage.ready")

    def _console(self, message):
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def set_rank(self, k):
        return self.page.evaluate("(k) => window.svdimage.setRank(k)", k)

    def state(self):
        return self.page.evaluate("window.svdimage.state()")

    def wait_for_rank(self, accept, timeout=10.0):
        """Poll the page's rank until ``accept(rank)`` (the page's CSP forbids the string
        evaluation that Playwright's ``wait_for_function`` uses)."""
        import time

        deadline = time.monotonic() + timeout
        while not accept(rank := self.state()["rank"]):
            assert time.monotonic() < deadline, f"rank stayed at {rank}"
            self.page.wait_for_timeout(5)
        return rank

    def canvas(self) -> np.ndarray:
        url = self.page.evaluate("document.getElementById('image').toDataURL('image/png')")
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as png:
            return np.asarray(png.convert("RGB"), dtype=np.float64)

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def gray_page(tmp_path_factory, camera, browser):
    image = camera[::2, ::2]  # 256x256
    page = explore(image, max_side=200, max_rank=120)
    path = page.save(tmp_path_factory.mktemp("gray") / "gray.html")
    session = PageSession(browser, path)
    # The page's numbers and images are those of the display image's SVD.
    svd = decompose(pillow_box(image, (page.data["width"], page.data["height"])), method="exact")
    yield image, svd, page, session
    session.close()


@pytest.fixture(scope="module")
def color_page(tmp_path_factory, astronaut, browser):
    image = astronaut[::2, ::2][:200]  # 200x256 colour
    page = explore(image, max_side=160)
    path = page.save(tmp_path_factory.mktemp("color") / "color.html")
    session = PageSession(browser, path)
    svd = decompose(pillow_box(image, (page.data["width"], page.data["height"])), method="exact")
    yield image, svd, page, session
    session.close()


def test_page_makes_no_request_and_logs_no_error(gray_page, color_page):
    for _, _, _, session in (gray_page, color_page):
        assert session.requests == [session.page.url]
        assert session.problems == []


@pytest.mark.parametrize("which", ["gray_page", "color_page"])
def test_canvas_shows_the_rank_k_reconstruction(which, request):
    _, svd, page, session = request.getfixturevalue(which)
    height, width = page.data["height"], page.data["width"]
    for k in (1, page.max_rank // 2, page.max_rank):
        assert session.set_rank(k) == k
        shown = session.canvas()
        assert shown.shape[:2] == (height, width)
        expected = pillow_box(svd.reconstruct(k), (width, height)) * 255
        if expected.ndim == 2:
            expected = np.repeat(expected[..., None], 3, axis=-1)
        mean_abs = np.abs(shown - expected).mean()
        assert mean_abs <= 2, f"rank {k}: mean |difference| {mean_abs:.2f} grey levels"
        state = session.state()
        expected_state = page.state(k)
        for key, value in expected_state.items():
            assert state[key] == pytest.approx(value), key
        assert state["relativeError"] == pytest.approx(svd.relative_error(k), rel=1e-6)


def test_views(color_page):
    _, svd, page, session = color_page
    session.set_rank(5)
    blob = base64.b64decode(page.data["original"]["data"])
    with Image.open(io.BytesIO(blob)) as decoded:
        original = np.asarray(decoded.convert("RGB"), dtype=np.float64)
    session.page.click("#views button[data-view=original]")
    assert session.page.evaluate("window.svdimage.view()") == "original"
    assert np.abs(session.canvas() - original).max() <= 1
    session.page.click("#views button[data-view=difference]")
    assert session.page.is_visible("#colorbar")
    heat = session.canvas()
    lut = np.frombuffer(base64.b64decode(page.data["colormap"]), np.uint8).reshape(256, 3)
    # Every pixel is a colour of the map, and the map is not flat.
    colours = {tuple(c) for c in lut.tolist()}
    assert all(tuple(p) in colours for p in heat.reshape(-1, 3)[::97].astype(int).tolist())
    assert heat.std() > 5
    session.page.click("#views button[data-view=wipe]")
    session.page.evaluate("window.svdimage.wipe(0.5)")
    wiped = session.canvas()
    recon = pillow_box(svd.reconstruct(5), (page.data["width"], page.data["height"])) * 255
    half = page.data["width"] // 2 - 2
    assert np.abs(wiped[:, :half] - recon[:, :half]).mean() <= 2
    assert np.abs(wiped[:, half + 4 :] - original[:, half + 4 :]).max() <= 1
    # Dragging the divider moves it.
    box = session.page.locator("#image").bounding_box()
    session.page.mouse.click(box["x"] + 0.9 * box["width"], box["y"] + box["height"] / 2)
    moved = session.canvas()
    assert np.abs(moved[:, :half] - recon[:, :half]).mean() <= 2
    limit = int(0.85 * page.data["width"])
    assert np.abs(moved[:, half + 4 : limit] - recon[:, half + 4 : limit]).mean() <= 2
    session.page.click("#views button[data-view=reconstruction]")
    assert session.page.evaluate("window.svdimage.view()") == "reconstruction"


def test_controls_change_the_rank(gray_page):
    _, _, page, session = gray_page
    p = session.page
    session.set_rank(10)
    p.locator("#rank-slider").press("ArrowRight")
    session.wait_for_rank(lambda k: k == 11)
    p.locator("#rank-number").fill("42")
    p.locator("#rank-number").press("Enter")
    session.wait_for_rank(lambda k: k == 42)
    p.locator("body").click(position={"x": 5, "y": 5})
    p.keyboard.press("ArrowLeft")
    p.keyboard.press("Shift+ArrowRight")
    session.wait_for_rank(lambda k: k == 51)
    assert p.input_value("#rank-slider") == "51"
    # A click on a curve sets the rank under the pointer; a target button sets its rank.
    box = p.locator("#error-plot").bounding_box()
    p.mouse.click(box["x"] + box["width"] * (44 + 0.5 * (420 - 54)) / 420, box["y"] + 100)
    middle = 1 + round(0.5 * (page.max_rank - 1))
    session.wait_for_rank(lambda k: abs(k - middle) <= 1)
    energy = next(t for t in page.data["targets"] if t["criterion"] == "energy=0.99")
    p.click("#targets button[data-criterion='energy=0.99']")
    session.wait_for_rank(lambda k: k == energy["rank"])
    assert p.locator("#numbers").inner_text().count(str(energy["rank"])) >= 1


def test_play_runs_the_seed_schedule(gray_page):
    _, _, page, session = gray_page
    p = session.page
    session.set_rank(1)
    p.evaluate(
        "window.__ranks = []; window.__timer = setInterval(() => "
        "window.__ranks.push(window.svdimage.state().rank), 5);"
    )
    p.click("#play")
    session.wait_for_rank(lambda k: k >= 12)
    p.click("#play")  # pause
    ranks = p.evaluate("clearInterval(window.__timer); window.__ranks")
    seen = sorted(set(ranks))
    assert seen[0] == 1 and seen[-1] >= 12
    assert seen == page.data["schedule"][: len(seen)]
    p.wait_for_timeout(300)
    paused_at = session.state()["rank"]
    p.wait_for_timeout(300)
    assert session.state()["rank"] == paused_at < page.max_rank


def test_tiny_image_page(tmp_path, browser, rng):
    image = rng.random((2, 2, 3)).astype(np.float32)
    path = explore(image).save(tmp_path / "tiny.html")
    session = PageSession(browser, path)
    try:
        assert session.problems == []
        session.set_rank(2)
        shown = session.canvas()
        assert np.abs(shown - np.rint(image * 255)).max() <= 1
    finally:
        session.close()


def test_screenshot_is_not_blank(color_page, tmp_path):
    _, _, _, session = color_page
    session.set_rank(20)
    shot = tmp_path / "page.png"
    session.page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as picture:
        pixels = np.asarray(picture.convert("L"), dtype=np.float64)
    assert pixels.std() > 20


def test_slider_step_time_is_recorded(browser, tmp_path, record_property):
    """Measured, not asserted (timings belong in benchmarks/bench_explorer.py): one slider
    step on a 1 MP colour display image."""
    rng = np.random.default_rng(3)
    image = np.clip(rng.random((1000, 1000, 3)), 0, 1).astype(np.float32)
    svd = decompose(image, rank=30)
    path = explore(svd, image=image, storage=False).save(tmp_path / "big.html")
    session = PageSession(browser, path)
    try:
        times = session.page.evaluate(
            "async () => { const out = []; for (let k = 2; k <= 12; k++) {"
            " const t = performance.now(); await window.svdimage.setRank(k);"
            " out.push(performance.now() - t); } return out; }"
        )
        assert session.state()["rank"] == 12 and len(times) == 11
        record_property("slider_step_ms_median", float(np.median(times)))
    finally:
        session.close()


# -- in a notebook -----------------------------------------------------------------------------
def test_notebook_shows_the_explorer(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import numpy as np, svdimage\n"
            "x = np.outer(np.hanning(48), np.hanning(64)).astype(np.float32)\n"
            "svd = svdimage.decompose(x)\nsvd"
        ),
        nbformat.v4.new_code_cell("svdimage.explore(x, storage=False)"),
    ]
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    for cell in notebook.cells:
        data = cell.outputs[-1]["data"]
        assert data["text/html"].startswith("<iframe")
        assert "svdimage-data" in html.unescape(data["text/html"])
    assert "ImageSVD(shape=(48, 64)" in notebook.cells[0].outputs[-1]["data"]["text/plain"]


def test_repr_html_runs_inside_its_sandboxed_iframe(tmp_path, browser, small_color):
    """What Jupyter shows: the page's script runs in the sandboxed srcdoc iframe."""
    _, svd = small_color
    host = tmp_path / "notebook.html"
    host.write_text(f"<!DOCTYPE html><body>{svd._repr_html_()}</body>", encoding="utf-8")
    page = browser.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    try:
        page.goto(host.as_uri())
        frame = next(f for f in page.frames if f is not page.main_frame)
        frame.evaluate("window.svdimage.ready")
        assert frame.evaluate("window.svdimage.setRank(9)") == 9
        assert frame.evaluate("window.svdimage.state()")["relativeError"] == pytest.approx(
            svd.relative_error(9), rel=1e-6
        )
        assert problems == []
    finally:
        page.close()


_TEXT_BOXES = """() => [...document.querySelectorAll('svg.plot')].map((svg) => {
  const frame = svg.getBoundingClientRect();
  return {
    id: svg.id,
    frame: [frame.left, frame.top, frame.right, frame.bottom],
    texts: [...svg.querySelectorAll('text')].map((t) => {
      const r = t.getBoundingClientRect();
      return { text: t.textContent, cls: t.getAttribute('class') || '',
               box: [r.left, r.top, r.right, r.bottom] };
    }),
  };
})"""


def _check_chart_text(session):
    """Every label of both charts lies inside its chart, no two labels overlap, and each
    chart has at least two y ticks."""
    charts = session.page.evaluate(_TEXT_BOXES)
    assert len(charts) == 2
    for chart in charts:
        left, top, right, bottom = chart["frame"]
        texts = chart["texts"]
        for t in texts:
            x0, y0, x1, y1 = t["box"]
            assert left - 0.5 <= x0 and x1 <= right + 0.5, (chart["id"], t["text"])
            assert top - 0.5 <= y0 and y1 <= bottom + 0.5, (chart["id"], t["text"])
        for i, a in enumerate(texts):
            for b in texts[i + 1 :]:
                (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a["box"], b["box"]
                overlap = (
                    min(ax1, bx1) - max(ax0, bx0) > 0.5 and min(ay1, by1) - max(ay0, by0) > 0.5
                )
                assert not overlap, (chart["id"], a["text"], b["text"])
        assert sum(t["cls"] == "ytick" for t in texts) >= 2, chart["id"]


def test_chart_labels_stay_inside_and_apart(gray_page, color_page):
    """The charts' element boxes, as the browser lays them out: no label is cut at an edge
    or overlaps another ("rank k" and the last x tick, a target label at the right edge)."""
    for _, _, _, session in (gray_page, color_page):
        _check_chart_text(session)


def test_chart_labels_on_narrow_ranges_and_targets_at_the_edge(tmp_path, browser, camera):
    """A few ranks (errors within one decade: still two y ticks) and a page that ends at
    the SSIM 0.95 rank (its label at the right edge goes left of its mark)."""
    from svdimage.ranks.selection import rank_for_ssim

    image = camera[::4, ::4]
    svd = decompose(image)
    edge = rank_for_ssim(svd, 0.95, image=image)
    for name, max_rank in (("narrow", 3), ("edge", edge)):
        path = explore(svd, image=image, max_rank=max_rank, storage=False).save(
            tmp_path / f"{name}.html"
        )
        session = PageSession(browser, path)
        try:
            assert session.problems == []
            _check_chart_text(session)
            if name == "edge":
                labels = session.page.evaluate(
                    "() => [...document.querySelectorAll('.mark-label')].map((t) => t.textContent)"
                )
                assert any("SSIM" in label for label in labels)
        finally:
            session.close()


@pytest.mark.parametrize("which", ["gray_page", "color_page"])
def test_ssim_map_view_is_metrics_local_map_of_the_displayed_image(which, request):
    from svdimage.metrics import ssim_map

    _, svd, page, session = request.getfixturevalue(which)
    width, height = page.data["width"], page.data["height"]
    blob = base64.b64decode(page.data["original"]["data"])
    with Image.open(io.BytesIO(blob)) as decoded:
        original = np.asarray(decoded.convert("RGB" if page.data["channels"] == 3 else "L")) / 255
    for k in (1, 8, page.max_rank):
        session.set_rank(k)
        session.page.click("#views button[data-view=reconstruction]")
        shown = session.canvas() / 255  # the rank-k image as the page draws it
        if page.data["channels"] == 1:
            shown = shown[..., 0]
        session.page.click("#views button[data-view=ssim]")
        assert session.page.evaluate("window.svdimage.view()") == "ssim"
        assert session.page.is_visible("#colorbar")
        found = session.page.evaluate("window.svdimage.ssimMap()")
        assert found["rank"] == k and (found["height"], found["width"]) == (height - 6, width - 6)
        expected = ssim_map(original, shown)
        values = np.asarray(found["values"]).reshape(expected.shape)
        assert np.abs(values - expected).max() <= 1e-4, k  # the issue asks for 0.01
        # ... and the displayed image is Python's reconstruction (the canvas test's bound),
        # so the map's mean is Python's SSIM of it, closely.
        python = np.clip(pillow_box(svd.reconstruct(k), (width, height)), 0, 1)
        assert found["mean"] == pytest.approx(ssim_map(original, python).mean(), abs=0.01)
        assert found["mean"] == pytest.approx(expected.mean(), abs=1e-3)
        assert session.state()["ssimMapMean"] == pytest.approx(found["mean"])
        hint = session.page.inner_text("#colorbar-hint")
        assert f"mean {found['mean']:.4f}" in hint
    # Drawn through the colour map: dark where SSIM is 1; a grey border where no window fits.
    heat = session.canvas()
    assert (heat[0] == 128).all() and (heat[:, -1] == 128).all()
    session.page.click("#views button[data-view=difference]")
    assert "grey levels" in session.page.inner_text("#colorbar-hint")
    session.page.click("#views button[data-view=reconstruction]")
    assert session.problems == []


def test_a_busy_photos_page_reaches_its_full_rank_and_resolves_every_mark(
    tmp_path, browser, astronaut
):
    # Reproducer: a crowded 1024x768 street scene embedded "ranks 1-158 of 768" and all four
    # target buttons read "not within ranks 1-158".
    rng = np.random.default_rng(4)
    busy = np.clip(astronaut[::2, ::2] + rng.normal(0, 0.05, (256, 256, 3)), 0, 1)
    page = explore(busy.astype(np.float32), storage=False)
    session = PageSession(browser, page.save(tmp_path / "busy.html"))
    state = session.state()
    assert state["maxRank"] == page.data["fullRank"] == min(page.data["width"], page.data["height"])
    buttons = session.page.query_selector_all("#targets button")
    assert len(buttons) == 4 and all(b.is_enabled() for b in buttons)
    assert not any("not within" in b.inner_text() for b in buttons)
    assert session.set_rank(state["maxRank"]) == state["maxRank"]
    assert session.problems == []
    session.close()


# -- your own photo, in the browser ---------------------------------------------------------
def _wait_for_exact(session, name, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while not (state := session.state()).get("exact") or state.get("fileName") != name:
        assert time.monotonic() < deadline, state
        session.page.wait_for_timeout(20)
    deadline = time.monotonic() + timeout
    while "measuring" in session.page.inner_text("#targets"):
        assert time.monotonic() < deadline
        session.page.wait_for_timeout(20)
    return state


@pytest.fixture(scope="module")
def blank_session(tmp_path_factory, browser):
    from svdimage.explorer import blank_page

    path = blank_page().save(tmp_path_factory.mktemp("blank") / "blank.html")
    session = PageSession(browser, path)
    yield session
    session.close()


def test_a_blank_page_asks_for_a_photo_and_makes_no_request(blank_session):
    assert blank_session.page.is_visible("#prompt")
    assert "Drop a photo" in blank_session.page.inner_text("#prompt")
    assert not blank_session.page.is_visible("#controls")
    assert blank_session.state()["blank"] is True
    assert blank_session.requests == [blank_session.page.url]
    assert blank_session.problems == []


@pytest.mark.parametrize("which", ["colour", "gray"])
def test_a_photo_given_to_the_page_gets_pythons_numbers(
    tmp_path, blank_session, astronaut, camera, which
):
    from svdimage.ranks.criteria import parse_criterion, resolve_criterion

    image = astronaut[::4, ::4] if which == "colour" else camera[::4, ::4]  # 128 x 128
    pixels = np.rint(image * 255).astype(np.uint8)
    path = tmp_path / f"{which}.png"
    Image.fromarray(pixels).save(path)
    reference = pixels / 255.0
    svd = decompose(reference, method="exact")
    session = blank_session
    session.page.set_input_files("#file", str(path))
    state = _wait_for_exact(session, path.name)
    assert state["maxRank"] == 128 and not session.page.is_visible("#prompt")
    for k in (1, 10, 57, 128):
        session.set_rank(k)
        state = session.state()
        assert state["relativeError"] == pytest.approx(svd.relative_error(k), rel=1e-3, abs=1e-9)
        expected_psnr = metrics.peak_signal_noise_ratio(reference, svd.reconstruct(k))
        if np.isfinite(expected_psnr) and expected_psnr < 80:
            assert state["psnr"] == pytest.approx(expected_psnr, abs=0.05)
        expected_ssim = metrics.structural_similarity(reference, svd.reconstruct(k))
        assert state["ssim"] == pytest.approx(expected_ssim, abs=1e-3)
        shown = session.canvas()
        expected = np.clip(svd.reconstruct(k), 0, 1) * 255
        if expected.ndim == 2:
            expected = np.repeat(expected[..., None], 3, axis=-1)
        assert np.abs(shown - expected).max() <= 2, k
    marks = {
        b.get_attribute("data-criterion"): b.inner_text()
        for b in session.page.query_selector_all("#targets button")
    }
    for criterion, text in marks.items():
        expected = resolve_criterion(svd, parse_criterion(criterion), image=reference)
        assert text.endswith(f"rank {expected}"), (criterion, text)
    assert session.problems == []


def test_a_file_that_is_not_an_image_is_one_line_on_the_page(tmp_path, blank_session):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    blank_session.page.set_input_files("#file", str(path))
    blank_session.page.wait_for_timeout(300)
    message = blank_session.page.inner_text("#message")
    assert message.startswith("notes.txt is not an image") and "\n" not in message
    assert blank_session.problems == []  # no console error


def test_a_photo_dropped_on_a_built_page_replaces_it(tmp_path, gray_page, astronaut):
    _, _, _, session = gray_page
    path = tmp_path / "other.png"
    Image.fromarray(np.rint(astronaut[::8, ::8] * 255).astype(np.uint8)).save(path)
    session.page.set_input_files("#file", str(path))
    state = _wait_for_exact(session, "other.png")
    assert state["source"] == "browser" and state["maxRank"] == 64
    assert "other.png" in session.page.inner_text("#subtitle")


def test_blank_page_api_and_cli(tmp_path):
    from typer.testing import CliRunner

    from svdimage.cli import app
    from svdimage.explorer import blank_page

    page = blank_page(title="any photo")
    assert page.data["blank"] is True and page.max_rank == 0
    text = page.to_html()
    assert "worker-src blob:" in text and "default-src 'none'" in text
    runner = CliRunner()
    result = runner.invoke(app, ["explore", "--blank", "-o", str(tmp_path / "blank.html")])
    assert result.exit_code == 0 and "drop any photo on it" in result.stdout
    assert page_data((tmp_path / "blank.html").read_text(encoding="utf-8"))["blank"] is True
    both = runner.invoke(app, ["explore", "x.png", "--blank", "-o", str(tmp_path / "b.html")])
    neither = runner.invoke(app, ["explore", "-o", str(tmp_path / "b.html")])
    assert both.exit_code == neither.exit_code == 2
