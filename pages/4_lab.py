"""Invertibility lab (findings 3 and 6): MLP width, depth and activation; a CNN's Jacobian against depth.

The logic is in core/lab.py; every reconstruction comes from core.jobs.run (cached like any other run)."""

import json

import streamlit as st

from core import ARCHITECTURES, get_preset, lab, load_image, sample_images
from core.curve import iter_curve
from ui import live, models, pickers, state
from ui.errors import errors
from ui.nav import page_setup
from ui.state import Field, choice, dump_bool, flag, integer, items, join

page_setup("Invertibility lab")
P, MSIZES = "lab_", [8, 12, 16, 24, 32]
WIDTHS, DEPTHS = ["0.25", "0.5", "1", "1.5", "2", "3", "4", "8"], ["1", "2", "3", "4"]
FIELDS = [Field("widths", ["0.5", "1", "2", "4"], items(WIDTHS), join),
          Field("depths", ["1", "3"], items(DEPTHS), join),
          Field("acts", ["linear", "relu"], items(list(lab.ACTIVATIONS)), join), Field("seeds", 2, integer(1, 4)),
          Field("iters", 2000, integer(50, 5000)), Field("msize", 16, lambda raw: MSIZES[MSIZES.index(int(raw))]),
          Field("init_seed", 0, integer(0, 10_000)), Field("blur", False, flag, dump_bool),
          Field("early", True, flag, dump_bool), Field("image", "chelsea"),
          Field("cmodel", "resnet18", choice(ARCHITECTURES)),
          Field("cckpt", "untrained", choice(["untrained", "trained"])),
          Field("cstops", None, items(), join), Field("csize", 16, integer(16, 64)),
          Field("cclarity", True, flag, dump_bool), Field("citers", 100, integer(10, 2000))]
link_warnings, _ = state.bind(P, FIELDS)
st.title("Invertibility lab")
st.caption("Finding 6: a fully connected layer narrower than its input cannot represent it uniquely, ReLU needs about "
           "twice the input's width, and depth worsens conditioning. Finding 3: poor deep reconstructions come from "
           "lost rank and poor conditioning, not from a failing optimiser. Rank and condition number are exact "
           "(a float64 Jacobian at the image); clarity comes from the same gradient-descent runs as every page's.")
for w in link_warnings:
    st.warning(w)
name = None
with errors("image: "):
    name = pickers.image_picker(P + "image", 8)[1]


def image_at(size: int):
    if name in sample_images():
        return load_image(sample_images()[name], size)
    return pickers.read_upload_image(st.session_state[P + "image_file"], size)


def progress(bar, what: str):
    return lambda d, t, item: bar.progress(d / t, text=f"{what} {getattr(item, 'title', item)} ({d + 1} of {t})"
                                           if item else "done")


def show(figure, table: list, fields: list, settings: dict, stem: str):
    st.plotly_chart(figure, width="stretch")
    st.dataframe([{k: t.get(k) for k in fields} for t in table], hide_index=True)
    c1, c2, _ = st.columns([1, 1, 4])
    c1.download_button(f"{stem}.json", json.dumps({**settings, "rows": table}, indent=2), f"{stem}.json",
                       key=f"{P}{stem}_json")
    c2.download_button(f"{stem}.csv", lab.table_csv(table, fields), f"{stem}.csv", key=f"{P}{stem}_csv")


