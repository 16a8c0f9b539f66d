"""The Sweeps page's parts: where results live, a small sweep with progress (and Resume after a lost Ray node),
the drill-down to images."""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
from pathlib import Path

import streamlit as st

from core import resolve_layer, trained_status
from core.images import upscale
from core.report import METRICS, summary_figure, write_sweep
from core.studies import Sweep, SweepStopped, read_results, run_sweep, summarize, sweep_time
from ui.live import disk_cache
from ui.models import get_model, stops_of
from ui.names import stem
from ui.notices import in_cache, measurer, say_time
from ui.state import PageState

log = logging.getLogger(__name__)

PAGE_LIMIT = 48  # runs a page starts itself; more belong on the command line
# The page's default sweep: untrained against trained EfficientNet-Lite0 (its trained weights ship with the
# project) at an early, a middle and a late stop, over the 4 sample images at 32 px: 24 runs (15-35 s measured on a
# 2-core CPU, minutes when other work loads it), and the curves already part (trained: abstract from mid-depth on).
DEFAULT_MODELS, DEFAULT_CHECKPOINTS = ["efficientnet_lite0"], ["untrained", "trained"]
DEFAULT_LAYERS = "conv_stem,blocks.3.0,conv_head"


def results_dir() -> Path:
    """`$INVERSION_SWEEPS_DIR`, else `runs/` in the project: where sweeps started here write, and where the
    page looks for results.parquet files."""
    env = os.environ.get("INVERSION_SWEEPS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "runs"


def found() -> list[str]:
    root = results_dir()
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("results.parquet"))


def command(models, cks, layers, size, seeds, iters, out) -> str:
    """The CLI line for these settings (a large sweep belongs there: resumable, and on Ray if need be)."""
    args = ["python", "-m", "core", "sweep", "--images", "samples", "--models", ",".join(models),
            "--checkpoints", ",".join(cks), "--layers", layers, "--size", str(size), "--seeds", str(seeds),
            "--iters", str(iters), "--out", out]
    return " ".join(shlex.quote(a) for a in args) + "  # add --backend ray [--address ADDR] for a cluster"


def left_out(models, checkpoints) -> list[str]:
    """The models whose trained checkpoint a sweep leaves out here: its weights are not on this machine (the sweep
    notes them and runs the rest)."""
    return [m for m in models if "trained" in checkpoints and not trained_status(m)["cached"]]


def count(sweep: Sweep) -> int:
    """The sweep's runs, from the cached stop lists (no model is loaded for it), without the pairs it leaves out."""
    missing = set(left_out(sweep.models, sweep.checkpoints))
    per_model = [(len(stops_of(m)) if sweep.layers == "stops" else len(sweep.layers))
                 * (len(sweep.checkpoints) - (m in missing)) for m in sweep.models]
    return len(sweep.images) * sum(per_model)


def estimate(sweep: Sweep, box) -> float | None:
    """Say in `box` how long `sweep` takes here now (`core.studies.sweep_time`: each model's first and last stop
    measured, times the images); returns the seconds."""
    try:
        plan = sweep_time(sweep, measurer(len(sweep.seeds), sweep.preset, sweep.device), in_cache,
                          load=_load)
    except Exception as exc:  # noqa: BLE001 - an estimate is a nicety; the run reports its own errors
        log.warning("no estimate: %s", exc)
        return None
    say_time(box, plan, sweep.preset, sweep.device, sweep.batch_stops, what=f"over {len(sweep.images)} images")
    return plan.seconds


def _load(arch: str, checkpoint: str, size: int, init_seed: int):
    """The app's cached model (`core.studies` loaders' signature)."""
    return get_model(arch, checkpoint, size, init_seed)[0]


def check_layers(models, layers, size: int) -> None:
    """Raise UserError naming the first model that lacks one of `layers` (a list; "stops" always fits) and its
    stops, before a run is offered: otherwise the sweep would fail only once it plans."""
    if layers == "stops":
        return
    for m in models:
        model = get_model(m, "untrained", size)[0]
        for layer in layers:
            resolve_layer(model, layer)


def start(sweep: Sweep, out: Path, box, backend: str = "local") -> None:
    """Run `sweep` on `backend` (local, or a Ray on this machine) with a progress bar; finished runs stay in the
    cache if stopped. A `SweepStopped` (a lost Ray node) propagates after what finished is written."""
    bar = box.progress(0.0, text="planning…")

    def on_start(tasks, todo):
        bar.progress(0.0, text=f"{tasks} runs: {tasks - todo} done, {todo} to run")

    def progress(done, total, task):
        bar.progress(done / max(1, total), text=f"{done} of {total} · {task.image.name} · {task.spec.model} "
                                                f"{task.spec.checkpoint} {task.spec.layer}")

    try:
        outcome = run_sweep(sweep, out, backend, cache=disk_cache(), progress=progress, on_start=on_start,
                            load=lambda arch, ck, size, init_seed: get_model(arch, ck, size, init_seed)[0])
    except SweepStopped as exc:
        if exc.outcome is not None and exc.outcome.rows:
            write_sweep(exc.outcome, sweep, out)  # what was computed stays openable
        bar.empty()
        raise
    write_sweep(outcome, sweep, out)
    retried = f", {outcome.retried} retried after a lost worker or node" if outcome.retried else ""
    bar.progress(1.0, text=f"{len(outcome.rows)} rows: {outcome.done_before} done before, {outcome.ran} run now "
                           f"({outcome.runs_per_second:.2f} runs/s), {outcome.failed} failed{retried}")
    for path, why in outcome.skipped:
        box.warning(f"skipped {path}: {why}")
    for note in outcome.notes:
        box.warning(note)


