"""The explorer page: build time, file size and how fast the page answers in Chromium.

Two inputs: the deterministic 12 MP phone-like photo of ``bench_commands.py``
(``svdimage explore`` at the default ``--max-side`` 1024, so a 1024x768 display
image) and a 1000x1000 colour crop of it (a 1 MP display image, the size issue
#13 names). In headless Chromium (Playwright, the system's ``chromium``), each page
is timed on: one slider step (rank k -> k+1: one rank-1 term and a redraw), a
10-rank jump, the jump from rank 1 to the highest rank, the page load, and one redraw
of the SSIM map view at a new rank.
Baseline, timed in the same page: one full redraw of the ``original`` view (one
pass over the pixels and ``putImageData``), so ratios say how many plain redraws
a rank change costs. Python's build time is given against G (one full ``gesdd``
of one float32 gray 3000x4000 channel, as in ``bench_commands.py``).

Run ``python benchmarks/bench_explorer.py`` (about a minute; ``--quick``: tiny inputs,
nothing written); writes
``benchmarks/results/explorer.md`` and, with ``--screenshot``, the README's
screenshot ``docs/images/explorer.png``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, print_table
from bench_commands import make_photo, reference_seconds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "explorer.md"
SCREENSHOT = ROOT / "docs" / "images" / "explorer.png"

TIMINGS = """async () => {
  const s = window.svdimage;
  const once = async (k) => {
    const t = performance.now(); await s.setRank(k); return performance.now() - t;
  };
  await s.setRank(20);
  const steps = []; for (let k = 21; k <= 40; k++) steps.push(await once(k));
  const jumps = []; for (const k of [50, 60, 70, 80]) jumps.push(await once(k));
  await s.setRank(1); const full = await once(s.state().maxRank);
  s.view("original");
  const draws = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now(); s.view("original"); draws.push(performance.now() - t);
  }
  s.view("reconstruction");
  // The SSIM map of a new rank, computed and drawn (the original's window sums are kept
  // from the first map).
  s.view("ssim");
  const maps = [];
  for (let k = 31; k <= 35; k++) {
    s.view("reconstruction");
    await s.setRank(k);
    const t = performance.now(); s.view("ssim"); maps.push(performance.now() - t);
  }
  s.view("reconstruction");
  const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  return {
    step: median(steps), jump10: median(jumps), full: full, draw: median(draws),
    ssim: median(maps),
  };
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", action="store_true", help="also write the screenshot")
    parser.add_argument(
        "--quick", action="store_true", help="tiny inputs, nothing written (keeps it running)"
    )
    args = parser.parse_args()

    from PIL import Image
    from playwright.sync_api import sync_playwright

    import svdimage
    from svdimage.explorer import _file_budget, _resize

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("bench_explorer: needs Chromium (apt-get install chromium)")
    height, width = (300, 400) if args.quick else (3000, 4000)
    g = reference_seconds(height=height, width=width)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        photo_path = Path(tmp) / "photo.jpg"
        make_photo(photo_path, width=width, height=height)
        photo = svdimage.load_image(photo_path)
        crop = photo[: height // 3, : height // 3]
        cases = [
            ("12 MP photo, default" if not args.quick else "quick photo", photo, {}),
            (f"{crop.shape[1]}x{crop.shape[0]} crop (1 MP display)", crop, {}),
        ]
        for name, image, options in cases:
            start = time.perf_counter()
            page = svdimage.explore(image, title=name, **options)
            built = time.perf_counter() - start
            path = page.save(Path(tmp) / f"page{len(rows)}.html")
            Md, Nd = page.data["height"], page.data["width"]
            display = _resize(image, Md, Nd)
            budget = _file_budget(display)
            tab = browser.new_page(viewport={"width": 1280, "height": 860})
            start = time.perf_counter()
            tab.goto(path.as_uri())
            tab.evaluate("window.svdimage.ready")
            loaded = time.perf_counter() - start
            t = tab.evaluate(TIMINGS)
            if args.screenshot and not args.quick and name.startswith("12 MP"):
                tab.evaluate("window.svdimage.setRank(30)")
                shot = tab.screenshot(full_page=True)
                Image.open(io.BytesIO(shot)).convert("RGB").save(SCREENSHOT, optimize=True)
            tab.close()
            rows.append(
                [
                    name,
                    f"{Nd}x{Md}",
                    page.max_rank,
                    f"{built:.1f} s ({built / g:.1f} G)",
                    f"{path.stat().st_size / 1e6:.2f} MB ({path.stat().st_size / budget:.2f})",
                    f"{loaded:.2f} s",
                    f"{t['draw']:.1f}",
                    f"{t['step']:.1f} ({t['step'] / t['draw']:.1f}x)",
                    f"{t['jump10']:.1f} ({t['jump10'] / t['draw']:.1f}x)",
                    f"{t['full']:.0f} ({t['full'] / t['draw']:.0f}x)",
                    f"{t['ssim']:.0f} ({t['ssim'] / t['draw']:.0f}x)",
                ]
            )
        browser.close()
    headers = [
        "input",
        "display",
        "ranks",
        "build (÷ G)",
        "file (÷ budget)",
        "load",
        "baseline redraw ms",
        "1-rank step ms",
        "10-rank jump ms",
        "1 → max ms",
        "SSIM map ms",
    ]
    print(f"G = {g:.2f} s; {machine()}")
    print_table(headers, rows)
    budget_headers, budget_rows = budget_table(quick=args.quick)
    print_table(budget_headers, budget_rows)
    browser_headers, browser_rows = in_browser_table(chromium, quick=args.quick)
    print_table(browser_headers, browser_rows)
    if args.quick:
        return
    lines = [
        "# `bench_explorer.py`: the explorer page in headless Chromium",
        "",
        f"G = {g:.2f} s (one full `gesdd` of one float32 gray 3000x4000 channel, same run). "
        f"Machine: {machine()}. Budget: 3 quality-90 JPEGs of the display image + 1 MB. "
        "Baseline: one full redraw of the `original` view in the same page.",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---:|" * len(headers),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in rows),
        "",
        "Every rank within the budget (pages built with `storage=False`; the display image",
        "shrinks below `--max-side` 1024 only when its every rank would not fit):",
        "",
        "| " + " | ".join(budget_headers) + " |",
        "|" + "---:|" * len(budget_headers),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in budget_rows),
        "",
        "A photo given to a `--blank` page (the file input, as a drop): its SVD in the browser,",
        "in a Web Worker (a randomized SVD of rank 48 first, then the exact one, then the PSNR",
        "and SSIM marks), timed from the file's choice; Python's exact SVD of the same image",
        "(`decompose(..., method='exact')`) in this process as the baseline:",
        "",
        "| " + " | ".join(browser_headers) + " |",
        "|" + "---:|" * len(browser_headers),
        *("| " + " | ".join(str(c) for c in row) + " |" for row in browser_rows),
        "",
    ]
    RESULTS.write_text("\n".join(lines), encoding="utf-8")