mlp_tab, cnn_tab = st.tabs(["MLP: width, depth, activation", "CNN: Jacobian against depth"])
with mlp_tab:
    c = st.columns(3)
    widths = c[0].multiselect("Width (× the input)", WIDTHS, key=P + "widths")
    acts = c[1].multiselect("Activation", list(lab.ACTIVATIONS), key=P + "acts", format_func=lab.ACTIVATIONS.get)
    depths = c[2].multiselect("Depth (hidden layers)", DEPTHS, key=P + "depths")
    c = st.columns(6)
    seeds = c[0].slider("Seeds", 1, 4, key=P + "seeds")
    iters = c[1].number_input("Step budget", 50, 5000, step=50, key=P + "iters")
    msize = c[2].select_slider("Grey image side (px)", MSIZES, key=P + "msize")
    init_seed = c[3].number_input("Init seed", 0, 10_000, key=P + "init_seed", help="the networks' random weights")
    early = c[4].toggle("Early stop", key=P + "early",
                        help="off: the whole budget (ill-conditioned networks keep improving)")
    blur = c[5].toggle("Blur prior", key=P + "blur", help="the default recipe's blur fills what the network leaves "
                       "undetermined with smooth content: it hides lost rank")
    n = len(widths) * len(acts) * len(depths)
    st.caption(f"{n} untrained networks on a {msize}×{msize} grey image ({msize * msize} inputs), {seeds} seeds, "
               f"up to {iters} Adam steps. At 16 px 0.1-1.5 s per network on a 2-core CPU (1.5 s: a run that never "
               "converges uses the whole budget): the defaults take about 10 s.")
    if st.button("Run", type="primary", key=P + "mlp_run", disabled=not n or name is None):
        bar = st.progress(0.0, text="starting…")
        with errors("lab: "):
            img = image_at(msize)
            cfg = {"kind": "mlp", "image": name, "size": msize, "widths": [float(w) for w in widths],
                   "activations": acts, "depths": [int(d) for d in depths], "seeds": list(range(seeds)),
                   "iters": int(iters), "init_seed": int(init_seed), "blur": blur, "early_stop": early}
            rows = list(lab.iter_mlp_lab(img, cfg["widths"], acts, cfg["depths"], cfg["seeds"], cfg["iters"],
                                         cfg["init_seed"], "cpu", blur=blur, early_stop=early, cache=live.disk_cache(),
                                         on_config=progress(bar, "inverting")))
            st.session_state[P + "mlp"] = {"rows": rows, "original": img, "settings": cfg}
    if shown := st.session_state.get(P + "mlp"):
        table = [r.to_json() for r in shown["rows"]]
        show(lab.lab_figure(table, lab.lab_title(shown["settings"])), table, lab.CSV_FIELDS, shown["settings"], "lab")
        st.image(lab.lab_grid(shown["rows"], shown["original"]), caption="seed 0's reconstruction per network (red "
                 "dashed frame: not converged); 'pinv' rows: a linear network's exact pseudo-inverse answer")

with cnn_tab:
    c = st.columns([2, 1, 1])
    arch = c[0].selectbox("Model", list(ARCHITECTURES), key=P + "cmodel", format_func=models.model_label)
    ck = c[1].radio("Checkpoint", ["untrained", "trained"], key=P + "cckpt", horizontal=True)
    sizes = lab.jacobian_sizes(ARCHITECTURES[arch])
    if st.session_state.get(P + "csize") not in sizes:
        st.session_state[P + "csize"] = min(sizes, key=lambda s: abs(s - 16))
    csize = c[2].select_slider("Image size (px)", sizes, key=P + "csize")
    stops = dict(models.stops_of(arch))
    if st.session_state.get(P + "cstops_for") != arch or not isinstance(st.session_state.get(P + "cstops"), list):
        st.session_state[P + "cstops"] = ([n for n in st.session_state.get(P + "cstops") or [] if n in stops]
                                          or lab.default_jacobian_stops(list(stops)))
        st.session_state[P + "cstops_for"] = arch
    chosen = st.multiselect("Depth stops", list(stops), key=P + "cstops", format_func=lambda n: f"{stops[n]} · {n}")
    c = st.columns(2)
    with_clarity = c[0].toggle("Clarity curve too (default preset, 2 seeds)", key=P + "cclarity")
    citers = c[1].number_input("Clarity step budget", 10, 2000, key=P + "citers")
    st.caption("Jacobians in float64 on the CPU. On a 2-core CPU the defaults (ResNet-18, 16 px, 4 stops, clarity) "
               "take about 10 s; at 32 px conv1 (16384 × 3072) takes about 25 s, max-pool 20 s, layer2 12 s, layer4 "
               "5 s; at 64 px layer2 alone 5 minutes (the cost grows with the 4th to 6th power of the side).")
    trained_ok = ck != "trained" or models.trained_panel(arch, P + "c")
    if st.button("Run", type="primary", key=P + "cnn_run", disabled=not chosen or not trained_ok or name is None):
        bar = st.progress(0.0, text="starting…")
        with errors("jacobian: "):
            model, img = models.get_model(arch, ck, csize)[0], image_at(csize)
            rows = list(lab.iter_jacobian(model, img, [n for n in stops if n in chosen],
                                          on_layer=progress(bar, "Jacobian at")))
            if with_clarity:
                lab.add_clarity(rows, iter_curve(arch, img, [ck], [r.layer for r in rows], [0, 1],
                                                 get_preset("default", iters=int(citers)), "auto", models=[model],
                                                 cache=live.disk_cache(), on_stop=lambda d, t, _ck, node:
                                                 progress(bar, "clarity at")(d, t, node)))
            settings = {"kind": "jacobian", "model": arch, "checkpoint": ck, "size": csize, "image": name}
            st.session_state[P + "cnn"] = {"rows": rows, "settings": {**settings, "dtype": "float64"}}
    if shown := st.session_state.get(P + "cnn"):
        table = [r.to_json() for r in shown["rows"]]
        show(lab.jacobian_figure(table, lab.jacobian_title(shown["settings"])), table, lab.JACOBIAN_CSV_FIELDS,
             shown["settings"], "jacobian")
state.sync(P, FIELDS)
