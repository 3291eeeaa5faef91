"""vidcap-demo in a real browser: Playwright drives Debian's Chromium (headless) to upload clips, press
Caption and Compare, and check what a first-time user sees (issue #23): the Caption button in view
without scrolling after an upload at 1280x800 and at 760 px wide; a preview that plays and no Gradio
error toast for a valid file the browser cannot play itself (10-bit HEVC); exactly one plainly worded
message for a broken file; tables, heatmaps and Compare columns not cut off at either width; 32
sampled frames in the frame strip without scrolling. It also saves a screenshot.

`make browser` installs Chromium (Debian: apt-get install chromium); without it this test skips.
VIDCAP_DEMO_RESULTS=results serves a real results folder instead of the tiny untrained test models
and writes the screenshot to results/figures/demo.png, the one the README shows (`make screenshot`
after `vidcap-bench run`). Without it the screenshot goes to the test's temporary folder, so a
test run never overwrites a committed file with a picture of untrained models.
VIDCAP_PERF_BROWSER=results/perf_browser.json also writes the click-to-caption times (seconds from the
click to the caption on the page, first click and repeats; measured, never asserted) of a SynthClips
example, the real camera clip of ../shared/videos (when there) and a 10 s 1280x720 H.264 clip, which
`vidcap-bench perf` puts in results/perf.md.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from test_demo import REPO, SHARED_VIDEOS, build_demo_results, free_port

from demo.handlers import DemoHandlers, DemoLimits, ModelCache, find_checkpoints
from vidcap_core.files import write_json

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOT = REPO / "results" / "figures" / "demo.png"
WAIT_MS = 180_000  # first caption loads the model; a loaded 2-core machine is slow
PERF_CLICKS = 5  # clicks timed after the first when VIDCAP_PERF_BROWSER asks for the times
WINDOWS = [(1280, 800), (760, 800)]  # (width, height): a laptop and a narrow window
CAPTION_SHOWN = ("() => { const box = document.querySelector('#caption textarea, #caption input');"
                 " const note = document.querySelector('#message .vidcap-error');"
                 " return (box && box.value.length > 0) || note !== null; }")
# The upload was checked: its preview loaded (or failed to load) in the browser, or the page says why not.
PREVIEW_SETTLED = ("() => { const v = document.querySelector('#preview video');"
                   " return (v !== null && (v.readyState >= 1 || v.error !== null))"
                   " || document.querySelector('#message .vidcap-error') !== null; }")
# What a user sees: where the Caption button is, Gradio's toasts, the page's own messages, the preview.
PAGE_STATE = """() => {
  const button = document.querySelector('#caption-button').getBoundingClientRect();
  const video = document.querySelector('#preview video');
  return {button_top: button.top, button_bottom: button.bottom, viewport: window.innerHeight, scroll_y: window.scrollY,
          toasts: [...document.querySelectorAll('[data-testid=toast-body]')].map(t => t.innerText),
          messages: [...document.querySelectorAll('.vidcap-error, .vidcap-warning')].map(m => m.innerText.trim()),
          preview: video === null ? null : {ready: video.readyState, error: video.error && video.error.code},
          caption: (document.querySelector('#caption textarea') || {}).value || ''};
}"""
# Anything cut off: tables and text wider than their box, a header word broken over two lines, heatmaps
# shrunk below 80% of the size they were drawn at (their labels then get too small to read), Compare
# columns narrower than 300 px, the page scrolling sideways.
CLIPPING = """() => {
  const cut = [];
  for (const t of document.querySelectorAll('.vidcap-table')) {
    if (!t.checkVisibility()) continue;
    if (t.scrollWidth > t.parentElement.clientWidth + 1) cut.push(`table ${t.id} wider than its box`);
    for (const th of t.querySelectorAll('th')) {
      const line = parseFloat(getComputedStyle(th).lineHeight) || 20;
      if (th.getBoundingClientRect().height > 2.2 * line) cut.push(`header "${th.innerText}" broken over lines`);
    }
  }
  const box = document.querySelector('#caption textarea');
  if (box && box.scrollHeight > box.clientHeight + 2) cut.push('caption text cut');
  for (const img of document.querySelectorAll('#heatmap img, .compare-heatmap img')) {
    if (!img.checkVisibility()) continue;  // in the tab not shown
    const shown = img.getBoundingClientRect().width;
    if (img.naturalWidth === 0) cut.push('heatmap not loaded');
    else if (shown < 0.8 * img.naturalWidth) cut.push(`heatmap shown at ${shown} of ${img.naturalWidth} px`);
  }
  for (const col of document.querySelectorAll('.compare-column')) {
    if (!col.checkVisibility()) continue;
    if (col.getBoundingClientRect().width < 300) cut.push(`compare column ${col.getBoundingClientRect().width} px wide`);
  }
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) cut.push('page scrolls sideways');
  return cut;
}"""
# Record that an event ran: the #message block showed Gradio's pending status (set before the request).
WATCH_PENDING = """() => {
  window.__vidcapPending = false;
  const busy = () => document.querySelector('#message .wrap:not(.hide)') !== null;
  new MutationObserver(() => { if (busy()) window.__vidcapPending = true; })
    .observe(document.body, {subtree: true, childList: true, attributes: true});
}"""
EVENT_DONE = "() => window.__vidcapPending && document.querySelector('#message .wrap:not(.hide)') === null"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (Debian: apt-get install chromium, needs root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo over the tiny test models, served on a free port: (url, demo data)."""
    from demo.app import build_app, launch_app

    demo_data = build_demo_results(tmp_path_factory.mktemp("demo_browser"))
    limits = DemoLimits()
    app = build_app(demo_data["results"], demo_data["synth"], limits)
    port = free_port()
    launch_app(app, port=port, limits=limits, examples_dir=demo_data["synth"], prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", demo_data
    finally:
        app.close()


@pytest.fixture(scope="module")
def committed_demo(tmp_path_factory):
    """The demo over the committed results/ (what `make demo` serves a first-time user: real captions of
    twenty-odd words, every Compare column), models loaded on first use: (url, SynthClips examples)."""
    from demo.app import build_app, launch_app

    results = REPO / "results"
    if not (results / "best" / "model.pt").is_file():
        pytest.skip(f"{results}/best/model.pt is not there")
    demo_data = build_demo_results(tmp_path_factory.mktemp("demo_browser"))
    limits = DemoLimits()
    app = build_app(results, demo_data["synth"], limits, warm_up=False)
    port = free_port()
    launch_app(app, port=port, limits=limits, examples_dir=demo_data["synth"], prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", demo_data["synth"]
    finally:
        app.close()


@pytest.fixture(scope="module")
def hevc_10bit(tmp_path_factory) -> Path:
    """A valid 10-bit HEVC clip: the model reads it, Chromium cannot play it."""
    import av
    from conftest import write_video

    if "yuv420p10le" not in [f.name for f in av.codec.Codec("libx265", "w").video_formats or []]:
        pytest.skip("PyAV's FFmpeg cannot encode 10-bit HEVC here")
    return write_video(tmp_path_factory.mktemp("hevc") / "camera_hevc10.mp4", 24, size=(96, 128), codec="libx265",
                       pix_fmt="yuv420p10le", options={"x265-params": "log-level=error"})


def test_upload_caption_and_screenshot(browser, tmp_path_factory):
    from demo.app import build_app, launch_app
    from demo.examples import load_examples
    from demo.render import caption_text

    demo_data = build_demo_results(tmp_path_factory.mktemp("demo_browser"))
    served = os.environ.get("VIDCAP_DEMO_RESULTS")
    results = Path(served) if served else demo_data["results"]
    screenshot = SCREENSHOT if served else tmp_path_factory.mktemp("screenshot") / "demo.png"
    limits = DemoLimits()
    clip = load_examples(demo_data["synth"], count=1).examples[0].path
    expected = DemoHandlers(ModelCache(find_checkpoints(results)), limits).caption_video(clip, "best", beam=3)

    app = build_app(results, demo_data["synth"], limits)
    port = free_port()
    launch_app(app, port=port, limits=limits, examples_dir=demo_data["synth"], prevent_thread_lock=True, quiet=True)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        url = f"http://127.0.0.1:{port}/"
        click_to_caption_s = [upload_and_caption(page, url, clip)]
        error = page.locator("#message .vidcap-error")
        assert error.count() == 0, error.inner_text()
        shown = page.locator("#caption textarea, #caption input").first.input_value()
        assert shown == caption_text(expected) and shown
        page.locator("#frame-strip .thumbnail-item").first.wait_for(timeout=WAIT_MS)
        page.wait_for_timeout(1000)  # let the gallery and heatmap images paint (the picture only; nothing asserted)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        partial = screenshot.with_name(f".{screenshot.name}.tmp.png")
        page.screenshot(path=str(partial), full_page=True)
        os.replace(partial, screenshot)
        assert screenshot.stat().st_size > 10_000
        if os.environ.get("VIDCAP_PERF_BROWSER"):
            write_json(Path(os.environ["VIDCAP_PERF_BROWSER"]), {
                "clips": time_clicks(page, url, clip, click_to_caption_s, tmp_path_factory.mktemp("perf_clips")),
                "served": str(results), "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "load_average": list(os.getloadavg())})
    finally:
        app.close()


def time_clicks(page, url: str, example: Path, example_first: list[float], scratch: Path) -> list[dict]:
    """Click to caption, first click and PERF_CLICKS more, for the SynthClips example (its first click
    already timed), the real camera clip of ../shared/videos when there, and a 10 s 1280x720 H.264 clip
    (benchmark.perf's writer). Beam 3, the page's default."""
    from benchmark.perf import CLIP_720P, SHARED_CAMERA_CLIP, write_test_clip

    clips = [(f"SynthClips {example.name} (64x64)", example, example_first)]
    if SHARED_CAMERA_CLIP.is_file():
        clips.append((f"real camera clip ({SHARED_CAMERA_CLIP.name}, 426x240)", SHARED_CAMERA_CLIP, []))
    clips.append(("10 s 1280x720 H.264", write_test_clip(scratch / "clip_720p_10s.mp4", CLIP_720P), []))
    measured = []
    for name, clip, seconds in clips:
        seconds += [upload_and_caption(page, url, clip) for _ in range(PERF_CLICKS + 1 - len(seconds))]
        measured.append({"clip": f"{name}, beam 3", "click_to_caption_s": seconds})
    return measured


@pytest.mark.parametrize("width, height", WINDOWS)
def test_a_valid_file_gets_a_playable_preview_no_toast_and_the_button_in_view(browser, demo, hevc_10bit, width, height):
    """10-bit HEVC: Chromium cannot play the file itself; the page shows an H.264 preview of the frames
    the model reads instead, so no 'Video not playable' toast, and captions it. The Caption button
    stays in the window without scrolling, upload and preview shown."""
    url, _ = demo
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        upload(page, url, hevc_10bit)
        state = page.evaluate(PAGE_STATE)
        assert state["preview"] is not None and state["preview"]["error"] is None and state["preview"]["ready"] >= 1, state
        assert state["scroll_y"] == 0 and 0 <= state["button_top"] and state["button_bottom"] <= state["viewport"], state
        page.evaluate(WATCH_PENDING)
        page.locator("#caption-button").click()
        page.wait_for_function(EVENT_DONE, timeout=WAIT_MS)
        page.wait_for_function(CAPTION_SHOWN, timeout=WAIT_MS)
        state = page.evaluate(PAGE_STATE)
        assert state["caption"] and state["toasts"] == [] and not any("Cannot" in m for m in state["messages"]), state
    finally:
        page.close()


def broken_files(scratch: Path) -> list[Path]:
    """A truncated mp4 (made here: header intact, half the frames missing) and ../shared/videos'
    corrupted.mp4 when there."""
    from conftest import write_video

    whole = write_video(scratch / "whole.mp4", 40, container_options={"movflags": "faststart"}).read_bytes()
    cut = scratch / "holiday_cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    corrupted = SHARED_VIDEOS / "corrupted.mp4"
    return [cut, *([corrupted] if corrupted.is_file() else [])]


@pytest.mark.parametrize("width, height", WINDOWS)
def test_a_broken_file_gets_exactly_one_plain_message(browser, demo, tmp_path, width, height):
    """On upload and again on Caption: one message of the page's own, naming the file and what to do;
    no Gradio toast, no preview (the browser never tries to play the file)."""
    url, _ = demo
    for broken in broken_files(tmp_path):
        page = browser.new_page(viewport={"width": width, "height": height})
        try:
            upload(page, url, broken)
            for step in ("upload", "caption"):
                if step == "caption":
                    page.evaluate(WATCH_PENDING)
                    page.locator("#caption-button").click()
                    page.wait_for_function(EVENT_DONE, timeout=WAIT_MS)
                state = page.evaluate(PAGE_STATE)
                assert state["toasts"] == [] and len(state["messages"]) == 1, (step, state)
                assert state["messages"][0].startswith(f"⚠️ Cannot read video '{broken.name}'"), (step, state)
                assert state["preview"] is None and state["button_bottom"] <= state["viewport"], (step, state)
        finally:
            page.close()


@pytest.mark.parametrize("width, height", WINDOWS)
def test_nothing_is_cut_off(browser, committed_demo, width, height):
    """With the committed models: the caption details (hypotheses, heatmap, per-word table, checker
    verdict) and every Compare column (captions, heatmaps) fit the window: no table wider than its box,
    no header broken, heatmaps shown at 80% of their drawn size or more, Compare columns 300 px wide
    or more, no sideways scrolling."""
    from demo.examples import load_examples

    url, examples = committed_demo
    clip = load_examples(examples, count=1).examples[0].path
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        upload_and_caption(page, url, clip)
        page.locator("#hypotheses").wait_for(timeout=WAIT_MS)
        page.locator("#verdict").wait_for(timeout=WAIT_MS)
        load_images(page, "#heatmap img")
        assert page.evaluate(CLIPPING) == []
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-button").click()
        page.locator(".compare-heatmap img").first.wait_for(state="attached", timeout=WAIT_MS)
        load_images(page, ".compare-heatmap img")
        assert page.evaluate(CLIPPING) == []
    finally:
        page.close()


STRIP_LAYOUT = """() => {
  const strip = document.querySelector('#frame-strip'), grid = strip.querySelector('.grid-wrap');
  const boxes = [...strip.querySelectorAll('.thumbnail-item')].map(t => t.getBoundingClientRect());
  const labels = [...strip.querySelectorAll('.caption-label')];
  return {frames: boxes.length, scrolls: grid.scrollHeight > grid.clientHeight + 1,
          rightmost: Math.max(...boxes.map(b => b.right)), page_width: document.documentElement.clientWidth,
          rows: new Set(boxes.map(b => Math.round(b.top))).size,
          cut_labels: labels.filter(l => l.scrollWidth > l.clientWidth + 1).map(l => l.innerText)};
}"""


def test_frame_strip_shows_every_frame_without_scrolling(browser, demo):
    """32 sampled frames: all on the page at once, wrapped into rows, none cut at the right edge,
    labels whole, on a wide and on a narrow window (the gallery used to scroll, and cut columns)."""
    from demo.examples import load_examples

    url, demo_data = demo
    clip = load_examples(demo_data["synth"], count=1).examples[0].path
    for width in (1280, 760):
        page = browser.new_page(viewport={"width": width, "height": 900})
        upload_and_caption(page, url, clip, frames=32)
        error = page.locator("#message .vidcap-error")
        assert error.count() == 0, error.inner_text()
        page.locator("#frame-strip .thumbnail-item").nth(31).wait_for(timeout=WAIT_MS)
        layout = page.evaluate(STRIP_LAYOUT)
        assert layout["frames"] == 32 and not layout["scrolls"], layout
        assert layout["rightmost"] <= layout["page_width"] and layout["rows"] >= 2, layout
        assert layout["cut_labels"] == [], layout
        page.close()


def upload(page, url: str, clip: Path, frames: int | None = None) -> None:
    """Open a fresh page, set the Frames control (None: leave it at the model's own count), upload
    `clip`, and wait until the page has checked it (its preview loaded in the browser, or a message)."""
    page.goto(url, wait_until="domcontentloaded")
    if frames is not None:
        page.locator("#frames input[type=number]").fill(str(frames))
        page.locator("#frames input[type=number]").press("Enter")
    page.locator("#video input[type=file]").set_input_files(str(clip))
    page.wait_for_function(PREVIEW_SETTLED, timeout=WAIT_MS)


def upload_and_caption(page, url: str, clip: Path, frames: int | None = None) -> float:
    """`upload`, then click Caption: the seconds from the click to the caption on the page. A fresh page
    each time, so the caption box starts empty and the wait sees this click's answer (clearing the box
    by script does not work: Gradio does not re-render a value that did not change)."""
    upload(page, url, clip, frames)
    clicked = time.perf_counter()
    page.locator("#caption-button").click()
    page.wait_for_function(CAPTION_SHOWN, timeout=WAIT_MS)
    return time.perf_counter() - clicked


def load_images(page, selector: str) -> None:
    """Scroll to each image in turn and wait until it has loaded: Gradio's images load lazily, and an
    image not loaded yet is 0 px tall, so Playwright's scroll-into-view does not reach it."""
    for index in range(page.locator(selector).count()):
        page.evaluate("([selector, index]) => { const image = document.querySelectorAll(selector)[index];"
                      " window.scrollTo(0, image.getBoundingClientRect().top + window.scrollY - 200); }", [selector, index])
        page.wait_for_function("([selector, index]) => { const image = document.querySelectorAll(selector)[index];"
                               " return image.complete && image.naturalWidth > 0; }", arg=[selector, index], timeout=WAIT_MS)