def in_browser_table(chromium: str, *, quick: bool) -> tuple[list[str], list[list[object]]]:
    """A colour photo of 0.5 and 1 MP given to a blank page: seconds to the first (randomized)
    view, to the exact SVD and to the marks, against Python's exact SVD of the same pixels."""
    import numpy as np
    import skimage.data
    import skimage.transform
    from PIL import Image
    from playwright.sync_api import sync_playwright

    import svdimage
    from svdimage.explorer import blank_page

    rows: list[list[object]] = []
    sizes = [(96, 128)] if quick else [(612, 816), (866, 1155)]  # 0.5 and 1 MP at 3:4
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page_path = blank_page().save(Path(tmp) / "blank.html")
        for height, width in sizes:
            base = skimage.data.chelsea() / 255.0
            pixels = np.clip(skimage.transform.resize(base, (height, width, 3), order=1), 0, 1)
            photo = Path(tmp) / f"photo{height}.png"
            Image.fromarray(np.rint(pixels * 255).astype(np.uint8)).save(photo)
            start = time.perf_counter()
            svdimage.decompose(svdimage.load_image(photo), method="exact")
            python = time.perf_counter() - start
            tab = browser.new_page()
            tab.goto(page_path.as_uri())
            tab.evaluate("window.svdimage.ready")
            start = time.perf_counter()
            tab.set_input_files("#file", str(photo))
            first = exact = marks = None
            while marks is None and time.perf_counter() - start < 600:
                state = tab.evaluate("window.svdimage.state()")
                now = time.perf_counter() - start
                if first is None and state.get("source") == "browser":
                    first = now
                if exact is None and state.get("exact") and state.get("source") == "browser":
                    exact = now
                if exact is not None and "measuring" not in tab.inner_text("#targets"):
                    marks = now
                tab.wait_for_timeout(20)
            shown_size = "x".join(
                str(tab.evaluate(f"document.getElementById('image').{side}"))
                for side in ("width", "height")
            )
            tab.close()
            rows.append(
                [
                    f"{width}x{height} colour ({width * height / 1e6:.1f} MP), shown at "
                    f"{shown_size}",
                    f"{first:.2f} s",
                    f"{exact:.1f} s ({exact / python:.0f}x)",
                    f"{marks:.1f} s",
                    f"{python:.2f} s",
                ]
            )
        browser.close()
    headers = ["photo", "first view", "exact SVD (÷ Python)", "marks", "Python exact SVD"]
    return headers, rows


