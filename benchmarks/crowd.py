"""`python -m benchmarks crowd`: one app server, a room of browser sessions at once, for a bounded time.

One `streamlit run app.py` (127.0.0.1, a fresh run cache) and one Chromium (the system's /usr/bin/chromium, never
`playwright install`) with a context per visitor (separate cookies: separate Streamlit sessions), driven at once
with Playwright's async API. Every visitor runs its own small Invert run (its own init seed, so nothing comes from
another's cache entry) and then a clarity curve; every third presses Stop during its curve and must keep the rows
finished so far; one uploads a file that is not an image and must get one plain message. The table: runs finished,
errors (exceptions and error boxes other than the bad upload's: must be 0), each visitor's longest wait for its
Invert result against the work of the others (the sum of their runs' own seconds: a wait above it would mean a
visitor was starved), the server process's peak memory, and the run cache's size.

    python -m benchmarks crowd                 # 8 visitors, at most 10 minutes
    python -m benchmarks crowd --sessions 4 --budget 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.env import cpu_name, write_section

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ITERS = 60  # each visitor's Invert budget (32 px, 2 seeds: a second or two of computing here)
RUN_S = re.compile(r"· cpu \(\d+ threads?\) · ([\d.]+) s ·")


def invert_link(i: int) -> str:
    return (f"model=resnet18&ckpt=untrained&layer=layer2&image=chelsea&seeds=2&iters={ITERS}&size=32"
            f"&preset=default&device=cpu&init_seed={100 + i}")


def curve_link(i: int, stops: bool = False) -> str:
    """A five-stop curve; the visitor who presses Stop asks for long runs (the paper's recipe, which never stops
    early), so Stop lands while stops remain."""
    budget = "iters=600&preset=paper" if stops else "iters=60&preset=default"
    return (f"model=resnet18&cks=untrained&stops=conv1,layer1,layer2,layer3,layer4&image=coffee&seeds=1&{budget}"
            f"&size=32&device=cpu&init_seed={100 + i}&batch=off")


@dataclass
class Visitor:
    """What one session did and saw."""

    index: int
    role: str  # "plain", "stops" (presses Stop in its curve) or "bad upload"
    invert_s: float | None = None  # click (or opening the link) to its result
    run_s: float | None = None  # the run's own seconds, from its settings caption
    curve_rows: int = 0
    curve_done: bool = False
    stopped: bool = False
    bad_upload_said: bool = False
    queued: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return (self.invert_s is not None) + self.curve_rows


@contextmanager
def serve(cache_dir: str):
    """`streamlit run app.py` on a free 127.0.0.1 port with the run cache in `cache_dir`; yields (url, pid)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile("w+")
    env = {**os.environ, "INVERSION_CACHE_DIR": cache_dir, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"streamlit did not start:\n{log.read()[-3000:]}") from None
                time.sleep(0.5)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (Linux: VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _idle(page, timeout_ms: int = 120_000) -> None:
    await page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=timeout_ms)


async def _problems(page, expected: str | None = None) -> list[str]:
    out = [f"exception: {t[:200]}" for t in await page.locator('[data-testid="stException"]').all_inner_texts()]
    for t in await page.locator('[data-testid="stAlertContentError"]').all_inner_texts():
        if expected is None or expected not in t:
            out.append(f"error: {t[:200]}")
    return out


