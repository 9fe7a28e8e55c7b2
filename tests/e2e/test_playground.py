"""The playground page (`/`), driven in Debian's headless Chromium through Playwright.

Nothing downloads a browser: `make test-services` installs /usr/bin/chromium and the tests
launch it by path. Screenshots of each state are written to docs/playground/ on request. The
page is the same on both task stores, so these run on SQLite only."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw

from tests.support.test_engine import DeterministicEngine
from wanimage.types import Box, scale_boxes

pytestmark = pytest.mark.store_independent  # the page; the store paths it uses (cancel, list) run on both in test_tasks, test_hostile

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "playground"
DESKTOP = {"width": 1100, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 20_000



@pytest.fixture(scope="module")
def browser():
    # `make test` installs both (playwright from the test extra, chromium in test-services):
    # a missing one is a broken set-up, reported as a failure rather than skipped.
    from playwright import sync_api

    assert shutil.which(CHROMIUM), "needs Debian's chromium: run `make test-services`"
    with sync_api.sync_playwright() as pw:
        # launch() gives every run a fresh, throwaway profile directory.
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(server, viewport=DESKTOP) -> a loaded playground page; page errors fail the test."""
    contexts, errors = [], []

    def open_(running, viewport=DESKTOP, locale="en-US"):
        # the page's language defaults to the browser's: pinned here, so that English tests stay English
        context = browser.new_context(viewport=viewport, device_scale_factor=1, locale=locale)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(running.base_url + "/")
        page.wait_for_selector("body[data-ready=true]")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, f"errors in the page: {errors}"


@pytest.fixture
def shot():
    """shot(page, name): a screenshot for docs/playground/, written only when WANIMAGE_SCREENSHOTS=1,
    so that an ordinary test run leaves the committed pictures alone."""

    def take(page, name: str, scroll_to: str | None = None) -> None:
        if os.environ.get("WANIMAGE_SCREENSHOTS") != "1":
            return
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        if scroll_to:
            page.locator(scroll_to).first.evaluate("n => n.scrollIntoView({block: 'start'})")
        else:
            page.evaluate("window.scrollTo(0, 0)")
        page.mouse.move(0, 0)
        png = page.screenshot(animations="disabled")
        Image.open(io.BytesIO(png)).convert("RGB").save(SHOTS / f"{name}.png", optimize=True)

    return take


def png_file(path: Path, width: int, height: int, color, label: str) -> Path:
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 40):
        draw.line((x, 0, x, height), fill=tuple(min(255, c + 30) for c in color))
    draw.ellipse((width * 0.3, height * 0.3, width * 0.7, height * 0.7), fill=(250, 250, 250))
    draw.text((8, 8), label, fill=(20, 20, 20))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


def run_and_wait(page, status="Done") -> None:
    page.click("#run")
    page.wait_for_function(
        "want => document.querySelector('#status').textContent.startsWith(want)", arg=status, timeout=TIMEOUT_MS
    )


def drag(page, stage, start, end, image_size, steps=8) -> None:
    """Drag with the mouse between two points given in the image's own pixels."""
    box = stage.bounding_box()
    w, h = image_size
    page.mouse.move(box["x"] + start[0] * box["width"] / w, box["y"] + start[1] * box["height"] / h)
    page.mouse.down()
    page.mouse.move(box["x"] + end[0] * box["width"] / w, box["y"] + end[1] * box["height"] / h, steps=steps)
    page.mouse.up()


def box_coords(page, image: int) -> list[list[int]]:
    texts = page.locator(f"#thumbs > li:nth-child({image}) .coord").all_text_contents()
    return [json.loads(t.split(":", 1)[1]) for t in texts]


