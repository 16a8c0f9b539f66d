"""Shared device under load: one `streamlit run app.py`, four browser sessions at once.

One Chromium (the system's /usr/bin/chromium, never `playwright install`), four contexts (separate
cookies, so four Streamlit sessions), driven concurrently with Playwright's async API. Each opens a
link with its own tiny configuration; the page runs it by itself on a first visit when its measured
estimate is a few seconds, and otherwise asks for Run, which the session then presses, as a user would
(on a slow machine, with three other runs on the CPU, the estimate can pass the limit). The runs share
the CPU queue. Skips without Chromium unless REQUIRE_BROWSER=1, like tests/test_app_browser.py.
Prints the wall time of one session alone and of the four together (no timed assertion).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from test_app_browser import ARGS, CHROMIUM, OUT, result_steps, server, steps_done  # noqa: F401  (the server fixture)

pytestmark = pytest.mark.browser  # drives Debian's Chromium


LOADED = """e => (e.complete && e.naturalWidth > 0) || new Promise(done => {
    e.addEventListener("load", () => done(e.naturalWidth > 0));
    e.addEventListener("error", () => done(false));
    setTimeout(() => done(e.complete && e.naturalWidth > 0), 15000);
})"""


def link(iters: int) -> str:
    return (f"model=resnet18&ckpt=untrained&layer=layer2&image=chelsea&seeds=2&iters={iters}&size=32"
            f"&preset=default&device=cpu")


async def one_session(browser, url: str, iters: int, shot: str | None = None) -> dict:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1200})
    page = await ctx.new_page()
    t0 = time.perf_counter()
    queued, pressed = [], False
    try:
        await page.goto(f"{url}/?{link(iters)}", timeout=60_000)
        deadline = t0 + 240
        while time.perf_counter() < deadline:
            queued += await page.get_by_text("in the queue").all_inner_texts()  # never waits: it may just have gone
            if await page.get_by_text(result_steps(iters)).count():  # the result's caption: this session's run
                break
            if not pressed and await page.get_by_text("takes longer than a few seconds").count():
                await page.get_by_role("button", name="Run", exact=True).click()  # the link asks for Run
                pressed = True
            await asyncio.sleep(0.15)
        seconds = time.perf_counter() - t0
        await page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
            " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
            timeout=60_000)
        captions = []
        for _ in range(100):  # the result view may be mid-redraw right after the run: wait for its captions
            captions = await page.locator('[data-testid="stImageCaption"]').all_inner_texts()
            if sum(c.startswith("seed") and "SSIM" in c for c in captions) >= 2:
                break
            await asyncio.sleep(0.2)
        imgs = page.locator('[data-testid="stImage"] img')
        loaded = []
        for i in range(await imgs.count()):  # lazily loaded images: bring each into view, wait for it
            await imgs.nth(i).scroll_into_view_if_needed()
            loaded.append(await imgs.nth(i).evaluate(LOADED))
        errors = await page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
        exceptions = await page.locator('[data-testid="stException"]').count()
        finished = page.get_by_text(result_steps(iters))
        done = await finished.first.inner_text() if await finished.count() else None
        if shot:
            await page.screenshot(path=str(OUT / shot), full_page=True)
        return {"iters": iters, "seconds": seconds, "queued": queued, "captions": captions, "loaded": loaded,
                "errors": errors, "exceptions": exceptions, "done": done, "pressed": pressed}
    finally:
        await ctx.close()


async def scenario(url: str) -> tuple[dict, list[dict]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await one_session(browser, url, 40)  # warm-up: models, caches and thread choice, not timed
            alone = await one_session(browser, url, 120)
            t0 = time.perf_counter()
            together = await asyncio.gather(*(one_session(browser, url, 121 + i, shot="load_session.png" if i == 3
                                                          else None) for i in range(4)))
            wall = time.perf_counter() - t0
        finally:
            await browser.close()
    return alone, list(together), wall


def check(s: dict):
    assert s["done"], s
    steps_done(s["done"], s["iters"])  # all of its budget, or fewer because it converged
    assert not s["errors"] and s["exceptions"] == 0, s
    seeds = [c for c in s["captions"] if c.startswith("seed") and "SSIM" in c]
    assert len(seeds) == 2 and any(c.startswith("original") for c in s["captions"]), s["captions"]
    assert len(s["loaded"]) >= 3 and all(s["loaded"]), s


def test_four_sessions_share_the_device(server):  # noqa: F811
    OUT.mkdir(parents=True, exist_ok=True)
    alone, together, wall = asyncio.run(scenario(server))
    check(alone)
    for s in together:
        check(s)
    waited = [s for s in together if s["queued"]]
    assert waited, "no session was shown its place in the queue"
    assert all("you are number" in q for s in waited for q in s["queued"])
    each = ", ".join(f"{s['seconds']:.1f}" for s in together)
    print(f"\none session alone: {alone['seconds']:.1f} s; four at once: {wall:.1f} s wall (each {each} s); "
          f"{len(waited)} of 4 were shown their queue place: {[s['queued'][0] for s in waited]}; "
          f"{sum(s['pressed'] for s in [alone, *together])} of 5 had to press Run (estimate above the limit)")


def test_a_small_crowd_finishes_everything_without_an_error():
    """`python -m benchmarks crowd` at the size `make test` affords: four browser sessions against one server, each
    with its own Invert run and a clarity curve, one pressing Stop in its curve, one uploading a file that is not an
    image (the full room is `python -m benchmarks crowd`, 8 sessions)."""
    from test_app_browser import _need_browser

    _need_browser()
    from benchmarks.crowd import run, table

    out = run(sessions=4, budget_s=420)
    visitors = out["visitors"]
    print("\n" + table(visitors, out["wall"], out["peak_mb"], out["cache_mb"], out["alone"]))
    assert not out["alone"].errors and out["alone"].curve_rows == 5
    assert [len(v.errors) for v in visitors] == [0, 0, 0, 0], [v.errors for v in visitors]
    assert all(v.invert_s is not None and v.run_s is not None for v in visitors)
    assert [v.role for v in visitors] == ["bad upload", "stops", "plain", "plain"]
    assert visitors[0].bad_upload_said  # one plain line naming the file
    stopped = visitors[1]
    assert stopped.stopped and 1 <= stopped.curve_rows < 5  # Stop kept the finished stops, and stopped the rest
    assert all(v.curve_done and v.curve_rows == 5 for v in visitors if v.role != "stops")
    assert out["cache_mb"] > 0 and (out["peak_mb"] is None or out["peak_mb"] > 0)