async def visitor(browser, url: str, v: Visitor, deadline: float) -> Visitor:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await ctx.new_page()
    done = re.compile(rf"· (?:{ITERS} steps|\d+ of {ITERS} steps \(converged early\)) ·")
    try:
        t0 = time.perf_counter()
        await page.goto(f"{url}/?{invert_link(v.index)}", timeout=90_000)
        pressed = False
        while time.time() < deadline:
            if await page.get_by_text("in the queue").count():
                v.queued = True
            if await page.get_by_text(done).count():
                v.invert_s = time.perf_counter() - t0
                break
            run = page.get_by_role("button", name="Run", exact=True)
            if not pressed and await page.get_by_text("takes longer than a few seconds").count():
                t0 = time.perf_counter()
                await run.click()
                pressed = True
            await asyncio.sleep(0.2)
        await _idle(page)
        caption = " ".join(await page.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
        m = RUN_S.search(caption)
        v.run_s = float(m.group(1)) if m else None
        v.errors += await _problems(page)
        if v.role == "bad upload":
            await page.get_by_text("upload…", exact=True).first.click()
            await _idle(page)
            await page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
                files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"these are notes, not an image"}])
            said: list[str] = []
            for _ in range(150):  # the page's message once the rerun with the file has drawn it
                said = await page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
                if any("notes.png" in t for t in said):
                    break
                await asyncio.sleep(0.2)
            await _idle(page)
            v.bad_upload_said = any("notes.png" in t and "\n" not in t.strip() for t in said)
            v.errors += await _problems(page, expected="notes.png")
        await page.goto(f"{url}/curve?{curve_link(v.index, stops=v.role == 'stops')}", timeout=90_000)
        await page.get_by_role("button", name="Run curve").wait_for(timeout=90_000)
        await _idle(page)
        await page.get_by_role("button", name="Run curve").click()
        if v.role == "stops":  # Stop once the second stop runs (its first is kept)
            while time.time() < deadline and not v.stopped:
                if await page.get_by_text(re.compile(r"\([2-5] of 5\)")).count():
                    await page.get_by_role("button", name="Stop").click()
                    v.stopped = True
                elif await page.get_by_text(re.compile(r"Done: \d+ of 5 runs")).count():
                    break
                await asyncio.sleep(0.2)
            if not v.stopped:
                said = await page.locator('[data-testid="stAlert"]').all_inner_texts()
                v.errors.append(f"no Stop: the curve never reached its second stop in time (the page said: "
                                f"{' | '.join(t[:120] for t in said) or 'nothing'})")
            await _idle(page)
        else:
            while time.time() < deadline and not await page.get_by_text(re.compile(r"Done: \d+ of 5 runs")).count():
                await asyncio.sleep(0.3)
            v.curve_done = bool(await page.get_by_text(re.compile(r"Done: \d+ of 5 runs")).count())
            if not v.curve_done:
                v.errors.append("the curve did not finish in the time given")
            await _idle(page)
        count = ("() => Math.max(0, ...Array.from(document.querySelectorAll('.js-plotly-plot'))"
                 ".map(p => (p.data || []).filter(t => t.mode && t.mode.includes('markers'))"
                 ".reduce((n, t) => n + (t.x || []).length, 0)))")
        for _ in range(75):  # the chart of the kept rows, once drawn
            v.curve_rows = await page.evaluate(count)
            if v.curve_rows:
                break
            await asyncio.sleep(0.2)
        v.errors += await _problems(page)
    except Exception as exc:  # noqa: BLE001 - the table counts it as this visitor's error
        v.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        if os.environ.get("CROWD_SHOTS"):  # what the page showed, for whoever looks into it
            try:
                await page.screenshot(path=f"{os.environ['CROWD_SHOTS']}/crowd_visitor_{v.index}.png", full_page=True)
            except Exception:  # noqa: BLE001
                pass
    finally:
        await ctx.close()
    return v