def test_page_and_assets_are_served_without_a_key(make_server):
    keyed = make_server(api_keys="k1")
    for path in ("/", "/playground"):
        rsp = httpx.get(keyed.base_url + path)
        assert rsp.status_code == 200 and rsp.headers["content-type"].startswith("text/html")
        assert 'src="playground/app.js"' in rsp.text  # relative: works behind a path prefix
    assert httpx.get(keyed.base_url + "/playground/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(keyed.base_url + "/playground/app.css").headers["content-type"].startswith("text/css")
    assert httpx.get(keyed.base_url + "/playground/").headers["location"] == "../playground"
    assert httpx.get(keyed.base_url + "/playground/secret.key").status_code == 404
    assert "/playground" not in httpx.get(keyed.base_url + "/openapi.json").text


def test_text_to_image(server, open_page, shot):
    page = open_page(server)
    # the model list comes from /v1/models; every control has an accessible name
    assert page.locator("#model option").all_inner_texts()[:2] == ["wan2.7-image", "wan2.7-image-pro"]
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(n => !(n.labels && n.labels.length) && !n.getAttribute('aria-label') && !n.textContent.trim())
            .map(n => n.id || n.outerHTML.slice(0, 60))"""
    )
    assert unnamed == []
    page.fill("#prompt", "a red apple on a wooden table, soft morning light")
    assert page.text_content("#prompt-count") == "49 / 5000"
    page.select_option("#size", "1K")
    page.fill("#n", "2")
    # thinking applies to text-to-image; an image set disables it and says why
    page.check("#sequential")
    assert page.is_disabled("#thinking")
    assert "image sets" in page.text_content("#thinking-note")
    assert page.get_attribute("#n", "max") == "12"
    page.uncheck("#sequential")
    assert page.is_enabled("#thinking")
    assert "needs wan2.7-image-pro" in page.text_content("#size option[value='4K']")
    page.select_option("#model", "wan2.7-image-pro")
    assert page.is_enabled("#size option[value='4K']")
    page.check("#watermark")
    page.check("#palette-on")  # the default palette sums to 100 %
    assert page.text_content("#palette-sum") == "Sum 100.00 %"
    shot(page, "01-form", scroll_to="#size")

    run_and_wait(page)
    results = page.locator("#results li")
    assert results.count() == 2
    job = server.engine.jobs[-1]
    assert (job.model, job.prompt.startswith("a red apple"), job.n, job.width, job.height) == (
        "wan2.7-image-pro", True, 2, 1024, 1024,
    )
    assert str(job.seed) == page.input_value("#seed")  # the seed shown is the seed used
    assert job.palette is not None and len(job.palette) == 3
    assert f"seed {job.seed}" in results.first.text_content()
    assert "1024×1024" in results.first.text_content()
    # the result <img> loads asynchronously: wait for the decode before reading its size
    page.wait_for_function("(() => { const i = document.querySelector('#results img');"
                           " return i && i.complete && i.naturalWidth > 0; })()")
    assert page.evaluate("document.querySelector('#results img').naturalWidth") == 1024
    href = results.first.locator("a[download]").get_attribute("href")
    assert httpx.get(href).headers["content-type"] == "image/png"
    assert page.locator("#progress").evaluate("p => p.value") == 100

    page.click("#code-box summary")
    code = page.text_content("#code")
    assert "X-DashScope-Async: enable" in code and "a red apple" in code and f'"seed": {job.seed}' in code
    page.click("#tab-openai")
    assert "client.images.generate(" in page.text_content("#code")
    page.click("#tab-dashscope")
    assert "ImageGeneration.async_call(" in page.text_content("#code")
    shot(page, "02-text-to-image")


def test_boxes_on_the_second_image_reach_the_server(server, open_page, shot, tmp_path):
    page = open_page(server)
    first = png_file(tmp_path / "clock.png", 320, 240, (200, 60, 50), "image 1")
    second = png_file(tmp_path / "room.png", 400, 300, (60, 110, 190), "image 2")
    page.set_input_files("#files", [str(first), str(second)])
    page.wait_for_selector("#thumbs > li:nth-child(2) .stage img")
    assert page.locator("#thumbs strong").all_inner_texts() == ["image 1", "image 2"]
    assert page.is_disabled("#thinking")

    # a box on image 1, deleted again from the keyboard
    stage1 = page.locator("#thumbs > li:nth-child(1) .stage")
    drag(page, stage1, (20, 20), (120, 100), (320, 240))
    assert len(box_coords(page, 1)) == 1
    page.locator("#thumbs > li:nth-child(1) .box").focus()
    page.keyboard.press("Delete")
    assert box_coords(page, 1) == []

    # image 2: draw, move, resize with the mouse
    stage2 = page.locator("#thumbs > li:nth-child(2) .stage")
    drag(page, stage2, (20, 20), (140, 110), (400, 300))
    [[x1, y1, x2, y2]] = box_coords(page, 2)
    assert abs(x1 - 20) <= 2 and abs(y1 - 20) <= 2 and abs(x2 - 140) <= 2 and abs(y2 - 110) <= 2
    drag(page, stage2, (80, 60), (100, 70), (400, 300))  # move by about (+20, +10)
    [[mx1, my1, mx2, my2]] = box_coords(page, 2)
    assert abs((mx1 - x1) - 20) <= 2 and abs((my1 - y1) - 10) <= 2 and (mx2 - mx1, my2 - my1) == (x2 - x1, y2 - y1)
    handle = page.locator("#thumbs > li:nth-child(2) .handle.se").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(handle["x"] + 16, handle["y"] + 10, steps=5)
    page.mouse.up()
    [[rx1, ry1, rx2, ry2]] = box_coords(page, 2)
    assert (rx1, ry1) == (mx1, my1) and rx2 > mx2 and ry2 > my2
    # a second box with the button, then moved and resized from the keyboard (4 px a step here)
    page.click("#thumbs > li:nth-child(2) button:has-text('Add box')")
    boxes = box_coords(page, 2)
    assert len(boxes) == 2 and boxes[1] == [100, 75, 300, 225]
    assert page.is_disabled("#thumbs > li:nth-child(2) button:has-text('Add box')")
    for key, times in (("ArrowRight", 20), ("ArrowDown", 12), ("Shift+ArrowLeft", 15), ("Shift+ArrowUp", 8)):
        for _ in range(times):
            page.keyboard.press(key)
    assert box_coords(page, 2)[1] == [180, 123, 320, 241]

    page.fill("#prompt", "put the clock from image 1 into the boxed areas of image 2")
    page.select_option("#size", "1K")
    shot(page, "03-boxes", scroll_to="#images-field")
    run_and_wait(page)
    job = server.engine.jobs[-1]
    drawn = [Box(*b) for b in box_coords(page, 2)]  # image 2's boxes, in its pixels; the engine gets it in output pixels
    assert job.source_boxes == ((),) and list(job.edit_boxes) == scale_boxes(drawn, (400, 300), (job.width, job.height))
    assert [(im.width, im.height) for im in job.images] == [(320, 240), (400, 300)]
    assert page.locator("#results li").count() == 1
    shot(page, "04-edit-result", scroll_to="#images-field")


def test_palette_that_does_not_sum_to_100_is_refused_in_the_page(server, open_page, shot):
    page = open_page(server)
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/generation" in r.url else None)
    page.fill("#prompt", "a calm harbour at dusk")
    page.select_option("#size", "1K")
    page.check("#palette-on")
    page.fill("#swatch-0-ratio", "50")
    page.fill("#swatch-1-ratio", "30")
    page.fill("#swatch-2-ratio", "10")
    assert page.text_content("#palette-sum") == "Sum 90.00 %"
    page.click("#run")
    error = page.locator("#err-color_palette")
    assert "90.00 %" in error.text_content() and "100 %" in error.text_content()
    assert page.text_content("#status").startswith("Not sent")
    page.wait_for_timeout(300)
    assert sent == []
    shot(page, "05-palette-refused", scroll_to="#seed")

    page.click("#swatch-even")
    assert page.text_content("#palette-sum") == "Sum 100.00 %"
    run_and_wait(page)
    assert len(sent) == 1 and error.text_content() == ""
    assert len(server.engine.jobs[-1].palette) == 3


def start_slow_run(make_server, open_page, prompt: str, *, stream: bool = False):
    """A server whose tasks take 5 s, and a page that has just clicked Run on it."""
    slow = make_server(engine=DeterministicEngine(steps=50, step_seconds=0.1))
    page = open_page(slow)
    page.fill("#prompt", prompt)
    page.select_option("#size", "1K")
    if stream:
        page.check("#transport-stream")
    page.click("#run")
    return slow, page


def test_cancel_a_running_task(make_server, open_page, shot):
    slow, page = start_slow_run(make_server, open_page, "a slow painting of a lighthouse")
    page.wait_for_function("document.querySelector('#progress').value >= 10")
    assert page.is_enabled("#cancel") and page.is_disabled("#run")
    shot(page, "06-running")
    page.click("#cancel")
    page.wait_for_function("document.querySelector('#status').textContent === 'Canceled.'")
    assert page.locator("#history .badge").first.text_content() == "canceled"
    task_id = json.loads(page.evaluate("localStorage.getItem('wanimage.playground.history')"))[0]["taskId"]
    body = httpx.get(f"{slow.api_base}/tasks/{task_id}").json()
    assert body["output"]["task_status"] == "CANCELED"
    assert page.is_enabled("#run") and page.is_disabled("#cancel")


def test_cancel_of_a_stream_cancels_the_task_on_the_server(make_server, open_page):
    slow, page = start_slow_run(make_server, open_page, "a slow painting of a harbour", stream=True)
    page.wait_for_selector("#previews img")  # the first partial image arrived: the task runs
    page.click("#cancel")
    deadline = time.monotonic() + 10
    while not (tasks := slow.service.list().tasks)[0].status.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tasks[0].status.value == "CANCELED"


def test_api_errors_appear_next_to_their_field(server, open_page, shot, tmp_path):
    page = open_page(server)
    page.fill("#prompt", "a wide banner")
    page.select_option("#size", "custom")
    page.fill("#size-w", "4000")
    page.fill("#size-h", "4000")
    assert "outside the bounds" in page.text_content("#size-note")
    run_and_wait(page, status="Failed")
    error = page.locator("#err-size")
    assert error.text_content().startswith("Size: 4000*4000")
    assert page.get_attribute("#size", "aria-invalid") == "true"
    shot(page, "07-api-error", scroll_to=".grid2")

    # an input image the server refuses: the message lands on that thumbnail
    page.select_option("#size", "1K")
    tiny = png_file(tmp_path / "tiny.png", 120, 120, (90, 160, 90), "tiny")
    page.set_input_files("#files", [str(tiny)])
    page.wait_for_selector("#thumbs > li .stage img")
    run_and_wait(page, status="Failed")
    assert error.text_content() == ""
    assert page.text_content("#err-image-1").startswith("Image 1: ")


def test_history_reloads_a_past_request_and_resumes_a_running_task(make_server, open_page, shot):
    srv = make_server(engine=DeterministicEngine(steps=20, step_seconds=0.05))
    page = open_page(srv)
    page.fill("#prompt", "a paper boat on a puddle")
    page.select_option("#size", "custom")
    page.fill("#size-w", "1024")
    page.fill("#size-h", "768")
    page.fill("#seed", "1234")
    page.check("#seed-lock")
    run_and_wait(page)
    assert srv.engine.jobs[-1].seed == 1234

    # a second run that is still going when the page is reloaded
    page.fill("#prompt", "a second request, left running")
    page.uncheck("#seed-lock")
    page.click("#run")
    page.wait_for_function("document.querySelector('#progress').value > 0")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
    assert page.locator("#history .badge").all_inner_texts() == ["succeeded", "succeeded"]
    assert srv.engine.jobs[-1].prompt == "a second request, left running"

    page.click("#reset")
    assert page.input_value("#prompt") == ""
    page.locator("#history .history-load").nth(1).click()
    assert page.input_value("#prompt") == "a paper boat on a puddle"
    assert (page.input_value("#size"), page.input_value("#size-w"), page.input_value("#size-h")) == ("custom", "1024", "768")
    assert page.input_value("#seed") == "1234" and page.is_checked("#seed-lock")
    assert "1024×768" in page.text_content("#results")
    shot(page, "08-history")
    run_and_wait(page)
    assert (srv.engine.jobs[-1].prompt, srv.engine.jobs[-1].seed) == ("a paper boat on a puddle", 1234)


def test_phone_layout(server, open_page, shot, tmp_path):
    page = open_page(server, viewport=PHONE)
    page.set_input_files("#files", [str(png_file(tmp_path / "a.png", 400, 300, (60, 110, 190), "image 1"))])
    page.wait_for_selector("#thumbs .stage img")
    drag(page, page.locator("#thumbs .stage"), (60, 60), (220, 200), (400, 300))
    page.fill("#prompt", "a kite in the boxed area")
    page.select_option("#size", "1K")
    run_and_wait(page)
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert re.match(r"\d+×\d+", page.locator("#results .meta span").first.text_content())
    shot(page, "09-phone", scroll_to="#prompt-count")


def test_api_key_and_live_previews_through_the_openai_stream(make_server, open_page, shot):
    keyed = make_server(api_keys="k1")
    page = open_page(keyed)
    assert page.text_content("#key-note") == "This server requires an API key."
    page.fill("#prompt", "a lantern in the fog")
    page.select_option("#size", "1K")
    page.check("#transport-stream")
    run_and_wait(page, status="Failed")
    assert page.text_content("#err-authorization").startswith("API key: ")
    page.fill("#api-key", "k1")
    run_and_wait(page)
    assert page.locator("#previews img").count() == 3  # partial_images=3 from the SSE stream
    assert page.locator("#results li").count() == 1
    assert page.text_content("#err-authorization") == ""
    assert keyed.engine.jobs[-1].prompt == "a lantern in the fog"
    shot(page, "10-previews")


# ---------------------------------------------------------------- the first five minutes of a new user

def test_favicon_and_api_docs_work_offline(server, browser):
    icon = httpx.get(server.base_url + "/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(icon.content)).size == (32, 32)
    context = browser.new_context(viewport=DESKTOP)
    outside = []

    def only_loopback(route):
        host = route.request.url.split("/")[2].split(":")[0]
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:  # a CDN: this machine is offline
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    try:
        page = context.new_page()
        page.goto(server.base_url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=TIMEOUT_MS)
        assert "wanimage" in page.text_content(".swagger-ui .info .title")
        page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/services/aigc/multimodal-generation/generation']",
                               timeout=TIMEOUT_MS)
        page.goto(server.base_url + "/redoc")
        page.wait_for_selector("h1:has-text('wanimage')", timeout=TIMEOUT_MS)
        # ReDoc's bundle links its own "powered by" logo from its CDN: decoration, nothing else
        assert [url for url in outside if not url.endswith("/redoc/logo-mini.svg")] == []
    finally:
        context.close()


def test_each_card_shows_its_own_seed_and_ctrl_enter_runs(server, open_page):
    page = open_page(server, viewport={"width": 1280, "height": 800})
    page.fill("#prompt", "three paper boats")
    page.select_option("#size", "1K")
    page.fill("#n", "3")
    page.fill("#seed", "2147483640")
    page.check("#seed-lock")
    page.focus("#prompt")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
    seeds = page.locator("#results .meta .seed").all_inner_texts()
    assert seeds == ["seed 2147483640", "seed 2147483641", "seed 2147483642"]
    assert [j.seed for j in server.engine.jobs[-1:]] == [2147483640]
    # nothing of the seed is cut off at this width
    cut = page.evaluate("[...document.querySelectorAll('#results .meta .seed')]"
                        ".some(n => n.scrollWidth > n.clientWidth + 1 || n.getBoundingClientRect().right >"
                        " n.closest('li').getBoundingClientRect().right + 1)")
    assert cut is False


def test_sets_are_labelled_as_sets_and_saving_is_its_own_state(make_server, open_page):
    slow = make_server(engine=DeterministicEngine(steps=4, finish_seconds=3))
    page = open_page(slow)
    page.fill("#prompt", "a fox in four seasons")
    page.select_option("#size", "1K")
    page.check("#sequential")
    page.fill("#n", "3")
    page.click("#run")
    page.wait_for_function("document.querySelector('#status').textContent === 'Saving images…'")
    assert page.locator("#progress").evaluate("p => p.value") < 100
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
    assert "image set" in page.locator("#history .note").first.text_content()
    assert page.locator("#results .meta .seed").first.text_content().startswith("set image 1 · seed ")


def test_a_stream_run_is_kept_with_its_image_and_revised_prompt(server, open_page):
    page = open_page(server)
    page.fill("#prompt", "a lighthouse at night")
    page.select_option("#size", "1K")
    page.check("#transport-stream")
    run_and_wait(page)
    assert page.text_content("#revised").startswith("Revised prompt: ")
    entry = json.loads(page.evaluate("localStorage.getItem('wanimage.playground.history')"))[0]
    assert entry["status"] == "SUCCEEDED" and entry["revised"]
    assert len(entry["images"]) == 1 and entry["images"][0].startswith("data:image/jpeg")
    assert len(entry["images"][0]) < 60_000  # a small copy, not the PNG
    assert page.locator("#history li img").count() >= 1


def test_on_a_phone_the_result_scrolls_into_view(server, open_page):
    page = open_page(server, viewport=PHONE)
    page.fill("#prompt", "a red kite")
    page.select_option("#size", "1K")
    run_and_wait(page)
    page.wait_for_function("(() => { const r = document.querySelector('#results li').getBoundingClientRect();"
                           " return r.top < innerHeight && r.bottom > 0; })()")


def test_the_server_gallery_survives_a_cleared_browser_and_runs_again(server, open_page, tmp_path):
    page = open_page(server)
    page.set_input_files("#files", [str(png_file(tmp_path / "g.png", 400, 300, (90, 140, 60), "image 1"))])
    page.wait_for_selector("#thumbs .stage img")
    drag(page, page.locator("#thumbs .stage"), (40, 40), (200, 160), (400, 300))
    prompt = f"a green umbrella in the box {time.time()}"
    page.fill("#prompt", prompt)
    page.select_option("#size", "1K")
    run_and_wait(page)
    seed = int(page.input_value("#seed"))
    sent_boxes = (server.engine.jobs[-1].edit_boxes, server.engine.jobs[-1].source_boxes)

    page.evaluate("localStorage.clear()")  # a cleared browser: the server still has the task
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    item = page.locator("#gallery .gallery-item", has_text=prompt)
    item.wait_for()
    assert "box edit of 1 image" in item.text_content() and f"seed {seed}" in item.text_content()
    assert item.locator("img").get_attribute("src").startswith(server.base_url + "/files/")
    item.locator("button", has_text="Run again").click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Loaded from the server')")
    assert page.input_value("#prompt") == prompt and page.input_value("#seed") == str(seed)
    assert page.is_checked("#seed-lock")
    page.wait_for_selector("#thumbs .stage img")
    run_and_wait(page)
    again = server.engine.jobs[-1]
    assert again.seed == seed and (again.edit_boxes, again.source_boxes) == sent_boxes


@pytest.mark.slow
def test_the_built_in_model_in_the_playground(tmp_path, open_page):
    """What a new user sees after `make serve`: the built-in model's own picture (the README's
    hero screenshot is this page, written with WANIMAGE_SCREENSHOTS=1). With WANIMAGE_HERO_PRESET
    set (a preset already pulled, e.g. sd-turbo) the same page is served by that preset and
    written as 00-<preset>-result.png: the README's second hero, on a machine with the Hub."""
    from tests.support.server import start_server
    from wanimage.config import Settings
    from wanimage.engines.factories import build_registry

    preset = os.environ.get("WANIMAGE_HERO_PRESET") or None
    pulled = Settings().resolved_models_dir().resolve() if preset else None  # where `wanimage pull` put it
    registry = build_registry(Settings(data_dir=tmp_path / "builtin", preset=preset, models_dir=pulled))
    assert set(registry.preload().values()) == {None}  # every id loaded before the health wait
    running = start_server(tmp_path / "builtin", registry=registry)
    try:
        page = open_page(running, viewport={"width": 1280, "height": 860})
        page.fill("#prompt", "a red apple on the left and a cat on the right, on a sunny meadow")
        page.select_option("#size", "1K")
        page.fill("#seed", "7")
        page.check("#seed-lock")
        run_and_wait(page)
        page.wait_for_function("(() => { const i = document.querySelector('#results img');"
                               " return i && i.complete && i.naturalWidth === 1024; })()")
        assert page.text_content("#revised").startswith("Revised prompt: ")
        if os.environ.get("WANIMAGE_SCREENSHOTS") == "1":
            page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
            png = page.screenshot(animations="disabled")
            name = f"00-{preset}-result.png" if preset else "00-builtin-result.png"
            Image.open(io.BytesIO(png)).convert("RGB").save(SHOTS / name, optimize=True)
    finally:
        running.stop()


