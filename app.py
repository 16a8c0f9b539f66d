"""Feature inversion explorer (Badger 2022): `streamlit run app.py`. This file is the Invert page.

One layer, several seeds, live, with the numbers that make it trustworthy. Pickers, live view and
result views live in ui/; every result comes from core.jobs.pipeline.run.
"""

import streamlit as st

from core import get_architecture  # `streamlit run app.py` puts this folder on the path
from ui import live, models, pickers, state, views
from ui.errors import errors
from ui.nav import page_setup

present = page_setup("Invert")
page = state.PageState("inv_", pickers.fields({**pickers.DEFAULTS, "vs": "none"}) + [live.CONT])
if not st.query_params and "inv_first" not in st.session_state:  # a bare first visit: trained beside untrained
    page["vs"] = "untrained"  # (a link without vs= keeps meaning one checkpoint, as links did before vs= existed)
st.session_state["inv_first"] = False
link_warnings, from_link = page.bind()
if not present:  # one line of title and purpose: the results must be on the first screen at 1280x720
    st.markdown("#### Invert a layer · what does it keep of an image?", help="Gradient descent from random starts "
                "(seeds) looks for inputs whose embedding matches the image's. Seeds that match equally well but look "
                "different show that the layer's representation is not unique. Settings are in the sidebar.")
results = st.container()  # presentation mode: results above the controls
toolbar = st.container()
notices = live.Notices(st.container(), page)
target = results if present else st.container()
for w in link_warnings:
    notices.warning(w)
salvaged = live.salvage(page.key("live"))  # a run stopped by Stop (or any rerun) keeps what it computed
if salvaged:
    page["result"] = {**salvaged[1], "result": salvaged[0]}
salvaged_vs = live.salvage(page.key("vs_live"))  # Stop during the second row: the first row is finished
if salvaged_vs and page.get("result"):
    page["result"]["vs"] = {**salvaged_vs[1], "result": salvaged_vs[0]}
pick = pickers.inversion(page, from_link, notices)
live.continuation(page, pick)  # the link's cont= (or this session's Continues): part of the run's spec
pickers.with_vs(pick)
page.sync()

specs = [s for s in (pick.spec, pick.vs_spec) if s is not None]
hit = bool(specs) and all(live.cached(s) is not None for s in specs)
shown = page.get("result")
same = bool(shown and pick.spec and shown.get("key") == pick.spec.key())
finishing = same and live.stopped(shown)
b1, b2, b3, b4, b5 = toolbar.columns([0.8, 0.8, 1.5, 1.2, 4.5], vertical_alignment="center")
est = None
with b5:
    said = [shown["note"]] if shown and shown.get("note") and same else []
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
running = pick.ready and (run_clicked or auto or go_on)
b2.button("Stop", key=page.key("stop"), disabled=not running,
          help="Stops the run and keeps what it computed so far" if running else "nothing is running")
if not pick.ready:
    toolbar.info("Run is not available yet: " + "; ".join(pick.problems or ["fix the settings in the sidebar"]) + ".")
elif est is not None and not hit:
    with toolbar:
        live.cheaper_offer(pick, est, models.sizes_for(pick.arch), st, page, get_architecture(pick.arch).min_size)
if first and pick.ready and not auto and from_link:
    notices.info("This link's run is not in the cache and takes longer than a few seconds: press **Run** to start it.")
if pick.ready and (run_clicked or auto or go_on):
    note = None if not auto or present else ("The link's settings, shown on opening it." if from_link else
                                             "A first example: trained against untrained at one depth. Change "
                                             "anything in the sidebar, then Run.")
    if live.start(pick, page, target, present, more=int(more) if go_on else 0, estimate=est) is not None:
        page["result"]["note"] = note
        notices.carry()
        st.rerun()  # the toolbar above was drawn before the run: draw it (and the link) for this result
shown = page.get("result")
if shown:
    with target:
        if shown.get("key") != (pick.spec.key() if pick.spec else None):
            st.info("Showing the last run; the settings have changed since. Press Run for the current settings.")
        r = shown["result"]
        vs = shown.get("vs")
        for note in (shown.get("notes") or []) + ((vs or {}).get("notes") or []):  # what the runs had to do
            st.caption(f"Note: {note}.")
        if live.stopped(shown):
            part = vs["result"] if vs and vs["result"].stopped_early else r
            st.warning(f"Stopped at step {part.steps_done} of {part.metrics.get('budget', part.preset.iters)}: these are "
                       "the images and numbers so far (not stored in the cache). **Finish the run** goes on from them.")
        if vs is not None and pick.vs_spec is not None and vs.get("key") == pick.vs_spec.key():
            views.show_pair(r, vs["result"], (shown.get("ck_display"), vs.get("ck_display")),
                            shown.get("image_name", ""), page.key("res"), present=present)
        else:
            if pick.vs_spec is not None and shown.get("key") == pick.spec.key():
                st.info(f"Press **Run** to add the row for **{pick.vs_display}** under this one.")
            views.show_result(r, shown.get("model"), shown.get("ck_display"), shown.get("image_name", ""),
                              page.key("res"), present=present)
        with st.expander("m_g and m_i during the run", expanded=False):
            views.trajectory(r)
