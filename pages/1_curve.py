"""Clarity curve page: one image inverted at every chosen depth stop, for each checkpoint."""

import csv
import io
import json

import streamlit as st

from core import ARCHITECTURES, PRESETS, get_preset
from core.curve import CurveRow
from core.report import METRICS, curve_figure, gallery, png_bytes, unconverged_text
from core.runcache import run_key
from core.verdict import reading
from ui import common as ui
from ui.nav import page_setup

page_setup("Clarity curve")

P = "cur_"
CPU_STOPS = {"efficientnet_lite0": ["conv_stem", "blocks.1.1", "blocks.3.0", "blocks.5.0", "conv_head"],
             "resnet18": ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4"]}


def default_stops(arch: str) -> list[str]:
    nodes = [n for n, _ in ui.stops_of(arch)]
    if ui.ON_GPU:
        return nodes
    if arch in CPU_STOPS:
        return CPU_STOPS[arch]
    step = max(1, len(nodes) // 6)
    return nodes[::step][:6]


st.title("Clarity curve")
st.caption("How much of the image each depth keeps: clarity against depth, one line per checkpoint, the band "
           "is the spread over seeds. The paper's findings: before training, deeper is blurrier; training "
           "turns late layers abstract and, the paper says, sharpens early ones (check it here: with a decoder "
           "that converges on both, EfficientNet-Lite0's early blocks are not sharper after training at 64 px).")

ui.keep_state(["model", "cks", "image", "seeds", "iters", "size", "preset", "device", "metric", "all"],
              {"model": "efficientnet_lite0", "cks": ["untrained", "trained"], "image": "chelsea",
               "seeds": 4 if ui.ON_GPU else 2, "iters": 200 if ui.ON_GPU else 80, "size": 128 if ui.ON_GPU else 32,
               "preset": "default", "device": "auto", "metric": "clarity", "all": ui.ON_GPU}, {}, P)

with st.sidebar:
    st.header("Curve settings")
    arch = st.selectbox("Model", list(ARCHITECTURES), key=P + "model",
                        format_func=ui.model_label)
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=P + "cks")
    if "trained" in cks and not ui.trained_panel(arch, P):
        cks = [c for c in cks if c != "trained"]
    stops = ui.stops_of(arch)
    labels = dict(stops)
    nodes = [n for n, _ in stops]
    all_stops = st.toggle(f"All {len(nodes)} depth stops", key=P + "all")
    if st.session_state.get(P + "stops_for") != arch:
        st.session_state[P + "stops"] = default_stops(arch)
        st.session_state[P + "stops_for"] = arch
    chosen = st.multiselect("Depth stops", nodes, key=P + "stops", disabled=all_stops,
                            format_func=lambda n: f"{labels[n]} · {n}")
    plan_nodes = nodes if all_stops else [n for n in nodes if n in chosen]
    preset_name = st.selectbox("Preset", list(PRESETS), key=P + "preset")
    device = st.selectbox("Device", ui.device_options(), key=P + "device")
    st.caption(f"Device: **{ui.device_text(device)}**")

c_img, seeds_n, iters, size = ui.run_controls(P, arch, min_seeds=1)
ui.remember(["model", "cks", "image", "seeds", "iters", "size", "preset", "device", "metric", "all", "stops"], P)

image = image_name = None
with c_img, ui.errors("image: "):
    image, image_name = ui.image_picker(P + "image", size)

total = len(plan_nodes) * len(cks)
st.caption(f"{ui.plural(len(plan_nodes), 'depth stop')} × {ui.plural(len(cks), 'checkpoint')} = "
           f"{ui.plural(total, 'inversion')} of {ui.plural(int(seeds_n), 'seed')}, {int(iters)} iterations at "
           f"{size} px.")
ready = image is not None and total > 0
if not cks:
    st.warning("Choose at least one checkpoint.")
if not plan_nodes:
    st.warning("Choose at least one depth stop.")
b1, b2, _ = st.columns([1, 1, 5])
run_clicked = b1.button("Run curve", type="primary", key=P + "run", disabled=not ready)
b2.button("Stop", key=P + "stop", help="Stops after keeping every finished depth stop")
ui.salvage(P + "live")  # a stopped stop is dropped; finished stops stay in the curve

preset = get_preset(preset_name, iters=int(iters))
seeds = list(range(int(seeds_n)))
base = {"model": arch, "cks": list(cks), "stops": plan_nodes, "size": size, "seeds": seeds,
        "preset": preset.to_dict(), "image": image_name}

if run_clicked and ready:
    curve = {"base": base, "rows": [], "original": image, "image": image_name}
    st.session_state[P + "curve"] = curve
    overall = st.progress(0.0, text="starting…")
    live_box = st.container()
    partial_chart = st.empty()
    done = 0
    with ui.errors("curve: "):
        for ck in cks:
            model, ck_id, ck_display = ui.get_model(arch, ck, size)
            for node in plan_nodes:
                depth = nodes.index(node)
                overall.progress(done / total, text=f"{ck} · {labels[node]} ({done + 1} of {total})")
                key = run_key(ui.settings_of(arch, ck_id, 0, node, size, seeds, preset, device), image)
                view = ui.LiveView(seeds, show_images=False, show_chart=False, container=live_box)
                res = ui.execute(model, node, image, seeds, preset, device, key, view, P + "live")
                if res is None:
                    continue
                curve["rows"].append(CurveRow(ck_display, node, depth, labels[node], res))
                done += 1
                so_far = curve_figure([r.to_json() for r in curve["rows"]], "clarity", "clarity so far")
                partial_chart.plotly_chart(so_far, width="stretch")
        overall.progress(1.0, text=f"done: {done} of {total}")
    partial_chart.empty()

curve = st.session_state.get(P + "curve")
if curve and curve["rows"]:
    rows = curve["rows"]
    table = [r.to_json() for r in rows]
    st.divider()
    if curve["base"] != base:
        st.info("Showing the last curve; the settings have changed since. Press Run curve for the current ones.")
    metric = st.selectbox("Metric", list(METRICS), key=P + "metric", format_func=lambda m: METRICS[m])
    b = curve["base"]
    title = f"{b['model']} · {b['size']} px · {len(b['seeds'])} seeds · image {curve['image']}"
    st.plotly_chart(curve_figure(table, metric, title), width="stretch")
    bad = unconverged_text(table)
    if bad:
        st.warning("Not converged, borderline or degenerate (hollow on the chart, framed in red in the gallery; "
                   f"not the layer's answer yet): {bad}")
    else:
        st.caption("Every point converged: m_g ≤ m_r on every seed.")
    st.subheader("Gallery (first seed): one row per checkpoint, one column per depth stop")
    gal = gallery(rows, curve["original"])
    st.image(gal)
    cells = {f"{r.checkpoint} · {r.label} ({r.layer})": r for r in rows}
    pick = st.selectbox("See every seed of a cell", list(cells), key=P + "cell")
    r = cells[pick]
    m = r.result.metrics
    st.image([ui.upscale(r.result.original, 192)] + [ui.upscale(im, 192) for im in r.result.images],
             caption=["original"] + [f"seed {s} · SSIM {m['ssim'][i]:.2f} · m_i {m['input_l2'][i]:.2f} · "
                                     f"m_g {m['embedding_l2'][i]:.3g}"
                                     + ("" if m["converged"][i] else " · not converged")
                                     for i, s in enumerate(r.result.seeds)], width=192)
    st.markdown(f"**Reading:** {reading(r.result)}")
    with st.expander("Table"):
        st.dataframe(table, width="stretch")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Curve (CSV)", buf.getvalue(), "curve.csv", "text/csv", key=P + "csv")
    d2.download_button("Curve (JSON)", json.dumps({**b, "image": curve["image"], "rows": table}, indent=1),
                       "curve.json", "application/json", key=P + "json")
    d3.download_button("Gallery (PNG)", png_bytes(gal), "gallery.png", "image/png", key=P + "gal")
elif not run_clicked:
    st.info("Choose the settings and press **Run curve**; results appear stop by stop. The defaults take "
            "under a minute on a small CPU.")
