"""Sweeps page: clarity curves over many images with 95% intervals; start a small sweep here, large ones on the CLI."""

import streamlit as st

from core import ARCHITECTURES, UserError, get_preset
from core.studies import Sweep
from ui import pickers, state, sweeps
from ui.errors import errors
from ui.nav import heading, page_setup
from ui.notices import known_only, link_values
from ui.state import Field, choice, items, join, limits, setting

present = page_setup("Sweeps")
# The defaults run here (ui/sweeps.py: Lite0 untrained against trained at three stops, 24 runs); a link's unknown
# models are named and left out (below), its layers are checked against every chosen model before Run is offered.
FIELDS = [Field("file", ""), Field("models", sweeps.DEFAULT_MODELS, items(), join),
          Field("cks", sweeps.DEFAULT_CHECKPOINTS, items(["untrained", "trained"]), join),
          Field("layers", sweeps.DEFAULT_LAYERS), setting("size", 32, hi=512), setting("seeds", 1),
          setting("iters", 60), Field("out", "page-sweep"), Field("backend", "local", choice(["local", "ray"])),
          Field("point", "")]
RAN = state.PageState("swr_")  # the keys of a just-finished sweep's results, shown in the Run tab
page = state.PageState("sw_", FIELDS)
link = link_values(page, "models")
link_warnings, _ = page.bind()
if not present:
    heading("Sweeps")
    st.caption("A clarity curve of one image is an anecdote: a sweep inverts every image × model × checkpoint × "
               "layer and shows the mean with its 95% bootstrap interval over images (converged runs only, as the "
               "findings report counts them). Sweeps are resumable and can run "
               "on Ray: `python -m core sweep` (docs/sweeps.md).")
for w in link_warnings:
    st.warning(w)
known_only(page, "models", link.get("models"), ARCHITECTURES, sweeps.DEFAULT_MODELS,
           "a model here (`python -m core models` lists them)", st)
tab_open, tab_run = st.tabs(["Open results", "Run a small sweep"])
with tab_run:
    c1, c2 = st.columns(2)
    models = c1.multiselect("Models", list(ARCHITECTURES), key=page.key("models"))
    cks = c1.multiselect("Checkpoints", ["untrained", "trained"], key=page.key("cks"))
    layers = c1.text_input("Layers ('stops' or a comma list)", key=page.key("layers"))
    size = c2.number_input("Size (px)", limits("size")[0], 512, key=page.key("size"))
    seeds = c2.number_input("Seeds", *limits("seeds"), key=page.key("seeds"))
    iters = c2.number_input("Iterations", *limits("iters"), key=page.key("iters"))
    out = c2.text_input(f"Folder under {sweeps.results_dir()}", key=page.key("out"))
    backend = c1.radio("Backend", ["local", "ray"], horizontal=True, key=page.key("backend"),
                       help="ray: a Ray on this machine (pip install -r requirements-sweep.txt)")
    st.code(sweeps.command(models, cks, layers, size, seeds, iters, str(sweeps.results_dir() / out)), language="bash")
    for m in sweeps.left_out(models, cks):
        st.info(f"{m} × trained is left out: its trained weights are not on this machine (`python -m core download "
                f"{m}`, or the download offered on the Invert page), so it is not counted below.")
    sweep = None
    with errors("sweep: "):
        chosen = layers.strip() if layers.strip() == "stops" else [x.strip() for x in layers.split(",") if x.strip()]
        if not chosen:
            raise UserError("write 'stops' or at least one layer name")
        planned = Sweep.create("samples", models, cks, chosen, int(size), list(range(int(seeds))),
                               get_preset("default", iters=int(iters)))
        sweeps.check_layers(models, chosen, int(size))  # a layer some model lacks: said now, not at the run
        n = sweeps.count(planned)
        per = "every depth stop" if chosen == "stops" else pickers.plural(len(chosen), "layer")
        st.caption(f"{pickers.plural(len(planned.images), 'sample image')} × {pickers.plural(len(models), 'model')} × "
                   f"{pickers.plural(len(cks), 'checkpoint')} × {per}: {n} runs of {pickers.plural(int(seeds), 'seed')}"
                   f", up to {int(iters)} steps at {int(size)} px. The bar counts them; finished runs come from the "
                   "cache.")
        if n == 0:
            raise UserError("nothing to run: every chosen model × checkpoint is left out (see above)")
        if n > sweeps.PAGE_LIMIT:
            st.info(f"{n} runs is more than this page starts ({sweeps.PAGE_LIMIT}): run the command above (resumable, "
                    "and on Ray if need be), then open its results.parquet here.")
        else:
            sweep = planned  # every check passed: Run sweep is offered
    if sweep is not None:
        with errors("estimate: "):
            sweeps.estimate(sweep, st)
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Run sweep", type="primary", key=page.key("run"), disabled=sweep is None)
    b2.button("Stop", key=page.key("stop"), disabled=not clicked,
              help="Stops the sweep; its finished runs stay in the cache, so Run sweep again runs only the rest"
              if clicked else "nothing is running")
    wrote = None
    with errors("sweep: "):  # a lost Ray node: the message, and Resume (the same sweep, only its missing runs)
        wrote = sweeps.run_or_resume(sweep, out, backend, clicked, page)
        if wrote is not None:
            page["file"] = f"{wrote}/results.parquet"
            page["ran"] = wrote
    ran = page.get("ran")  # a finished sweep shows its results here at once (chart, table, downloads)
    if ran and (wrote is not None or not clicked):
        with errors("results: "):
            loaded = sweeps.load(f"{ran}/results.parquet", None)
            if loaded is not None:
                st.success(f"The sweep is done: its results, also under **Open results** ({ran}/results.parquet).")
                sweeps.show(loaded[0], RAN, loaded[1])
with tab_open:
    files = sweeps.found()
    if page.get("file") not in [""] + files:
        st.warning(f"no results at {page['file']!r} under {sweeps.results_dir()}")
        page["file"] = ""
    pick = st.selectbox(f"results.parquet under {sweeps.results_dir()}", [""] + files, key=page.key("file"),
                        format_func=lambda f: f or "(choose)")
    upload = st.file_uploader("…or upload a results.parquet", key=page.key("upload"))
    with errors("results: "):
        loaded = sweeps.load(pick, upload)
        if loaded is None:
            st.info("Choose a sweep's results.parquet (or run a small sweep in the other tab).")
        else:
            sweeps.show(loaded[0], page, loaded[1], uploaded=upload is not None)
page.sync()
