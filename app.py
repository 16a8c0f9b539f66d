"""Feature inversion explorer (Badger 2022): `streamlit run app.py`. This file is the Invert page.

One layer, several seeds, live, with the numbers that make it trustworthy. Pickers, live view and
result views live in ui/; every result comes from core.jobs.pipeline.run.
"""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import ARCHITECTURES  # noqa: E402
from ui import live, models, pickers, state, views  # noqa: E402
from ui.errors import errors  # noqa: E402
from ui.nav import page_setup  # noqa: E402

present = page_setup("Invert")
page = state.PageState("inv_", pickers.fields(pickers.DEFAULTS) + [live.CONT])
link_warnings, from_link = page.bind()
if not present:
    st.title("Invert a layer")
results = st.container()  # presentation mode: results above the controls
if not present:
    st.caption("What does a layer keep of an image? Gradient descent from random starts (seeds) looks for inputs "
               "whose embedding matches the image's. Seeds that match equally well but look different show that "
               "the layer's representation is not unique.")
notices = st.container()
for w in link_warnings:
    notices.warning(w)
salvaged = live.salvage(page.key("live"))  # a run stopped by Stop (or any rerun) keeps what it computed
if salvaged:
    page["result"] = {**salvaged[1], "result": salvaged[0]}
c_img, c_run = st.columns([3, 2])
pick = pickers.inversion(page, from_link, notices, c_run, c_img)
live.continuation(page, pick)  # the link's cont= (or this session's Continues): part of the run's spec
page.sync()

hit = live.cached(pick.spec)
est = None
with c_run:
    if hit is not None:
        st.success("This exact run is in the cache: Run shows it at once.")
    elif pick.ready:
        with errors("estimate: "):
            est = live.estimate(pick, st)
            live.cheaper_offer(pick, est, models.sizes_for(pick.arch), st, page, ARCHITECTURES[pick.arch].min_size)
b1, b2, b3, b4 = st.columns([1, 1, 1.5, 2.5])
run_clicked = b1.button("Run", type="primary", key=page.key("run"), disabled=not pick.ready)
b2.button("Stop", key=page.key("stop"), help="Stops the run and keeps what it computed so far")
if not pick.ready:
    st.info("Run is not available yet: " + "; ".join(pick.problems or ["fix the settings above"]) + ".")
# A first visit (or a link) shows its result without a click when it is cached or takes a few seconds.
first = not page.get("visited")
page["visited"] = True
auto = first and pick.ready and (hit is not None or (est is not None and est.seconds <= live.AUTO_RUN_S))
if first and pick.ready and not auto and from_link:
    st.info("This link's run is not in the cache and takes longer than a few seconds: press **Run** to start it.")
target = results if present else st.container()
if pick.ready and (run_clicked or auto):
    live.start(pick, page, target, present, note=None if not auto or present else "The link's settings, shown on "
               "opening it." if from_link else "A first example with the default settings; change anything and press Run.")
shown = page.get("result")
same = bool(shown and pick.spec and shown.get("key") == pick.spec.key())
stopped = bool(same and shown["result"].stopped_early)
more = b4.number_input("more steps", 10, 5000, 100, step=10, key=page.key("more"), label_visibility="collapsed",
                       disabled=stopped)
if b3.button("Finish the run" if stopped else f"Continue +{more}", key=page.key("continue"), disabled=not same,
             help="go on from where Stop left the run, to its end" if stopped else
             f"continue the shown run by {more} steps, its optimiser state carried on; the link keeps the "
             "continuation, so it reproduces the result"):
    if live.start(pick, page, target, present, more=int(more)) is not None:
        st.rerun()  # the controls above were drawn for the run before: draw them (and the link) for this one
shown = page.get("result")
if shown:
    with target:
        if shown.get("key") != (pick.spec.key() if pick.spec else None):
            st.info("Showing the last run; the settings have changed since. Press Run for the current settings.")
        r = shown["result"]
        for note in shown.get("notes") or []:  # what the run had to do (computed again first, batches)
            st.caption(f"Note: {note}.")
        if r.stopped_early:
            st.warning(f"Stopped at step {r.steps_done} of {r.metrics.get('budget', r.preset.iters)}: these are the images "
                       "and numbers so far (not stored in the cache). **Finish the run** goes on from them.")
        views.show_result(r, shown.get("model"), shown.get("ck_display"), shown.get("image_name", ""), page.key("res"),
                          present=present)
        with st.expander("m_g and m_i during the run", expanded=not present):
            views.trajectory(r)
