"""Running on a page: the live view that draws a run, and the time estimate before it.

What runs, and the rules of Stop, Finish and Continue, are `core.jobs.LiveRun`'s: a page keeps one in its
session state (`held`), so a rerun (the Stop button, a changed widget, another page) keeps what it computed.
A Continue is the shown run's spec continued (`RunSpec.then`), kept in the link as `cont=`, so the link
reproduces the continued result.
"""

from __future__ import annotations

import json
import logging
from typing import Callable

import streamlit as st

from core import DivergenceError
from core.devices import describe, is_oom, resolve_device
from core.engine import InversionResult
from core.images import upscale
from core.jobs import (Callbacks, Countdown, LiveRow, LiveRun, calibrated, default_cache, human, measure, queue_for,
                       snapshot_every, suggest_cheaper)
from core.report import trajectory_figure
from ui.state import Field, PageState, join

log = logging.getLogger("inversion.app")
AUTO_RUN_S = 5.0  # a first visit or a link runs by itself only when cached or at most this long


@st.cache_resource
def disk_cache():
    """The run cache, with the shipped first example as a read-only fallback (see ui/make_example.py)."""
    return default_cache()


@st.cache_data(show_spinner=False, max_entries=128)
def _from_disk(key: str) -> InversionResult:
    result = disk_cache().get(key)
    if result is None:
        raise LookupError(key)  # exceptions are not cached: a later run can still fill this key
    return result


def cached(spec) -> InversionResult | None:
    """The finished result of `spec` from the cache, or None; never computes."""
    if spec is None:
        return None
    try:
        return _from_disk(spec.key())
    except LookupError:
        return None


def waiting_text(position: int, waiting: int, ahead=None) -> str:
    """"The device is busy…": the place in the queue and, when the runs ahead gave estimates, how long they take."""
    wait = ""
    if ahead is not None and ahead.runs > ahead.unknown:
        wait = (f" The {ahead.runs} run{'s' if ahead.runs != 1 else ''} before yours take {human(ahead.wait_s)} more "
                "by their estimates" + (f" ({ahead.unknown} without one)" if ahead.unknown else "") + ".")
    return (f"The device is busy with another run: you are number {position} of {waiting} in the queue.{wait} "
            "Your run starts by itself.")


class LiveView:
    """Placeholders that a running inversion refreshes: queue/progress, images, m_g/m_i chart.

    A long run greys the previous result out (`faded`) so no stale numbers read as the new ones."""

    def __init__(self, seeds, show_images=True, show_chart=True, container=None, size: int = 128, estimate=None,
                 label: str | None = None):
        box = container or st.container()
        self.head = box.empty()  # which run this is (a pair's "Row 2 of 2: trained"), kept while it runs
        if label:
            self.head.markdown(label)
        self.seeds, self.size = list(seeds), size
        self.place = (1, 1)  # the queue place `waiting` was last told
        # the pace of the steps done so far, the estimate's step time standing for it over the first steps
        self.countdown = Countdown(step_s=estimate.step_s if estimate else None,
                                   finish_s=estimate.finish_s if estimate else 0.0)
        self.status = box.empty()
        self.bar = box.empty()
        self.images = box.empty() if show_images else None
        self.chart = box.empty() if show_chart else None
        self.steps, self.mg, self.mi = [], [], []

    def waiting(self, position: int, waiting: int):
        self.place = (position, waiting)
        self.status.info(waiting_text(position, waiting))

    def ahead(self, ahead):  # called after `waiting` on every poll: the same line with the runs' estimated time
        self.status.info(waiting_text(*self.place, ahead))

    def note(self, text: str):
        st.warning(text)

    def left(self, snap) -> str:
        """" · about 12 s left": the time the steps still to do take at the pace of the steps done so far."""
        secs = self.countdown(snap.seconds, snap.step, snap.total)
        return "" if secs is None else f" · {human(secs).replace('under a second', 'a second')} left"

    def progress(self, snap):
        """Only the progress bar (a batch of a split run: its snapshots hold some of the seeds)."""
        self.status.empty()
        self.bar.progress(min(1.0, snap.step / snap.total), text=f"step {snap.step} of {snap.total} · "
                                                                 f"{snap.seconds:.1f} s{self.left(snap)}")

    def update(self, snap):
        self.status.empty()
        self.steps.append(snap.step)
        self.mg.append(snap.embedding_l2)
        self.mi.append(snap.input_l2)
        mg = sum(snap.embedding_l2) / len(snap.embedding_l2)
        self.bar.progress(min(1.0, snap.step / snap.total), text=f"step {snap.step} of {snap.total} · "
                                                                 f"mean m_g {mg:.3g} · {snap.seconds:.1f} s"
                                                                 f"{self.left(snap)}")
        if self.images is not None:
            self.images.image([upscale(im, self.size) for im in snap.images], width=self.size,
                              caption=[f"seed {s} · step {snap.step}" for s in self.seeds])
        if self.chart is not None and len(self.steps) > 1:
            hist = {"step": self.steps, "embedding_l2": list(map(list, zip(*self.mg))),
                    "input_l2": list(map(list, zip(*self.mi)))}
            self.chart.plotly_chart(trajectory_figure(hist, self.seeds, height=260), width="stretch")

    def clear(self):
        for ph in (self.head, self.status, self.bar, self.images, self.chart):
            if ph is not None:
                ph.empty()


