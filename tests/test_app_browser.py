"""End to end in a real browser: `streamlit run app.py`, Debian's Chromium driven by Playwright.

Never `playwright install`: the test uses the system's /usr/bin/chromium. Without it the test
skips, unless REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser  # drives Debian's Chromium

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
OUT = ROOT / "tests" / "_output"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
TINY = "model=resnet18&ckpt=untrained&layer=layer1&image=chelsea&seeds=2&iters=20&size=32&preset=default&device=cpu"


def result_steps(iters: int) -> re.Pattern:
    """The finished result's caption for a run with a budget of `iters`: "· 30 steps ·", or fewer steps when the
    convergence rule ended it early, "· 120 of 121 steps (converged early) ·" (ui.common.steps_text). Only a result
    of this budget matches: not the live progress ("step 20 of 30"), not an earlier result with another budget."""
    return re.compile(rf"· (?:{iters} steps|(\d+) of {iters} steps \(converged early\)) ·")


def steps_done(caption: str, iters: int) -> int:
    """The steps the shown result ran, from its caption; at most the budget, fewer only when it converged."""
    m = result_steps(iters).search(caption)
    assert m, caption
    n = int(m.group(1) or iters)
    assert 1 <= n <= iters, caption
    return n


def _need_browser():
    required = os.environ.get("REQUIRE_BROWSER") == "1"
    problem = None
    if not os.path.exists(CHROMIUM):
        problem = f"{CHROMIUM} not found"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed"
    if problem:
        if required:
            pytest.fail(f"REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    port = free_port()
    env = {**os.environ, "INVERSION_CACHE_DIR": str(tmp_path_factory.mktemp("runcache"))}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_idle(page, timeout=120_000):
    """Until Streamlit's 'Running…' indicator is gone."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout)


def test_run_in_a_real_browser(server):
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{server}/?{TINY}", timeout=60_000)
            # the tiny linked configuration is shown finished without a click
            page.get_by_text("Reading:").first.wait_for(timeout=120_000)
            wait_idle(page)
            # choose a setting of our own and press Run
            box = page.get_by_role("spinbutton", name="Iterations")
            box.fill("30")
            box.press("Enter")
            wait_idle(page)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Run", exact=True).click()
            done = page.get_by_text(result_steps(30)).first
            done.wait_for(timeout=120_000)
            seconds = time.perf_counter() - t0
            wait_idle(page)
            steps_done(done.inner_text(), 30)
            captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
            seeds = [c for c in captions if c.startswith("seed") and "SSIM" in c]
            assert len(seeds) == 2, captions
            assert any(c.startswith("original") for c in captions)
            imgs = page.locator('[data-testid="stImage"] img')
            assert imgs.count() >= 3
            assert all(imgs.nth(i).evaluate("e => e.complete && e.naturalWidth > 0") for i in range(imgs.count()))
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(OUT / "browser_invert.png"), full_page=True)
            print(f"click Run -> final images: {seconds:.1f} s")
        finally:
            browser.close()