# Every word the page shows, by where it is: text of marked elements, placeholders, titles and
# accessible names, the notes and lines the script writes, and the example prompts.
PAGE_WORDS = """() => {
  const visible = (n) => n.offsetParent !== null || n.tagName === 'OPTION' || n.tagName === 'TITLE';
  const out = {};
  document.querySelectorAll('[data-i18n]').forEach(n => { if (visible(n)) out['text:' + n.dataset.i18n] = n.textContent.trim(); });
  document.querySelectorAll('[placeholder]').forEach(n => { out['placeholder:' + n.id] = n.placeholder; });
  document.querySelectorAll('[title]').forEach(n => { out['title:' + n.id] = n.title; });
  document.querySelectorAll('[aria-label]').forEach((n, i) => {
    out['aria:' + (n.id || n.dataset.i18nLabel || n.className || i)] = n.getAttribute('aria-label'); });
  for (const id of ['n-note', 'thinking-note', 'size-note', 'palette-note', 'status', 'history', 'gallery', 'serving'])
    out['#' + id] = document.getElementById(id).textContent.trim();
  document.querySelectorAll('#results .meta').forEach((n, i) => { out['result:' + i] = n.textContent.trim(); });
  document.querySelectorAll('#examples button').forEach((n, i) => { out['example:' + i] = n.textContent; });
  return out;
}"""
HAN = re.compile(r"[\u4e00-\u9fff]")
# names that are the same in both languages: product and model ids, code flavours, the switch itself
SAME_IN_BOTH = re.compile(r"^(aria:(tab-|lang$)|.*wan2\.7)")