@st.cache_data(show_spinner="Measuring a few steps to estimate the time…", max_entries=64, ttl=60)
def _estimate(key: str, layer: str, size: int, seeds: int, preset_json: str, device: str, _model):
    from core import get_preset

    preset = get_preset("default").replace(**json.loads(preset_json))
    # the live view draws a snapshot every `snapshot_every` steps (about 50 ms each here: images and chart)
    return measure(_model, layer, size, seeds, preset, device, every=snapshot_every(None, preset.iters),
                   snapshot_s=SNAPSHOT_S)


SNAPSHOT_S = 0.05  # what drawing one live snapshot costs the page (images + m_g/m_i chart), measured at 40-60 ms


def estimate(pick, box, runs: int = 1):
    """Measure a few real steps of the pick's run (again after a minute: the load changes) and show the time it
    will take (at most: early stop may end sooner), for `runs` such runs (a side-by-side pair: 2) and the runs
    queued ahead on the device; returns the one run's Estimate, or None (out of memory, or it failed)."""
    spec = pick.spec
    try:
        est = _estimate(spec.key(), spec.layer, spec.size, len(spec.seeds), json.dumps(spec.preset.to_dict()),
                        pick.device, pick.model)
    except RuntimeError as exc:
        if not is_oom(exc):
            raise
        box.info(f"Out of memory measuring {len(spec.seeds)} seeds at once on {describe(resolve_device(pick.device))}"
                 ": Run splits them into smaller batches by itself.")
        return None
    where = describe(resolve_device(pick.device))
    est = calibrated(est, pick.device)  # the recent runs' real time against their estimates on this device
    if spec.continued:  # the run it continues is computed again first, unless still in memory
        est = est.scaled(iters=spec.steps)
    early = " at most (early stop may end it sooner)" if spec.preset.early_stop else ""
    both = f" for the {runs} rows" if runs > 1 else ""
    ahead = queue_for(str(resolve_device(pick.device))).ahead()
    queue_note = ""
    if ahead.runs:
        known = ahead.runs > ahead.unknown
        queue_note = (f", after the {ahead.runs} run{'s' if ahead.runs > 1 else ''} already on the device"
                      + (f" ({human(ahead.wait_s)} more)" if known else ""))
    box.caption(f"Estimated on {where} now: **{human(est.seconds * runs)}**{both}{early}{queue_note}; "
                f"{est.step_s * 1000:.0f} ms per step, measured.")
    return est


def cheaper_offer(pick, est, sizes, box, page: PageState, min_size: int):
    """When the run would take minutes, one click that runs a setting that fits about 20 s: it sets the page's size,
    seeds and iterations and asks the next script run to start (`offer_taken`)."""
    slow = 60 if resolve_device(pick.device).type == "cpu" else 120
    if est is None or est.seconds <= slow:
        return
    cheaper = suggest_cheaper(est, pick.size, len(pick.seeds), pick.preset.iters, budget_s=20, min_size=min_size)
    box.warning(f"These settings take up to {human(est.seconds)} here.")
    if cheaper and cheaper["size"] in sizes:
        def apply(values):
            for k, v in values.items():
                page[k] = v
            page["offer_taken"] = True

        box.button(f"Run at {cheaper['size']} px, {cheaper['seeds']} seeds, {cheaper['iters']} iterations "
                   f"({human(cheaper['seconds'])})", key=page.key("cheaper"), on_click=apply,
                   args=({k: cheaper[k] for k in ("size", "seeds", "iters")},))


