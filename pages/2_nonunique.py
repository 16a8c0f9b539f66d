"""Non-uniqueness page: m_g and m_i per seed against the step, and how far apart the seeds end up."""

import streamlit as st

from core import ARCHITECTURES, PRESETS, get_preset
from core.runcache import run_key
from core.verdict import reading
from ui import common as ui
from ui.nav import page_setup

page_setup("Non-uniqueness")

P = "nu_"
KEYS = ["model", "ckpt", "layer", "image", "seeds", "iters", "size", "preset", "device"]

st.title("Non-uniqueness: not converged, or not unique?")
st.markdown(
    "Left: how close each seed's embedding gets to the image's (**m_g**), against the distance at which a "
    "barely changed copy of the image lands (**m_r**, dotted). Right: how close each seed's picture gets to "
    "the image (**m_i**), against the pixel distance of that near-copy (**‖a′−a‖₂**, dotted). When m_g falls "
    "below m_r while m_i stays far above its reference — and the seeds end far apart in pixels but close in "
    "the layer — the layer maps different images to the same embedding: its representation is non-unique."
)

ui.keep_state(KEYS, {**ui.DEFAULTS, "seeds": 3, "iters": 300 if ui.ON_GPU else 150}, {}, P)

with st.sidebar:
    st.header("Run")
    arch = st.selectbox("Model", list(ARCHITECTURES), key=P + "model",
                        format_func=ui.model_label)
    ckpt = st.radio("Checkpoint", ["untrained", "trained"], key=P + "ckpt", horizontal=True)
    trained_ok = ckpt != "trained" or ui.trained_panel(arch, P)
    stops = ui.stops_of(arch)
    nodes = [n for n, _ in stops]
    labels = dict(stops)
    if st.session_state.get(P + "layer") not in nodes:
        st.session_state[P + "layer"] = ui.default_layer(arch)
    layer = st.select_slider("Depth (forward order)", nodes, key=P + "layer",
                             format_func=lambda n: f"{labels[n]} · {n}")
    preset_name = st.selectbox("Preset", list(PRESETS), key=P + "preset")
    device = st.selectbox("Device", ui.device_options(), key=P + "device")
    st.caption(f"Device: **{ui.device_text(device)}**")

c_img, seeds_n, iters, size = ui.run_controls(P, arch, min_seeds=2)
ui.remember(KEYS, P)

image = image_name = None
with c_img, ui.errors("image: "):
    image, image_name = ui.image_picker(P + "image", size)

model = ck_id = None
if trained_ok:
    with ui.errors("checkpoint: "):
        model, ck_id, _ = ui.get_model(arch, ckpt, size)
preset = get_preset(preset_name, iters=int(iters))
seeds = list(range(int(seeds_n)))
ready = model is not None and image is not None
key = run_key(ui.settings_of(arch, ck_id, 0, layer, size, seeds, preset, device), image) if ready else None

b1, b2, _ = st.columns([1, 1, 5])
run_clicked = b1.button("Run", type="primary", key=P + "run", disabled=not ready)
b2.button("Stop", key=P + "stop")
salvaged = ui.salvage(P + "live")
if salvaged:
    st.session_state[P + "result"] = {**salvaged[1], "result": salvaged[0]}

if ready:
    result = None
    if run_clicked:
        view = ui.LiveView(seeds)
        with ui.errors("run: "):
            result = ui.execute(model, layer, image, seeds, preset, device, key, view, P + "live",
                                meta={"key": key, "model": model})
    else:
        result = ui.cached_result(key)  # the same settings as a finished run: show at once
    if result is not None:
        st.session_state[P + "result"] = {"key": key, "model": model, "result": result}

shown = st.session_state.get(P + "result")
if shown:
    r = shown["result"]
    m = r.metrics
    st.divider()
    if shown.get("key") != key:
        st.info("Showing the last run; the settings have changed since. Press Run for the current settings.")
    if r.stopped_early:
        st.warning(f"Stopped at step {r.steps_done} of {r.preset.iters}: the numbers so far.")
    st.plotly_chart(ui.trajectory_figure(r.history, r.seeds, m["reference_l2"], m["shift_input_l2"], height=380),
                    width="stretch")
    st.markdown(f"**Reading:** {reading(r)}")
    st.image([ui.upscale(r.original, 160)] + [ui.upscale(im, 160) for im in r.images],
             caption=["original"] + [f"seed {s}" for s in r.seeds], width=160)
    with ui.errors("distances: "):
        import plotly.graph_objects as go

        names = [f"seed {s}" for s in r.seeds]
        c1, c2 = st.columns(2)
        for col, (title, mat, ref) in zip((c1, c2), (
                ("between reconstructions (pixels, ‖a_i − a_j‖₂)", m["seed_distances_input"], m["shift_input_l2"]),
                ("between their embeddings (‖O(a_i) − O(a_j)‖₂)", m["seed_distances_embedding"], m["reference_l2"]))):
            fig = go.Figure(go.Heatmap(z=mat, x=names, y=names, colorscale="Viridis", texttemplate="%{z:.3g}"))
            fig.update_layout(title=f"{title}<br><sub>reference {ref:.3g}</sub>", height=340,
                              margin={"l": 10, "r": 10, "t": 60, "b": 10}, yaxis={"autorange": "reversed"})
            col.plotly_chart(fig, width="stretch")
        st.caption("Seeds far apart in pixels (left, compared with ‖a′−a‖₂) but close in the layer (right, "
                   "compared with m_r) are different images the layer treats as the same.")
elif not run_clicked:
    st.info("Press **Run** (the default is a mid-depth layer of the trained EfficientNet-Lite0, 3 seeds).")
