"""Clarity curve page: one image inverted at every chosen depth stop, for each checkpoint."""

import streamlit as st

from core import ARCHITECTURES, PRESETS
from ui import live, models, pickers, state, views
from ui.errors import errors
from ui.nav import page_setup
from ui.state import Field, choice, dump_bool, flag, integer, items, join, number

present = page_setup("Clarity curve")
P = "cur_"
CPU_STOPS = {"efficientnet_lite0": ["conv_stem", "blocks.1.1", "blocks.3.0", "blocks.5.0", "conv_head"],
             "resnet18": ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"]}
GPU = pickers.ON_GPU
FIELDS = [Field("model", "efficientnet_lite0", choice(ARCHITECTURES)),
          Field("cks", ["untrained", "trained"], items(["untrained", "trained"]), join),
          Field("all", GPU, flag, dump_bool), Field("stops", None, items(), join),
          Field("image", "chelsea"), Field("seeds", 4 if GPU else 2, integer(1, 8)),
          Field("iters", 200 if GPU else 80, integer(10, 5000)), Field("size", 128 if GPU else 32, integer(16, 1024)),
          Field("preset", "default", choice(PRESETS)), Field("device", "auto", choice(pickers.device_options())),
          Field("init_seed", 0, integer(0, 10_000)), Field("lr", 0.0, number(0, 1e4), dump=lambda v: f"{v:g}"),
          Field("metric", "clarity", choice(views.METRICS)), Field("batch", "auto", choice(pickers.BATCH_STOPS))]
link_warnings, from_link = state.bind(P, FIELDS)
if not present:
    st.title("Clarity curve")
results, notices = st.container(), st.container()
if not present:
    st.caption("How much of the image each depth keeps: clarity against depth, one line per checkpoint, the band "
               "is the spread over seeds. Before training, deeper is blurrier; training turns late layers abstract "
               "and, the paper says, sharpens early ones (check it here).")
for w in link_warnings:
    notices.warning(w)
with st.sidebar:
    st.header("Curve settings")
    arch = pickers.model_picker(P)
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=P + "cks")
    plan = pickers.stops_picker(P, arch, CPU_STOPS.get(arch))
    with st.expander("Advanced"):
        preset_name, device, init_seed, lr = pickers.recipe(P)
        batch = pickers.batch_stops_picker(P)
    st.caption(f"Device: **{pickers.device_text(device)}**")
    sizes = pickers.fix_size(P, arch, notices)
c_img, c_run = st.columns([3, 2])
with c_run:
    seeds_n, iters, size = pickers.run_size(P, sizes)
image = image_name = None
with c_img, errors("image: "):
    image, image_name = pickers.image_picker(P + "image", size)
usable, loaded = models.checkpoints(arch, cks, size, init_seed, P, notices)
preset, seeds = pickers.preset_with_lr(preset_name, iters, lr), list(range(seeds_n))
total = len(plan) * len(usable)
st.caption(f"{pickers.plural(len(plan), 'depth stop')} × {pickers.plural(len(usable), 'checkpoint')} = "
           f"{pickers.plural(total, 'inversion')} of {pickers.plural(seeds_n, 'seed')}, up to {iters} steps at {size} px.")
problems = [t for ok, t in ((usable, "choose at least one checkpoint that loads"), (plan, "choose at least one depth "
            "stop"), (image is not None, "choose or upload an image")) if not ok]
b1, b2, _ = st.columns([1, 1, 5])
run_clicked = b1.button("Run curve", type="primary", key=P + "run", disabled=bool(problems))
b2.button("Stop", key=P + "stop", help="Stops after keeping every finished depth stop")
if problems:
    st.info("Run curve is not available yet: " + "; ".join(problems) + ".")
base = {"model": arch, "cks": usable, "stops": plan, "size": size, "seeds": seeds, "preset": preset.to_dict(),
        "init_seed": init_seed, "image": image_name}
first = not st.session_state.get(P + "visited")
st.session_state[P + "visited"] = True
auto = first and not problems and live.curve_cached(loaded, usable, plan, image, seeds, preset, device)
if (run_clicked or auto) and not problems:
    view = st.session_state[P + "curve"] = {"base": base, "rows": [], "original": image, "image": image_name}
    with errors("curve: "):
        live.run_curve(arch, image, loaded, usable, plan, seeds, preset, device, view, st.container(), batch)
shown = st.session_state.get(P + "curve")
if shown and shown["rows"]:
    with results if present else st.container():
        if shown["base"] != base:
            st.info("Showing the last curve; the settings have changed since. Press Run curve for the current ones.")
        views.curve(shown, P)
elif not run_clicked and not problems:
    st.info("Choose the settings and press **Run curve**; results appear stop by stop. The defaults take "
            "under a minute on a small CPU.")
state.sync(P, FIELDS)
