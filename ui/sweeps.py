"""The Sweeps page's parts: where results live, a small sweep with progress (and Resume after a lost Ray node),
the drill-down to images."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import streamlit as st

from core.images import upscale
from core.report import summary_figure, write_sweep
from core.studies import Sweep, SweepStopped, read_results, run_sweep, summarize
from ui.live import disk_cache
from ui.models import get_model, stops_of
from ui.state import PageState

PAGE_LIMIT = 48  # runs a page starts itself; more belong on the command line


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


def count(sweep: Sweep) -> int:
    """The sweep's runs, from the cached stop lists (no model is loaded for it)."""
    per_model = [len(stops_of(m)) if sweep.layers == "stops" else len(sweep.layers) for m in sweep.models]
    return len(sweep.images) * len(sweep.checkpoints) * sum(per_model)


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


def show(frame, page: PageState) -> None:
    """Mean ± 95% interval curves, the summary table, and every image's reconstruction at a chosen point."""
    summary = summarize(frame.to_dict("records"))
    n_images = frame["image"].nunique()
    st.plotly_chart(summary_figure(summary, f"{n_images} images · {frame['model'].nunique()} models"),
                    width="stretch")
    errors = int(frame["error"].notna().sum()) if "error" in frame else 0
    if errors:
        st.warning(f"{errors} runs failed (kept out of the means): see the table's error column.")
    st.dataframe(summary, width="stretch")
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
        st.image(images, caption=captions, width=128)
    if missing:
        st.caption(f"{missing} of {len(rows)} runs are not in this machine's run cache (made elsewhere): their "
                   "numbers are in the table, their pictures are not.")
    st.download_button("Results (parquet)", frame.to_parquet(index=False), "results.parquet",
                       "application/octet-stream", key=page.key("dl_parquet"))
    st.download_button("Summary (CSV)", __import__("pandas").DataFrame(summary).to_csv(index=False), "summary.csv",
                       "text/csv", key=page.key("dl_csv"))


def load(choice: str | None, upload) -> tuple[object, str] | None:
    """The chosen results (a file under `results_dir()` or an upload) and their name."""
    if upload is not None:
        return read_results(upload.getvalue()), upload.name
    if choice:
        return read_results(results_dir() / choice), choice
    return None
