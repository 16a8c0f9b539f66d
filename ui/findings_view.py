"""The Findings page's parts: run findings with progress per part, and show a card per finding with its verdicts.

Every run goes through the shared cache (`core.studies.findings`): a finding run before comes back at once, and
Run again runs only what is missing. The page runs part by part (finding 6, then the sweep of 1-4 and 7, then 5)
and keeps each finished part's report in the session, so Stop keeps the findings already judged.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import streamlit as st

from core.report import findings_json, findings_md, report_html
from core.studies import (CLAIMS, FINDINGS, OWN_SCALE, PAIRED, RUNS, SHOWN_ON, FindingsPlan, combine, run_findings,
                          runs_of)
from ui.live import disk_cache
from ui.models import get_model
from ui.nav import url_of

log = logging.getLogger(__name__)

VERDICT_COLOUR = {"holds": "green", "does not hold": "red", "inconclusive": "orange"}
PAGES = {"curve": ("pages/1_curve.py", "Clarity curve"), "nonunique": ("pages/2_nonunique.py", "Non-uniqueness"),
         "manifold": ("pages/5_manifold.py", "Manifold"), "lab": ("pages/4_lab.py", "Invertibility lab")}
TAKES_MODEL = ("curve", "manifold")  # the pages whose link can name the model
RUNS_TEXT = {"lab": "the lab's MLPs", "manifold": "generated inputs at deep stops"}


def estimate(plan: FindingsPlan, box) -> None:
    """Say in `box` how long the plan's runs take here now (`core.studies.findings_time`): the sweeps of findings
    1-4 and 7 and finding 5's generated inputs at the deep stops, measured; finding 6's small MLPs are not."""
    from core.studies import findings_time
    from ui.notices import in_cache, measurer, say_time

    try:
        forecast = findings_time(plan, measurer(len(plan.seeds), plan.preset, plan.device), in_cache,
                                 load=lambda arch, ck, size, init_seed: get_model(arch, ck, size, init_seed)[0])
    except Exception as exc:  # noqa: BLE001 - an estimate is a nicety; the run reports its own errors
        log.warning("no estimate: %s", exc)
        return
    six = "".join(f" (finding {f}'s {OWN_SCALE[f]} not measured)" for f in runs_of("lab", plan.findings))
    batch = plan.sweeps[0].batch_stops if plan.sweeps else "off"
    say_time(box, forecast, plan.preset, plan.device, batch, what=f"of these findings{six}")


def part_text(part) -> str:
    """"finding 6 (the lab's MLPs)", "findings 1, 2 (the clarity at every depth stop)": what a part runs."""
    what = RUNS_TEXT.get(RUNS[part[0]], "the clarity at every depth stop")
    return ("finding " if len(part) == 1 else "findings ") + ", ".join(part) + f" ({what})"


def run(plan: FindingsPlan, box) -> "object":
    """Run `plan` (what the cache lacks) with a progress bar per part; returns the `FindingsReport`."""
    bars = {}
    started = box.progress(0.0, text=f"planning the runs of {part_text(plan.findings)}…")

    def progress(part, done, total, what):
        if part not in bars:
            bars[part] = box.progress(0.0)
        text = f"{part}: {done} of {total} runs" + (f" · {what}" if what else "")
        bars[part].progress(min(1.0, done / max(1, total)), text=text)

    try:
        with tempfile.TemporaryDirectory(prefix="findings-") as out:  # the runs live in the cache; the ledger goes
            return run_findings(plan, Path(out), cache=disk_cache(), progress=progress,
                                load=lambda arch, ck, size, init_seed: get_model(arch, ck, size, init_seed)[0])
    finally:  # finished, failed or stopped: no bar is left standing
        started.empty()
        for bar in bars.values():
            bar.empty()


def run_parts(plan: FindingsPlan, parts, store: list, box) -> None:
    """Run each part of `parts` in turn and append its report to `store` as soon as it is judged (the session's
    list: a Stop keeps every finished part)."""
    for part in parts:
        report = run(plan.only(part), box)
        store[:] = [r for r in store if not set(r.plan.findings) <= set(part)] + [report]


def combined(store: list):
    return combine(store) if store else None


def link(fid: str, model_name: str | None) -> str:
    page = SHOWN_ON.get(fid, "curve")
    path, label = PAGES[page]
    query = f"?model={model_name}" if model_name and page in TAKES_MODEL else ""
    return f"[{label} page]({url_of(path)}{query})"


def _line(v) -> str:
    colour = VERDICT_COLOUR.get(v.verdict, "gray")
    where = OWN_SCALE.get(v.id) or f"{v.model} · {(v.evidence or {}).get('size')} px"
    ck = f" · {v.checkpoint}" if v.checkpoint and v.id not in PAIRED else ""
    ci = f" [{v.ci[0]:.2f}, {v.ci[1]:.2f}]" if v.ci and None not in v.ci else ""
    value = f"{v.value:.3f}{ci}" if isinstance(v.value, float) else "n/a"
    return f":{colour}[**{v.verdict}**] · {where}{ck} · {value}"


def cards(report, buttons: dict, disabled: bool, running: str | None) -> dict:
    """A card per finding (1-7), two to a row: the claim, each verdict (model, size) with its value and CI, why,
    what it used and left out, the page that shows it in depth, and a button that runs this finding alone.

    Returns:
        {finding id: whether its Run button was pressed}.
    """
    pressed = {}
    cols = st.columns(2)
    for i, fid in enumerate(FINDINGS):
        verdicts = [v for v in (report.verdicts if report else []) if v.id == fid]
        with cols[i % 2].container(border=True):
            head, btn = st.columns([5, 1], vertical_alignment="center")
            head.markdown(f"**Finding {fid}** · {CLAIMS[fid]}", help=(verdicts[0].test + "\n\nThreshold: " +
                                                                      verdicts[0].threshold) if verdicts else None)
            pressed[fid] = btn.button("Run", key=buttons[fid], disabled=disabled,
                                      help=f"run finding {fid} alone (what the cache lacks)")
            if running == fid:
                st.caption("running…")
            for v in verdicts:
                st.markdown(_line(v))
                left = ", ".join(f"{k}: {n}" for k, n in (v.left_out or {}).items()) or "none"
                dep = (v.evidence or {}).get("size_dependence")
                st.caption(f"{v.why}. {v.n} runs used, left out: {left}." + (f" {dep[0].upper() + dep[1:]}."
                                                                             if dep else ""))
            if not verdicts:
                why = (report.not_here.get(fid) if report else None) or "not run yet"
                st.caption(why[0].upper() + why[1:] + ".")
            st.caption("In depth: " + link(fid, verdicts[0].model if verdicts else None))
    if report:
        for note in report.notes:
            st.warning(note[0].upper() + note[1:] + ".")
    return pressed


def downloads(report, stem: str, key: str) -> None:
    d1, d2, d3 = st.columns(3)
    d1.download_button("Report (HTML)", report_html(report), f"{stem}_report.html", "text/html", key=key + "_html")
    d2.download_button("Findings (JSON)", json.dumps(findings_json(report), indent=1), f"{stem}_findings.json",
                       "application/json", key=key + "_json")
    d3.download_button("Table (Markdown)", findings_md(report), f"{stem}_findings.md", "text/markdown",
                       key=key + "_md")