def chinese_page_checks(page, english: dict) -> dict:
    chinese = page.evaluate(PAGE_WORDS)
    assert chinese.keys() == english.keys() and len(chinese) > 60
    unchanged = [k for k in english if english[k] == chinese[k] and english[k] and not SAME_IN_BOTH.match(k)]
    assert unchanged == [], f"still in English after the switch: {unchanged}"
    no_han = [k for k, v in chinese.items() if v and not HAN.search(v) and not SAME_IN_BOTH.match(k)]
    assert no_han == [], f"no Chinese in: {[(k, chinese[k]) for k in no_han]}"
    return chinese


def test_the_page_speaks_chinese_and_remembers_the_choice(server, open_page, shot):
    # a task already on the server, so the gallery has an item whose words must switch too
    body = {"model": "wan2.7-image", "input": {"messages": [{"role": "user", "content": [{"text": "a red fox"}]}]},
            "parameters": {"size": "1K"}}
    assert httpx.post(server.api_base + "/services/aigc/multimodal-generation/generation", json=body, timeout=60).is_success
    page = open_page(server)
    page.click("#run")  # a client-side refusal: its message must change language with the page
    page.wait_for_function("document.querySelector('#err-prompt').textContent !== ''")
    english = page.evaluate(PAGE_WORDS)
    assert "a red fox" in english["#gallery"] and english["aria:small"].startswith("Load into the form")
    assert [v for v in english.values() if re.fullmatch(r"[a-z]+[A-Z]\w*", v)] == []  # no key shown as words
    assert english["text:run"] == "Run" and english["#status"].startswith("Not sent")
    assert page.get_attribute("html", "lang") == "en"

    page.click("button[data-lang=zh]")
    chinese = chinese_page_checks(page, english)
    assert page.get_attribute("html", "lang") == "zh-CN" and page.title() == "wanimage 体验台"
    assert chinese["text:run"] == "生成" and chinese["#status"] == "未发送：请修改标出的字段。"
    assert page.text_content("#err-prompt").startswith("提示词：")
    assert page.get_attribute("button[data-lang=zh]", "aria-pressed") == "true"

    # a Chinese example prompt goes to the server as it is shown, and the result reads in Chinese
    example = page.locator("#examples button").nth(1)
    prompt = example.text_content()
    assert prompt == "两只狗在公园里玩球，水彩风格"
    example.click()
    assert page.input_value("#prompt") == prompt and page.text_content("#prompt-count") == "14 / 5000"
    page.select_option("#size", "1K")
    run_and_wait(page, status="完成")
    job = server.engine.jobs[-1]
    assert job.prompt == prompt and page.text_content("#status") == "完成：1 张图片。"
    assert f"种子 {job.seed}" in page.text_content("#results li") and page.text_content("#results a[download]") == "下载"
    assert "两只狗" in page.text_content("#history") and "成功" in page.text_content("#history")
    shot(page, "11-chinese")

    # an API error is shown as the server sent it, after the field's name in the page's language
    page.select_option("#size", "custom")
    page.fill("#size-w", "4000")
    page.fill("#size-h", "4000")
    assert "超出范围" in page.text_content("#size-note")
    run_and_wait(page, status="失败")
    assert page.text_content("#err-size").startswith("尺寸: 4000*4000")
    assert HAN.search(page.text_content("#err-size").partition(": ")[2]) is None

    # the choice survives a reload (localStorage), and English comes back word for word
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("html", "lang") == "zh-CN" and page.text_content("#run") == "生成"
    page.click("button[data-lang=en]")
    assert page.text_content("#run") == "Run" and page.get_attribute("#prompt", "placeholder").startswith("A red apple")
    assert page.text_content("#examples button") == "A red apple on a wooden table"
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("html", "lang") == "en" and page.text_content("#status") == "Ready."


