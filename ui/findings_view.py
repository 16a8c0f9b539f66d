"""The Findings page's parts: run a findings report with progress, and show its verdicts as cards.

Every run is a sweep run in the shared cache (`core.studies.findings`): a report run before shows at once, a
Stop keeps every finished run, and Run again runs only what is missing.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from core.report import findings_json, findings_md, report_html
from core.studies import FindingsPlan, run_findings
from ui.live import disk_cache
from ui.models import get_model
from ui.nav import url_of

VERDICT_ICON = {"holds": ":material/check_circle:", "does not hold": ":material/cancel:",
                "inconclusive": ":material/help:"}
VERDICT_COLOUR = {"holds": "green", "does not hold": "red", "inconclusive": "orange"}
WHERE = {"1": ("pages/1_curve.py", "Clarity curve"), "2": ("pages/1_curve.py", "Clarity curve"),
         "3": ("pages/2_nonunique.py", "Non-uniqueness"), "4": ("pages/1_curve.py", "Clarity curve"),
         "5": ("pages/5_manifold.py", "Manifold"), "6": ("pages/4_lab.py", "Invertibility lab"),
         "7": ("pages/1_curve.py", "Clarity curve")}


def run(plan: FindingsPlan, box):
    """Run `plan` (what the cache lacks) with a progress bar per size; returns the `FindingsReport`."""
    bars = {}
    sizes = iter([s.size for s in plan.sweeps])
    started = box.progress(0.0, text="planning the runs…")

    def on_start(tasks, todo):
        size = next(sizes, None)
        bars[size] = box.progress(0.0 if todo else 1.0, text=f"{size} px: {tasks} runs, {tasks - todo} in the cache, "
                                                             f"{todo} to make")

    def progress(size, done, total, task):
        bars[size].progress(done / max(1, total), text=f"{size} px: {done} of {total} runs made · "
                            f"{task.image.name} · {task.spec.checkpoint} · {task.spec.layer}")

    with tempfile.TemporaryDirectory(prefix="findings-") as out:  # the runs live in the cache; the ledger goes
        report = run_findings(plan, Path(out), cache=disk_cache(), progress=progress, on_start=on_start,
                              load=lambda arch, ck, size, init_seed: get_model(arch, ck, size, init_seed)[0])
    started.empty()
    for bar in bars.values():
        bar.empty()
    return report


def link(fid: str, model: str | None) -> str:
    path, label = WHERE.get(fid, ("pages/1_curve.py", "Clarity curve"))
    query = f"?model={model}" if model and path in ("pages/1_curve.py",) else ""
    return f"[See it on the {label} page]({url_of(path)}{query})"


def cards(report) -> None:
    """A card per verdict (finding, model, size): the verdict, the claim, the test in words, the statistic and why,
    what it used and left out, and the page that shows it in depth."""
    for v in report.verdicts:
        size = (v.evidence or {}).get("size")
        with st.container(border=True):
            colour = VERDICT_COLOUR.get(v.verdict, "gray")
            st.markdown(f"**Finding {v.id}** · {v.model} · {size} px: :{colour}[**{v.verdict}**]",
                        help=f"Claim: {v.claim}\n\nTest: {v.test}\n\nThreshold: {v.threshold}")
            st.markdown(f"{v.claim}")
            ci = f" [{v.ci[0]:.3f}, {v.ci[1]:.3f}]" if v.ci and None not in v.ci else ""
            value = f"{v.value:.3f}" if isinstance(v.value, float) else "n/a"
            left = ", ".join(f"{k}: {n}" for k, n in (v.left_out or {}).items()) or "none"
            st.caption(f"{v.statistic} = {value}{ci} · threshold: {v.threshold}")
            st.markdown(f"**Why:** {v.why}")
            st.caption(f"{v.n} runs used, left out: {left}. " + link(v.id, v.model)
                       + (f" · {v.evidence['size_dependence']}" if (v.evidence or {}).get("size_dependence") else ""))
    for note in report.notes:
        st.warning(note[0].upper() + note[1:] + ".")
    for fid, where in report.not_here.items():
        path, label = WHERE[fid]
        st.caption(f"Finding {fid} is not tested by these runs: {where} — [the {label} page]({url_of(path)}).")


def downloads(report, stem: str, key: str) -> None:
    import json

    d1, d2, d3 = st.columns(3)
    d1.download_button("Report (HTML)", report_html(report), f"{stem}_report.html", "text/html", key=key + "_html")
    d2.download_button("Findings (JSON)", json.dumps(findings_json(report), indent=1), f"{stem}_findings.json",
                       "application/json", key=key + "_json")
    d3.download_button("Table (Markdown)", findings_md(report), f"{stem}_findings.md", "text/markdown",
                       key=key + "_md")