def test_stop_keeps_what_was_computed(server):
    from playwright.sync_api import sync_playwright

    # the paper preset has no early stop: the default converges here in ~120 steps (well under a second),
    # before the Stop button could be pressed
    long = (TINY.replace("iters=20", "iters=3000").replace("layer=layer1", "layer=layer2")
            .replace("preset=default", "preset=paper"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{server}/?{long}", timeout=60_000)
            page.get_by_role("button", name="Run", exact=True).wait_for(timeout=120_000)
            wait_idle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text(re.compile(r"step \d+ of 3000")).first.wait_for(timeout=120_000)  # live progress
            page.wait_for_timeout(1500)
            page.get_by_role("button", name="Stop", exact=True).click()
            stopped = page.get_by_text(re.compile(r"Stopped at step \d+ of 3000")).first
            stopped.wait_for(timeout=60_000)
            wait_idle(page)
            at = int(re.search(r"step (\d+) of", stopped.inner_text()).group(1))
            assert 0 < at < 3000, stopped.inner_text()
            captions = page.locator('[data-testid="stImageCaption"]').all_inner_texts()
            assert len([c for c in captions if c.startswith("seed") and "SSIM" in c]) == 2, captions
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(OUT / "browser_stopped.png"), full_page=True)
        finally:
            browser.close()


def _boxes(page, selector: str) -> list[dict]:
    return page.evaluate(f"""() => Array.from(document.querySelectorAll('{selector}')).map(e => {{
        const r = e.getBoundingClientRect();
        return {{x: r.x, y: r.y, w: r.width, h: r.height, text: e.innerText}}; }})""")


@pytest.mark.parametrize("width,height", [(1280, 720), (1920, 1080)])
def test_presentation_mode_uses_the_screen(server, width, height):
    """?mode=present: the original and every seed, with their numbers, inside the first screen (a 1280x720
    projector and a 1920x1080 screen), and as large as it allows: the line of images spans at least 90% of the
    width, or the images reach at least 90% of the height (before, they stayed 256 px and left most of a large
    screen empty)."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    link = TINY.replace("seeds=2", "seeds=4") + "&mode=present"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"{server}/?{link}", timeout=60_000)
            page.get_by_text("Reading:").first.wait_for(timeout=120_000)
            wait_idle(page)
            page.wait_for_function(  # the result's five cells drawn (a rerun after the run redraws them) and loaded
                "() => Array.from(document.querySelectorAll('[data-testid=\"stImageContainer\"]'))"
                ".filter(e => /^(original|seed )/.test(e.innerText)).length === 5 && Array.from(document"
                ".querySelectorAll('[data-testid=\"stImage\"] img')).every(e => e.complete && e.naturalWidth > 0)",
                timeout=60_000)
            page.wait_for_timeout(500)
            cells = [b for b in _boxes(page, '[data-testid="stImageContainer"]')
                     if b["text"].startswith("original") or b["text"].startswith("seed ")]
            assert [b["text"].split(" ·")[0].strip() for b in cells] == ["original", "seed 0", "seed 1", "seed 2",
                                                                         "seed 3"], cells
            for b in cells:
                assert b["x"] >= 0 and b["y"] >= 0, b
                assert b["x"] + b["w"] <= width and b["y"] + b["h"] <= height, b  # image and caption on screen
            span = max(b["x"] + b["w"] for b in cells) - min(b["x"] for b in cells)
            assert span >= 0.9 * width or max(b["y"] + b["h"] for b in cells) >= 0.9 * height, cells
            assert all("clarity" in b["text"] for b in cells[1:])
            assert page.get_by_text(re.compile(r"clarity \d\.\d\d · pixel \d\.\d\d · structure")).count() == 1
            sidebar = _boxes(page, '[data-testid="stSidebar"]')
            assert not sidebar or sidebar[0]["x"] + sidebar[0]["w"] <= 1  # collapsed
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(OUT / f"browser_present_{width}x{height}.png"))
        finally:
            browser.close()


def _cells(page) -> list[dict]:
    return [b for b in _boxes(page, '[data-testid="stImageContainer"]')
            if b["text"].startswith("original") or b["text"].startswith("seed ")]


def test_invert_keeps_its_images_on_the_first_1280x720_screen(server):
    """Normal mode at 1280x720: the first visit's side-by-side example (original, both rows of seeds, captions)
    and a run's live images are inside the first viewport, without scrolling."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{server}/", timeout=60_000)
            page.get_by_text("Reading, untrained").first.wait_for(timeout=180_000)
            wait_idle(page)
            page.wait_for_timeout(500)
            cells = _cells(page)
            assert [b["text"].split(" ·")[0].strip() for b in cells] == ["original", "seed 0", "seed 1", "seed 0",
                                                                         "seed 1"], cells
            for b in cells:
                assert b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["w"] <= 1280 and b["y"] + b["h"] <= 720, b
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(OUT / "browser_invert_first_visit_1280x720.png"))
            # during a run: a longer one of the same link, its live images in view while it runs
            # (the paper preset: no early stop, so the run is still going when Stop is pressed; the default
            # recipe converges at this layer in ~120 steps, and Stop is rightly disabled once it is done)
            page.goto(f"{server}/?{TINY.replace('iters=20', 'iters=3000').replace('preset=default', 'preset=paper')}",
                      timeout=60_000)
            page.get_by_role("button", name="Run", exact=True).wait_for(timeout=120_000)
            wait_idle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            page.get_by_text(re.compile(r"step \d+ of 3000")).first.wait_for(timeout=120_000)
            page.wait_for_timeout(1500)
            live = [b for b in _cells(page) if "step" in b["text"]]
            assert live, "the live images are shown"
            for b in live:
                assert b["y"] >= 0 and b["y"] + b["h"] <= 720, b
            page.screenshot(path=str(OUT / "browser_invert_running_1280x720.png"))
            page.get_by_role("button", name="Stop", exact=True).click()
        finally:
            browser.close()


@pytest.mark.parametrize("path,title", [("/", "Invert a layer"), ("/curve", "Clarity curve"),
                                        ("/nonunique", "Non-uniqueness"), ("/lab", "Invertibility lab"),
                                        ("/manifold", "Manifold"), ("/compare", "Compare models"),
                                        ("/sweeps", "Sweeps"), ("/findings", "Findings"),
                                        ("/about", "About this explorer")])
def test_every_page_opens_by_its_direct_url(server, path, title):
    """Each page opens by its URL without an error, and asks no host but the app's own (an offline laptop or a
    conference network reaches nothing else: no web font, no icon from a CDN)."""
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            hosts = set()
            page.on("request", lambda r: hosts.add(urllib.parse.urlsplit(r.url).hostname))
            page.goto(f"{server}{path}", timeout=60_000)
            page.get_by_role("heading", name=re.compile(title)).first.wait_for(timeout=120_000)
            wait_idle(page)
            assert hosts - {"127.0.0.1", None} == set(), hosts  # data: and blob: URLs have no host
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.locator('[data-testid="stAlertContentError"]').count() == 0
            page.screenshot(path=str(OUT / f"browser_page{path.replace('/', '_') or '_'}_1280x720.png"))
        finally:
            browser.close()
