"""Feature inversion explorer (Badger 2022): `streamlit run app.py`. This file is the Invert page.

Invert (the landing page): one layer, several seeds, live, with the numbers that make it
trustworthy. The other pages live in pages/; shared widgets in ui/; all computation in core/.
"""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import ARCHITECTURES, PRESETS, get_preset, resolve_layer
from core.estimate import human, measure, suggest_cheaper
from core.runcache import run_key
from ui import common as ui
from ui.nav import page_setup

page_setup("Invert")

P = "inv_"
KEYS = ["model", "ckpt", "layer", "image", "seeds", "iters", "size", "preset", "device"]


def _choice(options):
    def parse(raw):
        if raw not in options:
            raise ValueError(raw)
        return raw
    return parse


def _int(lo, hi):
    def parse(raw):
        v = int(raw)
        if not lo <= v <= hi:
            raise ValueError(raw)
        return v
    return parse


PARSERS = {"model": _choice(ARCHITECTURES), "ckpt": _choice(["untrained", "trained"]), "layer": str,
           "image": str, "seeds": _int(1, 8), "iters": _int(10, 5000), "size": _int(16, 512),
           "preset": _choice(PRESETS), "device": _choice(ui.device_options())}


@st.cache_data(show_spinner="Measuring a few steps to estimate the time…", max_entries=64)
def _estimate(arch, ck_id, size, seeds, layer, preset_json, device, init_seed, _model):
    import json

    preset = get_preset("default").replace(**json.loads(preset_json))
    return measure(_model, layer, size, seeds, preset, device, probe_steps=3)  # core locks tracing and steps


def _cheaper(values):
    for k, v in values.items():
        st.session_state[P + k] = v


st.title("Invert a layer")
st.caption("What does a layer keep of an image? Gradient descent from random starts (seeds) looks for inputs "
           "whose embedding matches the image's. Seeds that match equally well but look different show that "
           "the layer's representation is not unique.")

from_link = any(k in st.query_params for k in KEYS)  # read before the page writes its settings into the URL
layer_from_link = ("layer" in st.query_params and P + "layer" not in st.session_state
                   and f"_keep_{P}layer" not in st.session_state)
link_warnings = ui.keep_state(KEYS, ui.DEFAULTS, PARSERS, P, use_query=True)
ui.keep_state(["node", "init_seed", "lr"], {"node": "", "init_seed": 0, "lr": 0.0}, {}, P)
for w in link_warnings:
    st.warning(w)
notices = st.container()  # settings the page had to correct (a link's layer, a size below the model's minimum)

# A run interrupted by the Stop button (or any other rerun) keeps what it computed.
salvaged = ui.salvage(P + "live")
if salvaged:
    partial, meta = salvaged
    st.session_state[P + "result"] = {**meta, "result": partial}

# ------------------------------------------------------------------ controls
with st.sidebar:
    st.header("Model")
    arch = st.selectbox("Model", list(ARCHITECTURES), key=P + "model",
                        format_func=ui.model_label)
    ckpt = st.radio("Checkpoint", ["untrained", "trained", "upload"], key=P + "ckpt", horizontal=True,
                    help="untrained: the architecture's random initialisation; trained: ImageNet weights; "
                         "upload: your own state dict (.pth/.pt/.safetensors/.bin, read as tensors only)")
    upload = None
    if ckpt == "upload":
        upload = st.file_uploader("State dict", type=ui.CHECKPOINT_SUFFIXES, key=P + "ckfile")
    trained_ok = True
    if ckpt == "trained":
        trained_ok = ui.trained_panel(arch, P)

    stops = ui.stops_of(arch)
    nodes = [n for n, _ in stops]
    labels = dict(stops)
    if st.session_state.get(P + "layer") not in nodes:
        asked = st.session_state.get(P + "layer")
        st.session_state[P + "layer"] = ui.default_layer(arch)
        if layer_from_link and asked:
            notices.warning(f"ignored the link's layer={asked!r}: {arch} has no depth stop of that name (any other "
                            f"graph node goes in Advanced); showing {st.session_state[P + 'layer']}")
    sizes = ui.sizes_for(arch)
    if st.session_state.get(P + "size") not in sizes:
        want = st.session_state.get(P + "size") or 64
        st.session_state[P + "size"] = min(sizes, key=lambda s: abs(s - want))
        notices.warning(ui.size_notice(arch, want, st.session_state[P + "size"], sizes))

    layer = st.select_slider("Depth (forward order)", nodes, key=P + "layer",
                             format_func=lambda n: f"{labels[n]} · {n}")
    shapes = ui.shapes_of(arch, st.session_state[P + "size"])
    st.caption(f"Stop {nodes.index(layer) + 1} of {len(nodes)}: **{labels[layer]}** (`{layer}`)"
               + (f", embedding shape {shapes[layer]}" if layer in shapes else ""))
    with st.expander("Advanced"):
        node = st.text_input("Any graph node (overrides the depth slider)", key=P + "node",
                             placeholder="e.g. blocks.2.0.conv_pw").strip()
        preset_name = st.selectbox("Preset", list(PRESETS), key=P + "preset",
                                   help="default: Adam, relative L1, image kept in [0, 1] (converges everywhere); "
                                        "paper: the paper's plain steps and blur schedule")
        device = st.selectbox("Device", ui.device_options(), key=P + "device")
        init_seed = st.number_input("Untrained init seed", 0, 10_000, key=P + "init_seed")
        lr = st.number_input("Starting learning rate (0 = the preset's)", 0.0, 1e4, step=0.01, format="%g",
                             key=P + "lr", help="overrides the preset's lr_start; lr_end keeps the preset's ratio")
    st.caption(f"Device: **{ui.device_text(device)}**")