def run_or_resume(sweep: Sweep | None, out: str, backend: str, clicked: bool, page: PageState) -> str | None:
    """Run `sweep` into `results_dir() / out` when Run was `clicked`. A sweep that stops (a lost Ray node or
    connection) leaves its message and a Resume button on the page until the next run: Resume runs the same
    sweep again, which runs only the missing runs. Returns the folder (`out`) whose results this call wrote."""
    box = st.container()
    job = (sweep, out, backend) if clicked and sweep is not None else None
    stopped = page.get("stopped")  # (job, message) of the sweep that stopped, kept across reruns
    if job is None and stopped is not None:
        note, slot = box.empty(), box.empty()
        note.error(stopped[1])
        if not slot.button("Resume the sweep", type="primary", key=page.key("resume")):
            return None
        note.empty()
        slot.empty()
        job = stopped[0]
    if job is None:
        return None
    page.pop("stopped")
    try:
        start(job[0], results_dir() / job[1], box, job[2])
    except SweepStopped as exc:
        page["stopped"] = (job, "sweep: " + exc.say("Resume runs the same sweep again"))
        if exc.outcome is not None and exc.outcome.rows:
            page["file"] = f"{job[1]}/results.parquet"  # what was computed, in the other tab
        st.rerun()  # draws the message and Resume
    return job[1]


def file_stem(frame, name: str = "", uploaded: bool = False) -> str:
    """The downloads' name: the sweep's folder under `results_dir()` (or the upload's name), its models and
    checkpoints, and its size where its sweep.json says ("sweep_page-sweep_efficientnet_lite0_untrained-trained_32px")."""
    path = Path(name or "")
    folder = path.stem if uploaded or path.name != "results.parquet" else path.parent.name
    size = ""
    if name and not uploaded:
        try:
            size = f"{int(json.loads((results_dir() / path.parent / 'sweep.json').read_text())['size'])}px"
        except (OSError, ValueError, KeyError, TypeError):
            size = ""
    models = list(dict.fromkeys(frame["model"])) if "model" in frame else []
    cks = list(dict.fromkeys(frame["checkpoint"])) if "checkpoint" in frame else []
    return stem("sweep", "" if folder == "results" else folder, models, cks, size)


def show(frame, page: PageState, name: str = "", uploaded: bool = False) -> None:
    """Mean ± 95% interval curves, the summary table, and every image's reconstruction at a chosen point; `name`:
    the results' file under `results_dir()` (or the upload's name), for the downloads' names."""
    summary = summarize(frame.to_dict("records"))
    n_images = frame["image"].nunique()
    measured = [m for m in ("fidelity", "structure")
                if any(math.isfinite(float(s.get(f"{m}_mean", float("nan")))) for s in summary)]
    metric = "clarity"
    if measured:  # a sweep made before the measures panel has clarity (then normalised SSIM) only
        m1, _ = st.columns([2, 3])
        metric = m1.selectbox("Measure", ["clarity", *measured], key=page.key("sweep_metric"),
                              label_visibility="collapsed", format_func=lambda m: f"Measure: {METRICS[m]}")
    st.plotly_chart(summary_figure(summary, f"{n_images} images · {frame['model'].nunique()} models", metric),
                    width="stretch", key=page.key("summary_chart"))
    errors = int(frame["error"].notna().sum()) if "error" in frame else 0
    if errors:
        st.warning(f"{errors} runs failed (kept out of the means): see the table's error column.")
    st.dataframe(summary, width="stretch", key=page.key("summary_table"))
    points = {f"{s['model']} · {s['checkpoint']} · {s['label']} ({s['layer']})": s for s in summary}
    pick = st.selectbox("Drill down: every image at one point", list(points), key=page.key("point"))
    s = points[pick]
    rows = frame[(frame["model"] == s["model"]) & (frame["checkpoint"] == s["checkpoint"])
                 & (frame["layer"] == s["layer"])]
    shown, missing = [], 0
    for r in rows.itertuples():
        result = disk_cache().get(r.key) if isinstance(r.key, str) and r.key else None
        if result is None:
            missing += 1
            continue
        shown.append((r, result))
    if shown:
        images, captions = [], []
        for r, result in shown:
            images += [upscale(result.original, 128), upscale(result.images[0], 128)]
            captions += [f"{r.image}", f"clarity {r.clarity:.2f}" + ("" if r.converged else " · not converged")]
        with st.container(key=page.key("drill")):
            st.image(images, caption=captions, width=128)
    if missing:
        st.caption(f"{missing} of {len(rows)} runs are not in this machine's run cache (made elsewhere): their "
                   "numbers are in the table, their pictures are not.")
    base = file_stem(frame, name, uploaded)
    st.download_button("Results (parquet)", frame.to_parquet(index=False), f"{base}_results.parquet",
                       "application/octet-stream", key=page.key("dl_parquet"))
    st.download_button("Summary (CSV)", __import__("pandas").DataFrame(summary).to_csv(index=False),
                       f"{base}_summary.csv", "text/csv", key=page.key("dl_csv"))


def load(choice: str | None, upload) -> tuple[object, str] | None:
    """The chosen results (a file under `results_dir()` or an upload) and their name."""
    if upload is not None:
        return read_results(upload.getvalue()), upload.name
    if choice:
        return read_results(results_dir() / choice), choice
    return None