def offer_taken(page: PageState) -> bool:
    """Whether the cheaper setting (`cheaper_offer`) was just chosen: then the page runs it at once."""
    return bool(page.pop("offer_taken", False))


def stream(make_rows: Callable, seeds, total: int, view: dict, box, figure: Callable) -> None:
    """Show rows as they finish, for every page that runs many stops (Clarity curve, Compare models): an overall
    bar, the running stop's progress and queue place, and the chart so far; rows are appended to `view["rows"]`,
    so Stopping (a rerun) keeps every finished one.

    Args:
        make_rows: `make_rows(callbacks)` -> the rows' iterator (`core.studies.curve.iter_curve`,
            `core.studies.compare.iter_compare`), given the hooks (`Callbacks`, `stop` included) that draw the progress.
        seeds, total: the runs' seeds, and how many rows will come.
        view: the page's kept view; `figure(rows as JSON)` draws the chart so far.
    """
    overall = box.empty()  # a progress bar while it runs, one caption line once done (the chart stays in view)
    overall.progress(0.0, text="starting…")
    step_view = LiveView(seeds, show_images=False, show_chart=False, container=box)
    partial = box.empty()

    def on_stop(done, total_, name, layer):
        if layer:
            overall.progress(done / total_, text=f"{name} · {layer} ({done + 1} of {total_})")

    cb = Callbacks(snapshot=step_view.progress, progress=step_view.progress, note=st.warning,
                   wait=step_view.waiting, next_run=on_stop)
    for row in make_rows(cb):
        view["rows"].append(row)
        partial.plotly_chart(figure([r.to_json() for r in view["rows"]]), width="stretch")
    step_view.clear()
    partial.empty()
    hits = sum(r.cached for r in view["rows"])
    overall.caption(f"Done: {len(view['rows'])} of {total} runs" + (f" ({hits} from the cache)" if hits else "") + ".")


def run_curve(arch: str, image, models_: list, checkpoints: list[str], nodes: list[str], seeds, preset, device,
              view: dict, box, batch_stops: str = "auto") -> None:
    """Run (or read from the cache) every (checkpoint, stop) through `core.studies.curve.iter_curve`, shown by `stream`.
    With `batch_stops` on, a checkpoint's rows arrive together and Stop keeps every finished checkpoint."""
    from core.report import curve_figure
    from core.studies import iter_curve

    stream(lambda cb: iter_curve(arch, image, checkpoints, nodes, seeds=seeds, preset=preset, device=device,
                                 models=models_, cache=disk_cache(), callbacks=cb, batch_stops=batch_stops),
           seeds, len(nodes) * len(checkpoints), view, box,
           lambda rows: curve_figure(rows, "clarity", "clarity so far"))


def curve_cached(models_: list, checkpoints: list[str], nodes: list[str], image, seeds, preset, device) -> bool:
    """Whether every run of this curve is in the cache (then a link shows it at once)."""
    from core.jobs import RunSpec

    try:
        return all(cached(RunSpec.of(m, n, image, seeds, preset, device, checkpoint=ck)) is not None
                   for ck, m in zip(checkpoints, models_) for n in nodes)
    except Exception:  # noqa: BLE001 - a bad node is reported when the curve runs
        return False


def held(page: PageState) -> LiveRun:
    """The page's one `LiveRun` (made on first use). A run interrupted on the previous script run (Stop, a changed
    widget, another page) is salvaged here: its rows show what was computed, and the page's continuation setting
    (`CONT`) follows the run it shows (a Continue may have been computing the run it goes on from again)."""
    lr = page.get("live")
    if lr is None:
        lr = page["live"] = LiveRun()
    if lr.salvage() and CONT in page.fields:
        page["cont"] = list(lr.spec.continued)
    return lr


