"""Manifold page (finding 5): noise, shapes and a flat colour inverted at deep layers, untrained vs trained, with
descriptors of "looks like training data" beside each picture and their validation on the sample photos."""

import json

import streamlit as st

from core import ARCHITECTURES, PRESETS, trained_status
from core import manifold as mf
from core.jobs import Callbacks
from core.report import png_bytes
from ui import live, models, pickers, state, views
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
        bar = st.progress(0.0, text="measuring the descriptors on the sample photos…")
        step = live.LiveView(seeds, show_images=False, show_chart=False)
        judge = models.get_model(mf.JUDGE, "trained", size)[0] if trained_status(mf.JUDGE)["cached"] else None
        describer = mf.Describer(arch, size, trained=judge)
        view["validation"] = mf.validate(size, describer)
        cb = Callbacks(snapshot=step.progress, progress=step.progress, note=st.warning, wait=step.waiting)
        def on_run(done, total, ck, layer, name):
            bar.progress(done / total, text=f"{ck} · {layer} · {name} ({done + 1} of {total})" if layer else "done")

        for row in mf.iter_manifold(arch, inputs, usable, chosen, seeds, preset, device, init_seed, describer, loaded,
                                    cache=live.disk_cache(), callbacks=cb, on_run=on_run):
            view["rows"].append(row)
        step.clear()
shown = st.session_state.get(P + "out")
if shown and shown["rows"] and shown["validation"]:
    rows, v = shown["rows"], shown["validation"]
    with results if present else st.container():
        if shown["base"] != base:
            st.info("Showing the last run; the settings have changed since. Press Run for the current ones.")
        st.markdown("\n".join(f"- {line}" for line in mf.summary_lines(v, mf.compare(rows, v))))
        descs = list(v["descriptors"])
        ran = [c for c in ("untrained", "trained") if any(r.checkpoint == c for r in rows)]
        st.image([views.upscale(im, 128) for im in shown["inputs"].values()], width=128, caption=[
            f"input {n} · " + " · ".join(mf.captions(mf.by_input(rows, n) or {}, descs)) for n in shown["inputs"]])
        for layer, label in mf.layers_of(rows):
            st.markdown(f"**{label}** · `{layer}` — reconstructions of seed 0")
            for col, ck in zip(st.columns(len(ran)), ran):
                mine = [r for r in rows if r.layer == layer and r.checkpoint == ck]
                col.image([views.upscale(r.result.images[0], 128) for r in mine], width=128,
                          caption=[mf.cell_caption(r, descs) for r in mine])
        st.plotly_chart(mf.figure(rows, v), width="stretch")
        st.dataframe(mf.validation_table(v), hide_index=True)
        d1, d2, _ = st.columns([1, 1, 4])
        d1.download_button("Manifold (JSON)", json.dumps(mf.to_json(rows, v, shown["base"]), indent=2),
                           "manifold.json", "application/json", key=P + "json")
        d2.download_button("Grid (PNG)", png_bytes(mf.grid(rows, shown["inputs"], title=mf.title(shown["base"]))),
                           "manifold.png", "image/png", key=P + "png")
elif not run_clicked and not problems:
    st.info("Press **Run**: the defaults finish in well under a minute on a small CPU.")
state.sync(P, FIELDS)
