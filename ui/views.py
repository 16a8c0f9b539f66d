"""Result views: one run (normal and presentation size), its trajectory, a curve, the seed distances.

Figures and files come from `core.report` (the CLI writes the same ones); this module lays them out.
"""

from __future__ import annotations

import json

import streamlit as st
import torch

from core.engine import InversionResult, reading, status
from core.images import upscale
from core.models import predict
from core.report import (
    METRICS,
    measures_text,
    curve_csv,
    curve_figure,
    distance_figures,
    distances_csv,
    gallery,
    pair_grid,
    pair_text,
    png_bytes,
    result_grid,
    run_title,
    trajectory_csv,
    trajectory_figure,
    unconverged_text,
)
from ui.errors import errors
from ui.names import stem
from ui.state import PageState

PRESENT_PX = 256  # reconstructions in presentation mode (a projector at 1280x720)
PAIR_PX, PAIR_PRESENT_PX = 144, 192  # two rows (side by side) on one 1280x720 screen, normal and presentation


def file_stem(result: InversionResult, ck_display: str | None = None) -> str:
    """A download's name without its suffix: model, checkpoint, stop and size ("efficientnet_lite0_trained_
    blocks.1.1_64px"), so files from several runs do not all read `inversion_layer2.png`."""
    ck = (ck_display or result.checkpoint or "").split(" (")[0]
    ck = ck.rsplit(".", 1)[0] if ck.endswith((".pt", ".pth", ".bin", ".safetensors")) else ck
    return stem(result.model, ck, result.layer, f"{result.size}px")


def steps_text(result: InversionResult) -> str:
    """"150 steps", "120 of 150 steps (converged early)", or "220 steps (the 150-step run, then +100)"."""
    budget = result.preset.iters
    more = (result.spec or {}).get("continued")
    if more:
        return f"{result.steps_done} steps (the {budget}-step run, then +{' +'.join(map(str, more))})"
    if result.metrics.get("stop_reason") == "converged" and result.steps_done < budget:
        return f"{result.steps_done} of {budget} steps (converged early)"
    return f"{result.steps_done} steps"


def _predictions(result: InversionResult, model, key: str):
    """Top-1 classes of the original and each seed, computed once per shown result (not on every rerun)."""
    if model is None or model.categories is None:
        return None
    memo = st.session_state.get(f"{key}_preds")
    if memo and memo[0] is result:
        return memo[1]
    preds = None
    with errors("predictions: "):
        preds = predict(model, torch.cat([result.original[None], result.images]), k=1)
    st.session_state[f"{key}_preds"] = (result, preds)
    return preds


def seed_caption(m: dict, i: int, s: int, short: bool = False) -> str:
    conv = "" if m["converged"][i] else " · NOT CONVERGED"
    if short:
        return f"seed {s} · clarity {m['clarity_per_seed'][i]:.2f} · m_g/m_r {_ratio(m, i)}{conv}"
    return (f"seed {s} · {measures_text(m, i)} · SSIM {m['ssim'][i]:.2f} · m_i {m['input_l2'][i]:.2f} · "
            f"m_g {m['embedding_l2'][i]:.3g}{conv}")


CLARITY_HELP = ("Recognisable content: how close an independent trained network (the judge, never the model "
                "inverted) finds the reconstruction to the image, 1 = the image itself, 0 = no better than the run's "
                "start. Chosen because it agreed with a person's judgement on 52 of 57 pairs (BENCHMARKS.md).")


def others_text(m) -> str:
    """The other measures in words, for a tooltip."""
    judge = f" Judge: trained {m['judge']}." if m.get("judge") else ""
    if m.get("fidelity") is None:
        return judge
    return (f"Pixel fidelity (SSIM, normalised) {m['fidelity']:.3f}; structure (edges on luminance, blind to "
            f"colour) {m['structure']:.3f}.{judge}")


def clarity_head(m) -> str:
    """Clarity in bold, then the other measures' means over seeds (a run stored before the panel: clarity only)."""
    return " · ".join([f"clarity **{m['clarity']:.2f}**", *measures_text(m).split(" · ")[1:]])


def _ratio(m: dict, i: int) -> str:
    return "—" if m.get("mg_over_mr") is None else f"{m['mg_over_mr'][i]:.2f}"


