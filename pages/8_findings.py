"""Findings page: does the paper hold for this model, on these images, and how sure are we?"""

import streamlit as st

from core import ARCHITECTURES, UserError, get_preset, sample_images
from core.devices import resolve_device
from core.studies import FINDINGS, FindingsPlan
from ui import findings_view, models, pickers, state
from ui.errors import errors, message
from ui.nav import heading, page_setup
from ui.names import stem
from ui.state import Field, choice, items, join, setting

present = page_setup("Findings")
GPU = pickers.ON_GPU
SAMPLES = list(sample_images())
FIELDS = [Field("models", ["efficientnet_lite0"], items(), join),
          Field("cks", ["untrained", "trained"], items(["untrained", "trained"]), join),
          Field("images", SAMPLES if GPU else SAMPLES[:2], items(SAMPLES), join),
          Field("sizes", ["224"] if GPU else ["32"], items([str(s) for s in models.SIZES]), join),
          setting("seeds", 2), setting("iters", 200 if GPU else 120),
          Field("preset", "default", choice(list(pickers.PRESETS)))]
page = state.PageState("fd_", FIELDS)
link_warnings, from_link = page.bind()
if not present:
    heading("Findings · does the paper hold for this model?", help="Each of the paper's findings as a stated, "
                "falsifiable test on the runs of one sweep per size: holds, does not hold or inconclusive, with a 95% "
                "bootstrap interval over images. An unconverged run never counts as evidence (except finding 6's "
                "exact rank proof). The report (HTML, JSON, Markdown) is the same as `python -m core findings` writes.")
notices = st.container()
for w in link_warnings:
    notices.warning(w)
bad = [m for m in page.get("models") or [] if m not in ARCHITECTURES and models.model_problem(m)]
if bad:
    page["models"] = [m for m in page.get("models") or [] if m not in bad] or ["efficientnet_lite0"]
    notices.warning(f"left out {', '.join(bad)}: {models.model_problem(bad[0])}")
with st.sidebar:
    st.header("Findings settings")
    chosen = st.multiselect("Models", models.model_names(), key=page.key("models"), format_func=models.model_label,
                            help="any curated, torchvision or timm model; finding 7 (ViT) applies to ViTs")
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=page.key("cks"),
                         help="finding 4 compares trained with untrained: choose both")
    images = st.multiselect("Images", SAMPLES, key=page.key("images"), help="the verdicts need at least 2 images")
    sizes = st.multiselect("Sizes (px)", [str(s) for s in models.SIZES], key=page.key("sizes"),
                           help="each size is a sweep of its own; finding 4 says whether its verdict depends on it")
    seeds_n = st.slider("Seeds", *state.limits("seeds", 2), key=page.key("seeds"))
    iters = st.number_input("Iterations", *state.limits("iters"), step=10, key=page.key("iters"))
    preset_name = st.selectbox("Preset", list(pickers.PRESETS), key=page.key("preset"))
device = "cuda" if GPU else resolve_device("auto").type
problems = [t for ok, t in ((chosen, "choose at least one model"), (cks, "choose at least one checkpoint"),
                            (len(images) >= 2, "choose at least two images (a verdict's interval is over images)"),
                            (sizes, "choose at least one size")) if not ok]
plan = None
if not problems:
    try:
        with st.spinner("Planning the runs…"):
            plan = FindingsPlan.create([str(sample_images()[n]) for n in images], chosen, cks, [int(s) for s in sizes],
                                       list(range(int(seeds_n))), get_preset(preset_name, iters=int(iters)), device)
    except UserError as exc:
        problems.append(str(exc))
b1, b2, b3 = st.columns([1.3, 1, 5], vertical_alignment="center")
run_clicked = b1.button("Run all findings", type="primary", key=page.key("run"), disabled=bool(problems))
card_keys = {fid: page.key(f"run_{fid}") for fid in FINDINGS}
card_clicked = next((fid for fid, k in card_keys.items() if st.session_state.get(k)), None)
key = (tuple(chosen), tuple(cks), tuple(images), tuple(sizes), int(seeds_n), int(iters), preset_name)
running = bool((run_clicked or card_clicked) and plan)
b2.button("Stop", key=page.key("stop"), disabled=not running, help="stops; every finished finding stays, every "
          "finished run stays in the cache, and Run goes on from there" if running else "nothing is running")
per = None
with errors("models: "):
    per = sum(len(models.stops_of(m)) for m in chosen) * len(cks) * len(images) if plan is not None else None
if per is not None:
    b3.caption(f"Findings 1-4, 7: {per * len(sizes)} runs ({len(images)} images × {len(cks)} checkpoints × every "
               f"depth stop × {len(sizes)} size{'s' if len(sizes) > 1 else ''}), each up to {int(iters)} steps; "
               + (f"5: {5 * 2 * 2 * len(chosen) * len(sizes)} runs (5 generated inputs × 2 checkpoints × 2 deep "
                  "stops); " if {"untrained", "trained"} <= set(cks) else "5: needs both checkpoints; ") +
               f"6: {len(images) * 8} small MLP runs. Runs in the cache come back at once.")
if problems:
    st.info("Run is not available yet: " + "; ".join(problems) + ".")
elif plan is not None and not running:
    with errors("estimate: "):
        findings_view.estimate(plan, st)
shown = page.get("results")
if shown is None or (running and shown["key"] != key):
    shown = page["results"] = {"key": key, "store": []}
progress_box = st.container()
if shown.get("error"):
    progress_box.error(shown["error"] + " The findings judged before it are kept below; Run goes on from the cache.")
report = findings_view.combined(shown["store"])
if report is not None:
    if shown["key"] != key:
        st.info("Showing the last findings; the settings have changed since. Press Run for the current ones.")
    findings_view.downloads(report, stem("findings", report.plan.models, [f"{s}px" for s in report.plan.sizes]),
                            page.key("dl"))
elif not problems:
    st.caption("Press **Run all findings**, or a finding's **Run**: each finding the runs allow gets a verdict with "
               "its interval; finished runs come from the cache.")
findings_view.cards(report, card_keys, bool(problems), card_clicked if running else None)
if running:
    parts = plan.parts() if run_clicked else [(card_clicked,)]
    shown.pop("error", None)
    try:
        findings_view.run_parts(plan, parts, shown["store"], progress_box)
    except Exception as exc:  # noqa: BLE001 - kept for the rerun: the parts finished before it stay in the store
        shown["error"] = message(exc, "findings: ")
    st.rerun()  # the toolbar and cards were drawn for a running report: draw them for the finished one
page.sync()
