"""Manifold page (finding 5): noise, shapes and a flat colour inverted at deep layers, untrained vs trained, with
descriptors of "looks like training data" beside each picture and their validation on the sample photos."""

import streamlit as st

from core import ARCHITECTURES, PRESETS
from core import manifold as mf
from ui import manifold_view, models, pickers, state
from ui.errors import errors
from ui.nav import page_setup
from ui.state import Field, choice, integer, items, join, number

present = page_setup("Manifold")
P, GPU, KINDS = "mf_", pickers.ON_GPU, [*mf.KINDS, "upload"]
FIELDS = [Field("model", "efficientnet_lite0", choice(ARCHITECTURES)),
          Field("cks", ["untrained", "trained"], items(["untrained", "trained"]), join),
          Field("layers", None, items(), join),
          Field("inputs", list(mf.KINDS) if GPU else ["noise", "disc"], items(KINDS), join),
          Field("size", 224 if GPU else 64, integer(16, 1024)), Field("seeds", 4 if GPU else 2, integer(1, 8)),
          Field("iters", 300 if GPU else 150, integer(10, 5000)), Field("preset", "default", choice(PRESETS)),
          Field("device", "auto", choice(pickers.device_options())), Field("init_seed", 0, integer(0, 10_000)),
          Field("lr", 0.0, number(0, 1e4), dump=lambda v: f"{v:g}")]
link_warnings, _ = state.bind(P, FIELDS)
if not present:
    st.title("Manifold: what deep layers make of non-natural inputs")
    st.caption("Finding 5: a trained network's deep layers should pull noise, shapes or a flat colour toward natural "
               "images. Under each picture: its spectral slope and BN-statistics distance; the summary and the table "
               "say whether these numbers separate the sample photos from the generated inputs at all.")
results, notices = st.container(), st.container()
for w in link_warnings:
    notices.warning(w)
with st.sidebar:
    st.header("Manifold settings")
    arch = pickers.model_picker(P)
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=P + "cks")
    nodes, labels = [n for n, _ in models.stops_of(arch)], dict(models.stops_of(arch))
    if st.session_state.get(P + "for") != arch:  # a new model (or a link): keep its valid layers, else the defaults
        st.session_state[P + "layers"] = [n for n in st.session_state.get(P + "layers") or [] if n in nodes] or \
            mf.default_layers(models.get_model(arch, "untrained", 224)[0])[0 if GPU else 1:]  # CPU: the deep two
        st.session_state[P + "for"] = arch
    chosen = st.multiselect("Layers", nodes, key=P + "layers", format_func=lambda n: f"{labels[n]} · {n}")
    with st.expander("Advanced"):
        preset_name, device, init_seed, lr = pickers.recipe(P)
    sizes = pickers.fix_size(P, arch, notices)
c_in, c_run = st.columns([3, 2])
kinds = c_in.multiselect("Inputs", KINDS, key=P + "inputs",
                         help="; ".join(f"{k}: {t}" for k, t in mf.KIND_TEXT.items()))
up = c_in.file_uploader("Upload an input image", key=P + "upfile") if "upload" in kinds else None
with c_run:
    seeds_n, iters, size = pickers.run_size(P, sizes)
inputs, usable, loaded = {}, [], []
with errors("inputs: ", box=notices):
    inputs = mf.load_inputs([k for k in kinds if k != "upload"], size, uploads={up.name: up.getvalue()} if up else None)
for ck in cks:
    if ck == "trained" and not models.trained_panel(arch, P, box=notices):
        continue
    with errors(f"{ck} checkpoint: ", box=notices):
        loaded.append(models.get_model(arch, ck, size, init_seed)[0])
        usable.append(ck)
preset, seeds = pickers.preset_with_lr(preset_name, iters, lr), list(range(seeds_n))
problems = [t for good, t in ((usable, "choose a checkpoint that loads"), (chosen, "choose a layer"),
                              (inputs, "choose or upload an input")) if not good]
n_runs = len(inputs) * len(usable) * len(chosen)
st.caption(f"{len(inputs)} inputs × {len(usable)} checkpoints × {len(chosen)} layers = "
           f"{pickers.plural(n_runs, 'inversion')} of {pickers.plural(seeds_n, 'seed')}, ≤ {iters} steps, {size} px.")
run_clicked = st.button("Run", type="primary", key=P + "run", disabled=bool(problems))
if problems:
    st.info("Run is not available yet: " + "; ".join(problems) + ".")
base = {"model": arch, "checkpoints": usable, "layers": chosen, "inputs": list(inputs), "size": size, "seeds": seeds,
        "preset": preset.name, "iters": iters, "device": pickers.device_text(device), "init_seed": init_seed}
if run_clicked and not problems:
    view = st.session_state[P + "out"] = {"base": base, "rows": [], "inputs": inputs, "validation": None}
    with errors("manifold: "):
        manifold_view.run(arch, inputs, usable, chosen, seeds, preset, device, init_seed, loaded, size, view)
shown = st.session_state.get(P + "out")
if shown and shown["rows"] and shown["validation"]:
    manifold_view.show(shown, base, results if present else st.container(), P)
elif not run_clicked and not problems:
    st.info("Press **Run**: the defaults finish in well under a minute on a small CPU.")
state.sync(P, FIELDS)