@pytest.mark.parametrize(("locale", "lang"), [("zh-CN", "zh-CN"), ("zh-TW", "zh-CN"), ("en-GB", "en"), ("de-DE", "en")])
def test_the_browser_language_is_the_default(server, open_page, locale, lang):
    page = open_page(server, locale=locale)
    assert page.evaluate("navigator.language") == locale
    assert page.get_attribute("html", "lang") == lang
    assert page.text_content("#run") == ("生成" if lang == "zh-CN" else "Run")
    if lang == "zh-CN":  # a choice made in the page wins over the browser's language
        page.click("button[data-lang=en]")
        page.reload()
        page.wait_for_selector("body[data-ready=true]")
        assert page.text_content("#run") == "Run"


def test_input_images_and_boxes_switch_language_too(server, open_page, tmp_path):
    page = open_page(server)
    image = png_file(tmp_path / "猫.png", 320, 240, (60, 90, 160), "cat")
    page.set_input_files("#files", [str(image)])
    page.wait_for_selector("#thumbs > li .stage img")
    page.click("#thumbs button:text('Add box')")
    page.check("#sequential")  # a set from an image: the mode, n and thinking notes change words
    words = """() => [...document.querySelectorAll('#thumbs *, #n-note, #thinking-note, #size-note, #palette-note')]
        .flatMap(n => [n.children.length ? '' : n.textContent.trim(), n.getAttribute('aria-label') || '',
                       n.getAttribute('alt') || ''])
        .filter(w => w && !/^[\\d×,\\s\\[\\]←]+$/.test(w))"""
    english = page.evaluate(words)
    assert "image 1" in english and any(w.startswith("box 1: [") for w in english)
    page.click("button[data-lang=zh]")
    chinese = page.evaluate(words)
    assert len(chinese) == len(english) >= 10
    assert [w for w in chinese if not HAN.search(w)] == []
    assert "图1" in chinese and "添加框" in chinese and "1–12：组图的上限" in chinese


