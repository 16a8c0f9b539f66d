"""Sweeps page: clarity curves over many images with 95% intervals; start a small sweep here, large ones on the CLI."""

import streamlit as st

from core import ARCHITECTURES, get_preset
from core.studies import Sweep
from ui import state, sweeps
from ui.errors import errors
from ui.nav import page_setup
from ui.state import Field, choice, items, join, limits, setting

present = page_setup("Sweeps")
FIELDS = [Field("file", ""), Field("models", ["resnet18", "efficientnet_lite0"], items(ARCHITECTURES), join),
          Field("cks", ["untrained"], items(["untrained", "trained"]), join), Field("layers", "stops"),
          setting("size", 32, hi=512), setting("seeds", 1), setting("iters", 60),
          Field("out", "page-sweep"), Field("backend", "local", choice(["local", "ray"])), Field("point", "")]
page = state.PageState("sw_", FIELDS)
link_warnings, _ = page.bind()
if not present:
    st.title("Sweeps")
    st.caption("A clarity curve of one image is an anecdote: a sweep inverts every image × model × checkpoint × "
               "layer and shows the mean with its 95% bootstrap interval over images. Sweeps are resumable and can run "
               "on Ray: `python -m core sweep` (README).")
for w in link_warnings:
    st.warning(w)
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
    sweep = None
    with errors("sweep: "):
        sweep = Sweep.create("samples", models, cks, layers if layers == "stops" else layers.split(","),
                                     int(size), list(range(int(seeds))), get_preset("default", iters=int(iters)))
        n = sweeps.count(sweep)
        st.caption(f"{len(sweep.images)} sample images × {len(models)} models × {len(cks)} checkpoints: {n} runs.")
        if n > sweeps.PAGE_LIMIT:
            st.info(f"{n} runs is more than this page starts ({sweeps.PAGE_LIMIT}): run the command above (resumable, "
                    "and on Ray if need be), then open its results.parquet here.")
            sweep = None
    clicked = st.button("Run sweep", type="primary", key=page.key("run"), disabled=sweep is None)
    with errors("sweep: "):  # a lost Ray node: the message, and Resume (the same sweep, only its missing runs)
        wrote = sweeps.run_or_resume(sweep, out, backend, clicked, page)
        if wrote is not None:
            page["file"] = f"{wrote}/results.parquet"
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
            sweeps.show(loaded[0], page)
page.sync()