def budget_table(*, quick: bool) -> tuple[list[str], list[list[object]]]:
    """Smooth, busy and noisy photos, gray and colour, 0.3 to 12 MP: the display size, the
    ranks embedded against the display image's rank, and the file against the budget."""
    import numpy as np
    import skimage.data
    import skimage.transform

    import svdimage
    from svdimage.explorer import _file_budget, _resize

    def sized(image: np.ndarray, megapixels: float) -> np.ndarray:
        rows = int(round(np.sqrt(megapixels * 1e6 * 3 / 4)))
        shape = (rows, int(round(rows * 4 / 3)), *image.shape[2:])
        return np.clip(skimage.transform.resize(image, shape, order=1), 0, 1).astype(np.float32)

    rng = np.random.default_rng(3)
    smooth = skimage.data.coffee() / 255.0  # soft backgrounds
    busy = skimage.data.astronaut() / 255.0  # texture everywhere
    noisy = np.clip(busy + rng.normal(0, 0.04, busy.shape), 0, 1)
    cases = [("smooth", smooth), ("busy", busy), ("noisy", noisy)]
    sizes = [0.05] if quick else [0.3, 1.0, 12.0]
    rows: list[list[object]] = []
    for name, image in cases:
        for mode in ("gray", "colour"):
            source = image if mode == "colour" else image @ np.array([0.2126, 0.7152, 0.0722])
            for megapixels in sizes:
                photo = sized(source, megapixels)
                start = time.perf_counter()
                page = svdimage.explore(photo, storage=False)
                built = time.perf_counter() - start
                Md, Nd = page.data["height"], page.data["width"]
                budget = _file_budget(_resize(photo, Md, Nd))
                size = len(page.to_html().encode())
                rows.append(
                    [
                        f"{name} {mode} {megapixels:g} MP",
                        f"{Nd}x{Md}",
                        f"{page.max_rank} of {page.data['fullRank']}",
                        sum(t["rank"] is not None for t in page.data["targets"]),
                        f"{size / 1e6:.2f} MB ({size / budget:.2f})",
                        f"{built:.1f} s",
                    ]
                )
    headers = ["photo", "display", "ranks", "marks resolved (of 4)", "file (÷ budget)", "build"]
    return headers, rows


if __name__ == "__main__":
    main()