def test_the_presets_page_speaks_the_language_picked_in_the_playground(server, open_page):
    page = open_page(server)
    page.goto(server.base_url + "/playground/presets")
    page.wait_for_selector("body[data-ready=true]")
    marked = "() => Object.fromEntries([...document.querySelectorAll('[data-i18n]')].map(n => [n.dataset.i18n, n.textContent.trim()]))"
    english = page.evaluate(marked)
    assert english["presetsHeading"] == "Model presets" and page.get_attribute("html", "lang") == "en"
    assert "sd-turbo" in page.text_content("tbody")
    page.click("button[data-lang=zh]")
    chinese = page.evaluate(marked)
    assert chinese.keys() == english.keys() and len(chinese) >= 15
    assert [k for k, v in chinese.items() if not HAN.search(v)] == []
    assert page.title() == "wanimage 模型预设" and page.get_attribute("html", "lang") == "zh-CN"
    assert "wanimage pull sd-turbo" in page.text_content("pre")  # commands stay commands

    # one remembered choice for both pages: the playground opens in Chinese, and back
    page.click("a[data-i18n=presetsBack]")
    page.wait_for_selector("body[data-ready=true]")
    assert page.text_content("#run") == "生成"
    page.click("button[data-lang=en]")
    page.goto(server.base_url + "/playground/presets")
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate(marked) == english