def start(pick, page: PageState, box, present: bool = False, more: int = 0, meta: dict | None = None,
          estimate=None):
    """Run the page's pick in `box` (with a side-by-side checkpoint, `pick.vs_spec` after it, in one queue slot), or
    with `more` > 0 go on with the shown rows: finish what was stopped, else continue every row by `more` steps.
    The page's `LiveRun` (`held`) keeps the rows; the link's continuation (`page["cont"]`) follows the shown run.

    Args:
        pick: the page's `ui.pickers.Pick`.
        box: where the live views draw.
        meta: what the page needs to show the result again (kept as the LiveRun's `meta`; the image's name is added).
        estimate: one run's measured `Estimate` (`estimate`): its thread count, the countdown, the queue's wait.

    Returns:
        The spec of the first row that ran, or None when nothing finished (the message is shown)."""
    from ui.errors import errors
    from ui.views import PAIR_PRESENT_PX, PAIR_PX, PRESENT_PX, run_row

    lr = held(page)
    if (meta or {}).get("note"):
        box.caption(meta["note"])
    rows = [LiveRow(pick.spec, pick.model, pick.ck_display)]
    if pick.vs_spec is not None:
        rows.append(LiveRow(pick.vs_spec, pick.vs_model, pick.vs_display))
    planned = lr.plan(rows, more)
    n = len(planned)
    if any(r.result is None and cached(r.spec) is None for r in planned):  # it computes: the operator's limits
        from ui.limits import refusal

        refused = refusal(None if more or estimate is None else estimate.seconds * n, pick.device)
        if refused:
            box.error(refused)
            return None
    px = (PAIR_PRESENT_PX if present else PAIR_PX) if n > 1 else (PRESENT_PX if present else 128)
    waiting = box.empty()
    done_slot = box.empty()
    place = [(1, 1)]
    views: list[LiveView] = []

    def on_wait(pos, total):
        place[0] = (pos, total)
        waiting.info(waiting_text(pos, total))

    def callbacks(i, row):
        waiting.empty()
        view = LiveView(pick.seeds, container=box, size=px, estimate=None if more else estimate,
                        label=f"Row {i + 1} of {n}: **{row.label}**" if n > 1 else None)
        views.append(view)
        return Callbacks(snapshot=view.update, progress=view.progress, note=view.note, wait=view.waiting,
                         ahead=view.ahead)

    def on_row(i, row, job):
        for view in views:
            view.clear()
        if i == 0 and n > 1:  # the first row stays in view while the second runs
            with done_slot.container():
                run_row(row.result, row.label, True, px)

    jobs = None
    with box, errors("run: "):
        try:
            jobs = lr.go(pick.image, rows, more=more, meta={**(meta or {}), "image_name": pick.image_name},
                         cache=disk_cache(), callbacks=callbacks, on_row=on_row, estimate=estimate,
                         waiting=Callbacks(wait=on_wait, ahead=lambda a: waiting.info(waiting_text(*place[0], a))))
        except DivergenceError as exc:
            st.error(str(exc))
            if exc.last_snapshot is not None:
                st.image([upscale(im) for im in exc.last_snapshot.images],
                         caption=[f"seed {s}, last finite step {exc.last_snapshot.step}" for s in lr.plan(rows)[0].spec.seeds])
        finally:
            for ph in [waiting, done_slot] + views:
                (ph.clear if isinstance(ph, LiveView) else ph.empty)()
    if jobs is None:
        return None
    if CONT in page.fields:
        page["cont"] = list(lr.spec.continued)
    return lr.spec


class Notices:
    """A page's notices box that remembers what it said, so the rerun that follows a run (`carry`) shows the same
    corrections of the link (an ignored value, a checkpoint fallback) instead of dropping them silently."""

    def __init__(self, box, page: PageState):
        self.box, self.page, self.said = box, page, []
        for kind, text in page.pop("carried_notes", None) or []:
            self._say(kind, text)

    def _say(self, kind: str, text: str):
        if (kind, text) not in self.said:
            self.said.append((kind, text))
            getattr(self.box, kind)(text)

    def warning(self, text: str):
        self._say("warning", text)

    def error(self, text: str):
        self._say("error", text)

    def info(self, text: str):
        self._say("info", text)

    def carry(self):
        """Keep what was said for the next rerun of this page."""
        self.page["carried_notes"] = list(self.said)


def _steps_list(raw: str) -> list[int]:
    out = [int(x) for x in raw.split(",") if x.strip()]
    if len(out) > 20 or any(not 1 <= x <= 5000 for x in out):
        raise ValueError(raw)
    return out


# The Invert page's continuation of its run: the steps of each Continue, in the link as `cont=100,50`.
CONT = Field("cont", [], _steps_list, join)


def continuation(page: PageState, pick) -> None:
    """Put the page's continuation (`CONT`, from the link or a Continue) on `pick.spec`; drop it once any other
    setting has changed, since it continued another run."""
    if pick.spec is None:
        return
    base = pick.spec.key()
    if st.session_state.setdefault(page.key("cont_base"), base) != base:
        page["cont"] = []
        page["cont_base"] = base
    steps = page.get("cont") or []
    if steps:
        pick.spec = pick.spec.replace(continued=tuple(int(x) for x in steps))
