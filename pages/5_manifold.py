"""Manifold page (finding 5): noise, shapes and a flat colour inverted at deep layers, untrained vs trained, with
descriptors of "looks like training data" beside each picture and their validation on the sample photos."""

import streamlit as st

from core.studies import KIND_TEXT, KINDS, deep_stops, load_inputs
from ui import manifold_view, models, pickers, state
from ui.errors import errors
from ui.nav import heading, page_setup
from ui.notices import ignored_stops, link_values, plan_estimate
from ui.state import Field, items, join

present = page_setup("Manifold")
GPU, CHOICES = pickers.ON_GPU, [*KINDS, "upload"]  # generated inputs, then an upload
FIELDS = [Field("model", "efficientnet_lite0", pickers.MODEL),
          Field("cks", ["untrained", "trained"], items(["untrained", "trained"]), join),
          Field("layers", None, items(), join),
          Field("inputs", list(KINDS) if GPU else ["noise", "disc"], items(CHOICES), join),
          *pickers.run_fields({"seeds": 4 if GPU else 2, "iters": 300 if GPU else 150, "size": 224 if GPU else 64})]
page = state.PageState("mf_", FIELDS)
link = link_values(page, "layers")  # before bind: checked against the model's stops below
link_warnings, _ = page.bind()
if not present:
    heading("Manifold: what deep layers make of non-natural inputs")
    st.caption("Finding 5: a trained network's deep layers should pull noise, shapes or a flat colour toward natural "
               "images. Under each picture: its spectral slope and BN-statistics distance; the summary and the table "
               "say whether these numbers separate the sample photos from the generated inputs at all.")
results, notices = st.container(), st.container()
for w in link_warnings:
    notices.warning(w)
with st.sidebar:
    st.header("Manifold settings")
    arch = pickers.model_picker(page, notices)
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=page.key("cks"))
    nodes, labels = [n for n, _ in models.stops_of(arch)], dict(models.stops_of(arch))
    if note := ignored_stops(link.get("layers"), arch, nodes, "layers"):
        notices.warning(note)
    if page.get("for") != arch:  # a new model (or a link): keep its valid layers, else the defaults
        page["layers"] = [n for n in page.get("layers") or [] if n in nodes] or \
            deep_stops(models.get_model(arch, "untrained", 224)[0])  # finding 5's layers
        page["for"] = arch
    chosen = st.multiselect("Layers", nodes, key=page.key("layers"), format_func=lambda n: f"{labels[n]} · {n}")
    with st.expander("Advanced"):
        preset_name, device, init_seed, lr = pickers.recipe(page)
    sizes = pickers.fix_size(page, arch, notices)
c_in, c_run = st.columns([3, 2])
kinds = c_in.multiselect("Inputs", CHOICES, key=page.key("inputs"),
                         help="; ".join(f"{k}: {t}" for k, t in KIND_TEXT.items()))
up = c_in.file_uploader("Upload an input image", key=page.key("upfile")) if "upload" in kinds else None
with c_run:
    seeds_n, iters, size = pickers.run_size(page, sizes)
inputs, usable, loaded = {}, [], []
with errors("inputs: ", box=notices):
    inputs = load_inputs([k for k in kinds if k != "upload"], size, uploads={up.name: up.getvalue()} if up else None)
for ck in cks:
    if ck == "trained" and not models.trained_panel(arch, page.prefix, box=notices):
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
estimate_box = st.container()
b1, b2, _ = st.columns([1, 1, 5])
run_clicked = b1.button("Run", type="primary", key=page.key("run"), disabled=bool(problems))
b2.button("Stop", key=page.key("stop"), disabled=not run_clicked or bool(problems),
          help="Stops the runs; every finished one is kept" if run_clicked else "nothing is running")
if problems:
    st.info("Run is not available yet: " + "; ".join(problems) + ".")
else:  # every input costs the same per step: one input's runs measured, times the inputs
    plan_estimate(estimate_box, [(arch, m, ck, chosen) for ck, m in zip(usable, loaded)], next(iter(inputs.values())),
                  seeds, preset, device, times=len(inputs), what=f"over {pickers.plural(len(inputs), 'input')}")
base = {"model": arch, "checkpoints": usable, "layers": chosen, "inputs": list(inputs), "size": size, "seeds": seeds,
        "preset": preset.name, "iters": iters, "device": pickers.device_text(device), "init_seed": init_seed}
if run_clicked and not problems:
    view = page["out"] = {"base": base, "rows": [], "inputs": inputs, "validation": None}
    with errors("manifold: "):
        manifold_view.run(arch, inputs, usable, chosen, seeds, preset, device, init_seed, loaded, size, view)
shown = page.get("out")
if shown and shown["rows"] and shown["validation"]:
    manifold_view.show(shown, base, results if present else st.container(), page)
elif not run_clicked and not problems:
    st.info("Press **Run**: the descriptors are measured on the sample photos first, then every input is inverted at "
            "every layer and checkpoint; the bar says which run it is on.")
page.sync()