async def crowd(url: str, sessions: int, budget_s: float) -> tuple[list[Visitor], float, Visitor]:
    """A lone visitor first (the server warm, and the page's own time with nobody else: the baseline of a wait),
    then the room at once."""
    from playwright.async_api import async_playwright

    roles = ["bad upload" if i == 0 else "stops" if i % 3 == 1 else "plain" for i in range(sessions)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            alone = await visitor(browser, url, Visitor(sessions, "alone"), time.time() + budget_s)
            deadline = time.time() + budget_s
            t0 = time.perf_counter()
            out = await asyncio.gather(*(visitor(browser, url, Visitor(i, r), deadline) for i, r in enumerate(roles)))
            return list(out), time.perf_counter() - t0, alone
        finally:
            await browser.close()


def table(visitors: list[Visitor], wall: float, peak_mb: float | None, cache_mb: float,
          alone: Visitor | None = None) -> str:
    """The benchmark's table: a line per visitor, then the totals. A visitor's wait is its Invert result's time
    less its own run and less a lone visitor's page time beyond its run (loading, the estimate): what the
    others' work cost it, to be set against the sum of the others' runs."""
    base = 0.0 if alone is None or alone.invert_s is None else max(0.0, alone.invert_s - (alone.run_s or 0))
    lines = ["| visitor | role | Invert result (s) | its run (s) | the others' runs (s) | curve points | queued "
             "| errors |",
             "|---|---|---|---|---|---|---|---|"]
    total_run = sum(v.run_s or 0 for v in visitors)
    worst = None
    for v in visitors:
        others = total_run - (v.run_s or 0)
        wait = None if v.invert_s is None else max(0.0, v.invert_s - (v.run_s or 0) - base)
        if wait is not None and (worst is None or wait > worst[0]):
            worst = (wait, others)
        lines.append(f"| {v.index} | {v.role} | {'-' if v.invert_s is None else f'{v.invert_s:.1f}'} | "
                     f"{'-' if v.run_s is None else f'{v.run_s:.1f}'} | {others:.1f} | {v.curve_rows}"
                     f"{' (stopped)' if v.stopped else ''} | {'yes' if v.queued else 'no'} | {len(v.errors)} |")
    runs = sum(v.runs for v in visitors)
    errors = sum(len(v.errors) for v in visitors)
    lines += [f"visitor {v.index}: {e}" for v in visitors for e in v.errors]
    lines += [f"visitor {v.index}: the bad upload got no one-line message naming the file" for v in visitors
              if v.role == "bad upload" and not v.bad_upload_said]
    lines += ["", f"runs finished: {runs}; errors: {errors}; wall {wall:.0f} s",
              f"a lone visitor: Invert result in "
              f"{'-' if alone is None or alone.invert_s is None else f'{alone.invert_s:.1f}'} s, {base:.1f} s of it "
              "beyond its run (page, model, estimate)",
              "longest wait the others caused (result - own run - the lone visitor's page time): "
              + ("-" if worst is None else f"{worst[0]:.1f} s, against {worst[1]:.1f} s of the others' runs"),
              f"server peak memory: {'-' if peak_mb is None else f'{peak_mb:.0f} MB'}; run cache: {cache_mb:.1f} MB"]
    return "\n".join(lines)


def run(sessions: int = 8, budget_s: float = 600.0) -> dict:
    """Serve the app, run the crowd, and return the visitors, the wall time, peak memory and the cache's size."""
    from core.jobs import RunCache

    with tempfile.TemporaryDirectory() as cache_dir:
        with serve(cache_dir) as (url, pid):
            visitors, wall, alone = asyncio.run(crowd(url, sessions, budget_s))
            peak = peak_rss_mb(pid)
        cache_mb = RunCache(cache_dir).size() / 2**20
    return {"visitors": visitors, "wall": wall, "peak_mb": peak, "cache_mb": cache_mb, "alone": alone}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks crowd", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=8, help="browser sessions at once (default 8)")
    p.add_argument("--budget", type=float, default=600.0, help="seconds the crowd may take at most (default 600)")
    p.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md (its crowd section)")
    a = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: the crowd needs Chromium at {CHROMIUM} (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    out = run(a.sessions, a.budget)
    head = (f"{a.sessions} browser sessions against one server on this machine ({cpu_name()}, {os.cpu_count()} CPUs, "
            f"CPU only; load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; the server, Chromium and the "
            "runs share the CPUs):")
    text = table(out["visitors"], out["wall"], out["peak_mb"], out["cache_mb"], out["alone"])
    print(head)
    print(text)
    if a.write:
        write_section(ROOT / "BENCHMARKS.md", "crowd", "## A room of visitors (`python -m benchmarks crowd`)\n\n"
                      f"{head}\n\n{text}\n\n\"The others' runs\" counts their Invert runs only; while a visitor waits, "
                      "the others' curves, their estimates' probe steps and eight Chromium pages share the same two "
                      "cores, so a wait can exceed it without any visitor being starved of its queue turn.\n")
    return 0 if not any(v.errors for v in [*out["visitors"], out["alone"]]) else 1