def settings_caption(result: InversionResult, ck_display: str | None, image_name: str) -> str:
    """Every setting of the run in one line: what a slide or a bug report needs."""
    spec = result.spec or {}
    versions = spec.get("versions") or {}
    ck_hash = spec.get("checkpoint_hash")
    parts = [result.model, ck_display or result.checkpoint]
    if ck_hash:
        parts.append(f"weights sha256 {ck_hash[:12]}")
    if (spec.get("checkpoint") or result.checkpoint) == "untrained":
        parts.append(f"init seed {spec.get('init_seed', 0)}")
    parts += [f"image {image_name or '?'}", f"layer {result.layer} ({result.label})",
              f"embedding {tuple(result.embedding_shape)}", f"{result.size} px", f"seeds {list(result.seeds)}",
              f"{steps_text(result)}", f"{result.preset.name} preset ({result.preset.describe()})",
              f"{result.device}", f"{result.seconds:.1f} s"]
    if versions:
        parts.append(" ".join(f"{k} {v}" for k, v in versions.items()))
    return " · ".join(parts)


def fit_screen(key: str, per_row: int, rows: int, top_rem: float, head_rem: float = 0.0,
               caption_rem: float = 2.2) -> None:
    """Presentation mode: the images inside container `key` take the screen (a projector at 1280x720 and a
    1920x1080 screen alike) instead of a fixed 256 px that left most of a large screen empty.

    Each of the `rows` rows shows `per_row` images, on one line or wrapped onto two, whichever gives the larger
    images: the size is the smaller of the width a line shares and the height a line gets, once the page's top
    (`top_rem`), each row's heading (`head_rem`) and each line's captions (`caption_rem`) are set aside."""
    width = "(100vw - 2.5rem)"
    options = []
    for lines in (1, 2) if per_row > 1 else (1,):
        across = -(-per_row // lines)
        total = rows * lines
        height = f"(100vh - {top_rem + rows * head_rem + total * caption_rem:.2f}rem) / {total}"
        options.append(f"min({width} / {across}, {height})")
    size = options[0] if len(options) == 1 else f"max({', '.join(options)})"
    rule = f"width: {size} !important; max-width: none !important;"
    st.markdown(f"<style>.st-key-{key} [data-testid='stImage'] img {{{rule} height: auto !important;}} "
                f".st-key-{key} [data-testid='stImageContainer'], .st-key-{key} [data-testid='stImageCaption'] "
                f"{{{rule}}}</style>", unsafe_allow_html=True)


def show_result(result: InversionResult, model=None, ck_display: str | None = None, image_name: str = "",
                key: str = "res", present: bool = False):
    """Original + one image per seed with their numbers, the reading, the metrics, the settings, downloads.

    In presentation mode the images come first, as large as the screen allows (`fit_screen`), with short
    captions, then the rest."""
    m = result.metrics
    preds = None if present else _predictions(result, model, key)
    px = PRESENT_PX if present else 192
    captions = ["original" + (f"\n{preds[0][0][1]} ({preds[0][0][2]:.0%})" if preds else "")]
    for i, s in enumerate(result.seeds):
        c = seed_caption(m, i, s, short=present)
        if preds:
            c += f"\n{preds[i + 1][0][1]} ({preds[i + 1][0][2]:.0%})"
        captions.append(c)
    if present:
        st.markdown(f"**{result.model} · {ck_display or result.checkpoint} · {result.label}"
                    f"{' · ' + image_name if image_name else ''}** · {clarity_head(m)} · {steps_text(result)}")
        fit_screen(f"{key}_present", 1 + len(result.images), 1, top_rem=5.8, caption_rem=4.4)  # captions: 2 lines
    with st.container(key=f"{key}_present") if present else st.container():
        st.image([upscale(result.original, px)] + [upscale(im, px) for im in result.images], caption=captions,
                 width=px)
    st.markdown(f"**Reading:** {reading(result)}")
    c = st.columns(5)
    c[0].metric("clarity", f"{m['clarity']:.3f}", help=CLARITY_HELP + " " + others_text(m))
    c[1].metric("m_r", f"{m['reference_l2']:.3g}", help="‖O(a′) − O(a)‖₂: how far a near-copy lands")
    c[2].metric("‖a′ − a‖₂", f"{m['shift_input_l2']:.3g}", help="size of the near-copy's pixel change")
    spread = m["seed_spread_input"]
    c[3].metric("spread", "—" if spread is None else f"{spread:.3g}",
                help="seed spread: the mean pixel distance between the seeds' reconstructions")
    c[4].metric("m_g/m_r", "degenerate" if m.get("degenerate") else f"{max(m['mg_over_mr']):.2f}",
                help="the worst seed's m_g / m_r. ≤ 1 on every seed: converged; up to 1.25: borderline; "
                     "degenerate: m_r ≈ 0")
    st.caption(settings_caption(result, ck_display, image_name))
    sig = m.get("signal") or {}
    if sig.get("flat_fraction") is not None and not present:
        st.caption(f"Signal health at this layer: output RMS {sig['rms']:.3g} (input {sig['input_rms']:.3g}); "
                   f"{sig['flat_fraction']:.0%} of activation outputs up to here sit on a flat part of their "
                   f"non-linearity ({sig['saturated_fraction']:.0%} at an upper bound such as ReLU6's 6), "
                   f"last activation {sig['last_flat_fraction']:.0%}.")
    downloads(result, ck_display, image_name, key)


def _row_head(result: InversionResult, ck_display: str | None) -> str:
    m = result.metrics
    st_ = status(m)
    worst = "" if m.get("degenerate") or not m.get("mg_over_mr") else f" · worst m_g/m_r {max(m['mg_over_mr']):.2f}"
    return (f"**{ck_display or result.checkpoint}** · {clarity_head(m)}"
            + ("" if st_ == "converged" else f" · :red[{st_}]") + f"{worst} · {steps_text(result)}")


def run_row(result: InversionResult, ck_display: str | None, original: bool, px: int, short: bool = True) -> None:
    """One checkpoint's row of a side-by-side view: a heading (checkpoint, the measures, status), then the original
    (first row only) and each seed with its clarity (short captions fit the first screen at 1280x720)."""
    st.markdown(_row_head(result, ck_display))
    m = result.metrics
    # a second row's first cell is blank (page white), so each seed sits under the same seed of the first row
    first = upscale(result.original if original else torch.ones(3, 8, 8), px)
    imgs = [first] + [upscale(im, px) for im in result.images]
    caps = ["original" if original else " "] + [
        f"seed {s} · clarity {m['clarity_per_seed'][i]:.2f}" + ("" if m["converged"][i] else " · NOT CONVERGED")
        if short
        else seed_caption(m, i, s) for i, s in enumerate(result.seeds)]
    st.image(imgs, caption=caps, width=px)


@st.cache_data(show_spinner=False, max_entries=256)
def _depth(arch: str, checkpoint: str, layer: str, _model) -> float | None:
    from core.studies import layer_depth

    return layer_depth(_model, layer)


def depth_of(model, layer: str) -> float | None:
    """`layer`'s relative depth among `model`'s stops (cached: it traces the graph), or None."""
    return None if model is None else _depth(model.name, str(model.checkpoint), layer, model)


def claim_line(a: InversionResult, b: InversionResult, depth: float | None) -> str | None:
    """What the paper claims at this depth (finding 4) and whether this trained/untrained pair agrees, with a link
    to the Findings page that tests it over images; None unless the pair is trained against untrained."""
    runs = {r.checkpoint: r for r in (a, b)}
    if set(runs) != {"trained", "untrained"}:
        return None

    def of(r):
        return {"clarity": r.metrics.get("clarity"), "fidelity": r.metrics.get("fidelity"),
                "converged": all(r.metrics.get("converged") or [False])}

    from core.studies import pair_claim  # the studies load only once a pair is shown

    said = pair_claim(of(runs["untrained"]), of(runs["trained"]), depth)
    where = f"/findings?models={a.model}&sizes={a.size}"
    return (f"{said.text} One image at one stop is an example, not a test: the [Findings page]({where}) tests "
            "finding 4 over images, with intervals.")


def show_pair(a: InversionResult, b: InversionResult, names: tuple[str | None, str | None], image_name: str = "",
              key: str = "res", present: bool = False, depth: float | None = None) -> None:
    """Two checkpoints at one depth, one above the other: their rows, the sentence on the difference in clarity and
    what the paper claims there (`claim_line`, at `depth`: the stop's relative depth), then each run's reading and
    numbers, and the two-row grid to download (`core.report.pair_grid`)."""
    name_a, name_b = names[0] or a.checkpoint, names[1] or b.checkpoint
    px = PAIR_PRESENT_PX if present else PAIR_PX
    if present:  # the room sees which model, depth and image before the numbers
        st.markdown(f"**{a.model} · {a.label}{' · ' + image_name if image_name else ''}**")
        fit_screen(f"{key}_present_pair", 1 + len(a.images), 2, top_rem=9.2, head_rem=2.6)
    st.markdown(f"**{pair_text(a, b, name_a, name_b)}**")
    with st.container(key=f"{key}_present_pair") if present else st.container():
        run_row(a, name_a, True, px)
        run_row(b, name_b, False, px)
    claim = claim_line(a, b, depth)  # under the rows: the images stay on the first screen
    if claim:
        st.markdown(claim)
    for r, name in ((a, name_a), (b, name_b)):
        st.markdown(f"**Reading, {name}:** {reading(r)}")
    st.caption(settings_caption(a, name_a, image_name) + f" · compared with {name_b}")
    grid = pair_grid(a, b, name_a, name_b, title=run_title(a, name_a))
    d1, d2, d3 = st.columns(3)
    d1.download_button("Side-by-side grid (PNG)", png_bytes(grid), f"inversion_{file_stem(a, name_a)}_vs_"
                       f"{file_stem(b, name_b).split('_')[1]}.png", "image/png", key=f"{key}_pair_png")
    for col, r, name, tag in ((d2, a, name_a, "a"), (d3, b, name_b, "b")):
        data = {**r.to_json(), "checkpoint_display": name, "image": image_name}
        col.download_button(f"Run, {name} (JSON)", json.dumps(data, indent=1), f"inversion_{file_stem(r, name)}.json",
                            "application/json", key=f"{key}_pair_json_{tag}")


def downloads(result: InversionResult, ck_display, image_name: str, key: str):
    """The labelled grid (PNG, with every setting in its title), the run (JSON) and the trajectories (CSV)."""
    data = result.to_json()
    data["checkpoint_display"] = ck_display or result.checkpoint
    data["image"] = image_name
    title = run_title(result, ck_display)
    d1, d2, d3 = st.columns(3)
    base = file_stem(result, ck_display)
    d1.download_button("Image grid (PNG)", png_bytes(result_grid(result, title=title)),
                       f"inversion_{base}.png", "image/png", key=f"{key}_png")
    d2.download_button("Run (JSON)", json.dumps(data, indent=1), f"inversion_{base}.json",
                       "application/json", key=f"{key}_json")
    d3.download_button("m_g, m_i per step (CSV)", trajectory_csv(result), f"trajectory_{base}.csv",
                       "text/csv", key=f"{key}_traj")


def trajectory(result: InversionResult, height: int = 320):
    m = result.metrics
    st.plotly_chart(trajectory_figure(result.history, result.seeds, m["reference_l2"], m["shift_input_l2"],
                                      height=height), width="stretch")


def distances(result: InversionResult, key: str):
    """Seed-to-seed distances in pixels and in the layer, each as a ratio to its near-copy reference."""
    with errors("distances: "):
        fig_px, fig_emb = distance_figures(result)
        c1, c2 = st.columns(2)
        c1.plotly_chart(fig_px, width="stretch")
        c2.plotly_chart(fig_emb, width="stretch")
        st.caption("One colour scale for both, centred at 1× the reference: red = farther apart than a near-copy "
                   "of the image, blue = closer. Seeds red in pixels but blue in the layer are different images "
                   "the layer treats as the same.")
        st.download_button("Seed distances (CSV)", distances_csv(result), f"distances_{file_stem(result)}.csv",
                           "text/csv", key=f"{key}_dist")


MEASURE_KEYS = ["clarity", "fidelity", "structure"]  # what a layer keeps, clarity first (core.report.METRICS' names)
CURVE_PX = 370  # the curve's height on the page: under the toolbar, inside a 720 px high window


def curve_claim_line(table: list[dict], arch: str, size: int) -> str | None:
    """What finding 4 claims and how this curve's trained and untrained stops side with it, with a link to the
    Findings page (None unless both checkpoints ran at some stop)."""
    from core.studies import curve_claim, relative_depth
    from ui.models import stops_of

    n = len(stops_of(arch))
    by = {(r["checkpoint"], r["layer"]): r for r in table}
    pairs = []
    for (ck, layer), t in by.items():
        u = by.get(("untrained", layer))
        if ck == "trained" and u is not None:
            rd = relative_depth(t["depth"], n) if n and t["depth"] == int(t["depth"]) else None
            pairs.append((rd, *({"clarity": r.get("clarity"), "fidelity": r.get("fidelity"),
                                 "converged": r.get("converged")} for r in (u, t))))
    said = curve_claim(pairs) if pairs else None
    return None if said is None else (f"{said} One image is an example, not a test: the [Findings page]"
                                      f"(/findings?models={arch}&sizes={size}) tests it over images.")


def curve(view: dict, page: PageState):
    """A finished (or partial) curve: chart, unconverged list, gallery, one cell's seeds, table, downloads."""
    rows, b = view["rows"], view["base"]
    table = [r.to_json() for r in rows]
    m1, _ = st.columns([2, 3])  # one short line, label and all: the chart is on the first screen at 1280x720
    metric = m1.selectbox("Metric", list(METRICS), key=page.key("metric"), label_visibility="collapsed",
                          format_func=lambda m: f"Metric: {METRICS[m]}")
    title = (f"{b['model']} · {b['size']} px · {len(b['seeds'])} seeds · image {view['image']} · "
             f"{b['preset']['name']} preset")
    st.plotly_chart(curve_figure(table, metric, title).update_layout(height=CURVE_PX), width="stretch")
    claim = curve_claim_line(table, b["model"], b["size"])
    if claim:
        st.markdown(claim)
    bad = unconverged_text(table)
    if bad:
        st.warning("Not converged, borderline or degenerate (hollow on the chart, framed in red in the gallery; "
                   f"not the layer's answer yet): {bad}")
    else:
        st.caption("Every point converged: m_g ≤ m_r on every seed.")
    st.subheader("Gallery (first seed): one row per checkpoint, one column per depth stop")
    gal = gallery(rows, view["original"], title=title, max_columns=5)  # bands of 5: cells stay >= 96 px on screen
    st.image(gal)
    cells = {f"{r.checkpoint} · {r.label} ({r.layer})": r for r in rows}
    pick = st.selectbox("See every seed of a cell", list(cells), key=page.key("cell"))
    r = cells.get(pick) or rows[0]
    m = r.result.metrics
    st.image([upscale(r.result.original, 192)] + [upscale(im, 192) for im in r.result.images],
             caption=["original"] + [seed_caption(m, i, s) for i, s in enumerate(r.result.seeds)], width=192)
    st.markdown(f"**Reading:** {reading(r.result)}")
    with st.expander("Table"):
        st.dataframe(table, width="stretch")
    d1, d2, d3 = st.columns(3)
    cks = "-".join(dict.fromkeys(str(r.checkpoint).split(" (")[0] for r in rows))
    name = stem(b['model'], cks, f"{b['size']}px", view['image'])
    d1.download_button("Curve (CSV)", curve_csv(table), f"curve_{name}.csv", "text/csv", key=page.key("csv"))
    d2.download_button("Curve (JSON)", json.dumps({**b, "image": view["image"], "rows": table}, indent=1),
                       f"curve_{name}.json", "application/json", key=page.key("json"))
    d3.download_button("Gallery (PNG)", png_bytes(gallery(rows, view["original"], title=title)),
                       f"gallery_{name}.png", "image/png", key=page.key("gal"))


def comparison(shown: dict, base: dict, page: PageState) -> None:
    """A finished comparison (Compare models page): the chart against relative depth, what did not converge, the
    gallery aligned by relative depth, the table and downloads; notes when the settings (`base`) changed since."""
    from core.report import compare_figure, compare_gallery, compare_title

    table, title = [r.to_json() for r in shown["rows"]], compare_title(shown["base"])
    if shown["base"] != base:
        st.info("Showing the last comparison; the settings have changed since. Press Run comparison for the new ones.")
    m1, _ = st.columns([2, 3])
    metric = m1.selectbox("Measure", MEASURE_KEYS, key=page.key("metric"), label_visibility="collapsed",
                          format_func=lambda m: f"Measure: {METRICS[m]}")
    st.plotly_chart(compare_figure(table, metric, title), width="stretch", key=page.key("chart"))
    bad = unconverged_text(table)
    if bad:
        st.warning(f"Not converged, borderline or degenerate (hollow on the chart, framed in red below): {bad}")
    else:
        st.caption("Every point converged: m_g ≤ m_r on every seed.")
    st.subheader("Gallery (first seed): one row per model × checkpoint, each column the stop nearest its relative depth")
    st.image(compare_gallery(shown["rows"], shown["original"], title=title, max_columns=6))
    with st.expander("Table"):
        st.dataframe(table, width="stretch")
    sb = shown["base"]
    raw = "-".join(sb.get("models") or []) + "_" + "-".join(sb.get("checkpoints") or []) + f"_{sb.get('size', '')}px"
    name = stem(raw)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Comparison (CSV)", curve_csv(table), f"compare_{name}.csv", "text/csv", key=page.key("csv"))
    d2.download_button("Comparison (JSON)", json.dumps({**shown["base"], "skipped": shown["skipped"], "rows": table},
                       indent=1), f"compare_{name}.json", "application/json", key=page.key("json"))
    d3.download_button("Gallery (PNG)", png_bytes(compare_gallery(shown["rows"], shown["original"], title=title)),
                       f"compare_gallery_{name}.png", "image/png", key=page.key("gal"))
