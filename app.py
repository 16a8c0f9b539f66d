"""Feature inversion explorer (Badger 2022): `streamlit run app.py`. This file is the Invert page.

One layer, several seeds, live, with the numbers that make it trustworthy. Pickers, live view and
result views live in ui/; every result comes from core.jobs.pipeline.run.
"""

import streamlit as st

from core import get_architecture  # `streamlit run app.py` puts this folder on the path
from ui import live, models, pickers, state, views
from ui.errors import errors
from ui.nav import heading, page_setup

present = page_setup("Invert")
page = state.PageState("inv_", pickers.fields({**pickers.DEFAULTS, "vs": "none"}) + [live.CONT])
# a bare first visit (in presentation mode too): trained beside untrained
if not set(st.query_params) - {"mode"} and "inv_first" not in st.session_state:
    page["vs"] = "untrained"  # (a link without vs= keeps meaning one checkpoint, as links did before vs= existed)
st.session_state["inv_first"] = False
link_warnings, from_link = page.bind()
if not present:  # one line of title and purpose: the results must be on the first screen at 1280x720
    heading("Invert a layer · what does it keep of an image?", help="Gradient descent from random starts "
                "(seeds) looks for inputs whose embedding matches the image's. Seeds that match equally well but look "
                "different show that the layer's representation is not unique. Settings are in the sidebar.")
results = st.container()  # presentation mode: results above the controls
toolbar = st.container()
notices = live.Notices(st.container(), page)
target = results if present else st.container()
for w in link_warnings:
    notices.warning(w)
lr = live.held(page)  # the page's run: one that Stop (or any rerun) interrupted shows what it computed
pick = pickers.inversion(page, from_link, notices)
live.continuation(page, pick)  # the link's cont= (or this session's Continues): part of the run's spec
pickers.with_vs(pick)
page.sync()

specs = [s for s in (pick.spec, pick.vs_spec) if s is not None]
hit = bool(specs) and all(live.cached(s) is not None for s in specs)
same = bool(lr.rows and pick.spec and lr.spec.key() == pick.spec.key())
finishing = same and lr.stopped
b1, b2, b3, b4, b5 = toolbar.columns([0.8, 0.8, 1.5, 1.2, 4.5], vertical_alignment="center")
est = None
with b5:
    said = [lr.meta["note"]] if lr.meta.get("note") and same else []
    if hit:
        st.caption(" ".join(said + ["In the cache: Run shows it at once."]))
    elif said:
        st.caption(said[0])
    elif pick.ready:
        with errors("estimate: "):
            est = live.estimate(pick, st, runs=len(specs))
# A first visit (or a link) shows its result without a click when it is cached or takes a few seconds.
first = not page.get("visited")
page["visited"] = True
auto = first and pick.ready and (hit or (est is not None and est.seconds * len(specs) <= live.AUTO_RUN_S))
run_clicked = b1.button("Run", type="primary", key=page.key("run"), disabled=not pick.ready)
more = b4.number_input("more steps", 10, 5000, 100, step=10, key=page.key("more"), label_visibility="collapsed",
                       disabled=finishing)
go_on = b3.button("Finish the run" if finishing else f"Continue +{more}", key=page.key("continue"), disabled=not same,
                  help="go on from where Stop left the run, to its end" if finishing else
                  f"continue the shown run by {more} steps, its optimiser state carried on; the link keeps the "
                  "continuation, so it reproduces the result")
offered = live.offer_taken(page)  # the cheaper setting's button: it runs what it offers
running = pick.ready and (run_clicked or auto or go_on or offered)
b2.button("Stop", key=page.key("stop"), disabled=not running,
          help="Stops the run and keeps what it computed so far" if running else "nothing is running")
if not pick.ready:
    toolbar.info("Run is not available yet: " + "; ".join(pick.problems or ["fix the settings in the sidebar"]) + ".")
elif est is not None and not hit:
    with toolbar:
        live.cheaper_offer(pick, est, models.sizes_for(pick.arch), st, page, get_architecture(pick.arch).min_size)
if first and pick.ready and not auto and from_link:
    notices.info("This link's run is not in the cache and takes longer than a few seconds: press **Run** to start it.")
if running:
    note = None if not auto or present else ("The link's settings, shown on opening it." if from_link else
                                             "A first example: trained against untrained at one depth. Change "
                                             "anything in the sidebar, then Run.")
    if live.start(pick, page, target, present, more=int(more) if go_on else 0, meta={"note": note},
                  estimate=est) is not None:
        notices.carry()
        st.rerun()  # the toolbar above was drawn before the run: draw it (and the link) for this result
if lr.rows:
    with target:
        if lr.spec.key() != (pick.spec.key() if pick.spec else None):
            st.info("Showing the last run; the settings have changed since. Press Run for the current settings.")
        first, vs = lr.rows[0], (lr.rows[1] if len(lr.rows) > 1 else None)
        for row in lr.rows:  # what the runs had to do
            for note in row.notes:
                st.caption(f"Note: {note}.")
        if lr.stopped:
            part = next(row.result for row in lr.rows if row.stopped)
            budget = part.metrics.get("budget", part.preset.iters)
            st.warning(f"Stopped at step {part.steps_done} of {budget}: these are "
                       "the images and numbers so far (not stored in the cache). **Finish the run** goes on from them.")
        image_name = lr.meta.get("image_name", "")
        if vs is not None and pick.vs_spec is not None and vs.spec.key() == pick.vs_spec.key():
            views.show_pair(first.result, vs.result, (first.label, vs.label), image_name, page.key("res"),
                            present=present, depth=views.depth_of(first.model, first.spec.layer))
        else:
            if pick.vs_spec is not None and first.spec.key() == pick.spec.key():
                st.info(f"Press **Run** to add the row for **{pick.vs_display}** under this one.")
            views.show_result(first.result, first.model, first.label, image_name, page.key("res"), present=present)
        with st.expander("m_g and m_i during the run", expanded=False):
            views.trajectory(first.result)
