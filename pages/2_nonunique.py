"""Non-uniqueness page: m_g and m_i per seed against the step, and how far apart the seeds end up."""

import streamlit as st

from ui import live, pickers, state, views
from ui.errors import errors
from ui.nav import heading, page_setup

present = page_setup("Non-uniqueness")
FIELDS = pickers.fields({**pickers.DEFAULTS, "seeds": 3, "iters": 300 if pickers.ON_GPU else 150}, upload=False,
                        min_seeds=2)
page = state.PageState("nu_", FIELDS)
link_warnings, from_link = page.bind()
if not present:
    heading("Non-uniqueness: not converged, or not unique?")
if not present:
    st.markdown(
        "Left: how close each seed's embedding gets to the image's (**m_g**), against the distance at which a "
        "barely changed copy of the image lands (**m_r**, dotted). Right: how close each seed's picture gets to "
        "the image (**m_i**), against the pixel distance of that near-copy (**‖a′−a‖₂**, dotted). When m_g falls "
        "below m_r while m_i stays far above its reference — and the seeds end far apart in pixels but close in "
        "the layer — the layer maps different images to the same embedding: its representation is non-unique.")
results, notices = st.container(), st.container()
for w in link_warnings:
    notices.warning(w)
lr = live.held(page)  # a run that Stop interrupted shows what it computed
c_img, c_run = st.columns([3, 2])
pick = pickers.inversion(page, from_link, notices, c_run, c_img, upload=False, min_seeds=2)
page.sync()

b1, b2, b3 = st.columns([1, 1, 5], vertical_alignment="center")
run_clicked = b1.button("Run", type="primary", key=page.key("run"), disabled=not pick.ready)
hit = live.cached(pick.spec)
est = None
if hit:
    b3.caption("In the cache: Run shows it at once.")
elif pick.ready:
    with b3, errors("estimate: "):
        est = live.estimate(pick, st)  # measured now, and the run takes the thread count it chose
running = pick.ready and (run_clicked or hit is not None)  # the same settings as a finished run show at once
b2.button("Stop", key=page.key("stop"), disabled=not running or hit is not None,
          help="Stops the run and keeps what it computed so far" if running else "nothing is running")
if not pick.ready:
    st.info("Run is not available yet: " + "; ".join(pick.problems or ["fix the settings above"]) + ".")
if running:
    live.start(pick, page, results if present else st.container(), present, estimate=est)

if lr.rows:
    shown = lr.rows[0]
    r = shown.result
    with results if present else st.container():
        if shown.spec.key() != (pick.spec.key() if pick.spec else None):
            st.info("Showing the last run; the settings have changed since. Press Run for the current settings.")
        if r.stopped_early:
            st.warning(f"Stopped at step {r.steps_done} of {r.preset.iters}: the numbers so far.")
        views.trajectory(r, height=380)
        views.distances(r, page.key("res"))
        views.show_result(r, None, shown.label, lr.meta.get("image_name", ""), page.key("res"), present=present)
elif not run_clicked and pick.ready:
    st.info("Press **Run** to invert with these settings (the default: a mid-depth layer of the trained "
            "EfficientNet-Lite0, 3 seeds).")