c_img, c_run = st.columns([3, 2])
with c_run:
    seeds_n = st.slider("Seeds", 1, 8, key=P + "seeds")
    iters = st.number_input("Iterations", 10, 5000, step=10, key=P + "iters")
    size = st.select_slider("Image size (px)", sizes, key=P + "size")

ui.remember(KEYS + ["node", "init_seed", "lr"], P)
st.query_params.from_dict({k: str(st.session_state[P + k]) for k in KEYS})

image = image_name = None
with c_img, ui.errors("image: "):
    image, image_name = ui.image_picker(P + "image", size)

model = ck_id = ck_display = None
if trained_ok:
    with ui.errors("checkpoint: "):
        model, ck_id, ck_display = ui.get_model(arch, ckpt, size, int(init_seed), upload)

preset = ui.preset_with_lr(preset_name, int(iters), float(lr))
if lr and lr > 10 * get_preset(preset_name).lr_start:
    st.warning(f"learning rate {lr:g} is {lr / get_preset(preset_name).lr_start:.0f}× the {preset_name} preset's "
               f"({get_preset(preset_name).lr_start:g}): the run may diverge or end far from the image; 0 restores "
               "the preset's")
seeds = list(range(int(seeds_n)))
target = node or layer
ready = model is not None and image is not None
settings = key = None
if ready:
    with ui.errors("layer: "):
        resolve_layer(model, target)
        settings = ui.settings_of(arch, ck_id, init_seed, target, size, seeds, preset, device)
        key = run_key(settings, image)
    ready = key is not None

# ------------------------------------------------------------------ estimate
est = None
cached = ready and ui.cached_result(key) is not None
with c_run:
    if cached:
        st.success("This exact run is in the cache: Run shows it at once.")
    elif ready:
        with ui.errors("estimate: "):
            try:
                est = _estimate(arch, ck_id, size, len(seeds), target, __import__("json").dumps(preset.to_dict()),
                                device, int(init_seed), model)
            except RuntimeError as exc:
                if not ui.is_oom(exc):
                    raise
                st.info(f"Out of memory measuring {len(seeds)} seeds at once on {ui.device_text(device)}: Run "
                        "splits them into smaller batches by itself.")
        if est is not None:
            st.caption(f"Estimated time on {ui.device_text(device)}: **{human(est.seconds)}** "
                       f"({est.step_s * 1000:.0f} ms per step, measured).")
            slow = 60 if ui.resolve_device(device).type == "cpu" else 120
            if est.seconds > slow:
                cheaper = suggest_cheaper(est, size, len(seeds), int(iters), budget_s=20,
                                          min_size=ARCHITECTURES[arch].min_size)
                st.warning(f"These settings take {human(est.seconds)} here.")
                if cheaper and cheaper["size"] in sizes:
                    st.button(f"Use {cheaper['size']} px, {cheaper['seeds']} seeds, {cheaper['iters']} iterations "
                              f"({human(cheaper['seconds'])})", key=P + "cheaper", on_click=_cheaper,
                              args=({k: cheaper[k] for k in ("size", "seeds", "iters")},))

b1, b2, _ = st.columns([1, 1, 5])
run_clicked = b1.button("Run", type="primary", key=P + "run", disabled=not ready)
b2.button("Stop", key=P + "stop", help="Stops the run and keeps what it computed so far")

# A first-time visitor sees a finished example without clicking: the current (default) settings
# run by themselves once, if they are cached or quick.
first_visit = not st.session_state.get(P + "visited")
st.session_state[P + "visited"] = True
auto = (first_visit and ready and P + "result" not in st.session_state
        and (cached or (est is not None and est.seconds < 30)))

if ready and (run_clicked or auto):
    if auto:
        st.caption("The link's settings, run once on opening it; change anything and press Run." if from_link
                   else "A first example with the default settings; change anything and press Run.")
    meta = {"settings": settings, "model": model, "ck_display": ck_display, "image_name": image_name}
    view = ui.LiveView(seeds)
    with ui.errors("run: "):
        result = ui.execute(model, target, image, seeds, preset, device, key, view, P + "live", meta=meta)
        if result is not None:
            st.session_state[P + "result"] = {**meta, "result": result}

shown = st.session_state.get(P + "result")
if shown:
    st.divider()
    if shown.get("settings") != settings:
        st.info("Showing the last run; the settings have changed since. Press Run for the current settings.")
    r = shown["result"]
    if r.stopped_early:
        st.warning(f"Stopped at step {r.steps_done} of {r.preset.iters}: these are the images and numbers so far "
                   f"(not stored in the cache).")
    ui.show_result(r, shown.get("model"), shown.get("ck_display"), shown.get("image_name", ""), key=P + "res")
    with st.expander("m_g and m_i during the run", expanded=True):
        st.plotly_chart(ui.trajectory_figure(r.history, r.seeds, r.metrics["reference_l2"],
                                             r.metrics["shift_input_l2"]), width="stretch")
elif not ready:
    st.info("Fix the settings above to run.")
