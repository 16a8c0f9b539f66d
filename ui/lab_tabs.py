"""The Invertibility lab page's two tabs (pages/4_lab.py): MLPs by width, depth and activation (finding 6), and a
CNN's Jacobian against depth beside its clarity (finding 3). The logic is in core/studies/lab.py, the charts and tables
in core/report/lab.py; every reconstruction comes from core.jobs.pipeline.run (cached like any other run)."""

from __future__ import annotations

import json

import streamlit as st

from core import ARCHITECTURES, UserError, get_preset, load_image, sample_images
from core.devices import describe, resolve_device
from core.jobs import Callbacks, UploadStore, human, measure
from core.report import (
    JACOBIAN_CSV_FIELDS,
    LAB_CSV_FIELDS,
    jacobian_figure,
    jacobian_title,
    lab_figure,
    lab_grid,
    lab_title,
    table_csv,
)
from core.studies import (
    ACTIVATIONS,
    add_clarity,
    default_jacobian_stops,
    iter_curve,
    iter_jacobian,
    iter_mlp_lab,
    jacobian_sizes,
    plan_mlp,
    build_mlp,
    embedding_node,
    lab_preset,
)
from ui import live, models, pickers
from ui.errors import errors
from ui.names import stem
from ui.notices import ignored_stops
from ui.state import PageState

MSIZES = [8, 12, 16, 24, 32]
WIDTHS, DEPTHS = ["0.25", "0.5", "1", "1.5", "2", "3", "4", "8"], ["1", "2", "3", "4"]


def image_at(page: PageState, name: str, size: int):
    """The chosen image at `size` px: a shipped sample, the upload, or the upload a link names by id."""
    if name in sample_images():
        return load_image(sample_images()[name], size)
    if page.get("image_file") is not None:
        return pickers.read_upload_image(page["image_file"], size)
    kept = UploadStore().get(page.get("image_id") or "") if page.get("image_id") else None
    if kept is None:
        raise UserError("upload an image (PNG, JPEG, GIF, TIFF, BMP or WebP), or pick a sample")
    return load_image(kept[0], size, name=kept[1])


def progress(bar, what: str, titles: dict | None = None) -> Callbacks:
    """Callbacks whose `stop` moves `bar`, naming the layer, or the model by `titles` (name -> title) when given."""
    def stop(d, t, name, layer):
        item = titles.get(name, name) if titles else layer
        bar.progress(d / t, text=f"{what} {item} ({d + 1} of {t})" if layer else "done")

    return Callbacks(next_run=stop)


def show(page: PageState, figure, table: list, fields: list, settings: dict, kind: str, name: str):
    """A lab result: the chart, the table and its JSON and CSV downloads, named `name` (what they hold: model,
    checkpoint, size, image); `kind` ("lab", "jacobian") keys the buttons."""
    st.plotly_chart(figure, width="stretch")
    st.dataframe([{k: t.get(k) for k in fields} for t in table], hide_index=True)
    c1, c2, _ = st.columns([1, 1, 4])
    what = {"lab": "Lab table", "jacobian": "Jacobian table"}.get(kind, kind)
    c1.download_button(f"{what} (JSON)", json.dumps({**settings, "rows": table}, indent=2), f"{name}.json",
                       "application/json", key=page.key(f"{kind}_json"))
    c2.download_button(f"{what} (CSV)", table_csv(table, fields), f"{name}.csv", "text/csv",
                       key=page.key(f"{kind}_csv"))


@st.cache_data(show_spinner="Measuring a few steps to estimate the time…", max_entries=32, ttl=60)
def _mlp_seconds(widths: tuple, acts: tuple, depths: tuple, size: int, seeds: int, iters: int, blur: bool,
                 early: bool, init_seed: int) -> float:
    """The lab's MLP runs measured now: the largest network (widest, deepest) for a few real steps, times the count
    (again after a minute: the load changes). An upper bound: the others are smaller."""
    configs = plan_mlp(list(widths), list(acts), list(depths), size)
    biggest = max(configs, key=lambda c: (c.width, c.depth))
    model = build_mlp(biggest, init_seed)
    est = measure(model, embedding_node(model), size, seeds, lab_preset(iters, blur, early), "cpu")
    return est.seconds * len(configs)


def mlp_tab(page: PageState, name: str | None) -> None:
    """Untrained MLPs on a small grey image: reconstructions, exact rank and condition number per network."""
    c = st.columns(3)
    widths = c[0].multiselect("Width (× the input)", WIDTHS, key=page.key("widths"))
    acts = c[1].multiselect("Activation", list(ACTIVATIONS), key=page.key("acts"), format_func=ACTIVATIONS.get)
    depths = c[2].multiselect("Depth (hidden layers)", DEPTHS, key=page.key("depths"))
    c = st.columns(6)
    seeds = c[0].slider("Seeds", 1, 4, key=page.key("seeds"))
    iters = c[1].number_input("Step budget", 50, 5000, step=50, key=page.key("iters"))
    msize = c[2].select_slider("Grey image side (px)", MSIZES, key=page.key("msize"))
    init_seed = c[3].number_input("Init seed", 0, 10_000, key=page.key("init_seed"), help="the networks' random weights")
    early = c[4].toggle("Early stop", key=page.key("early"),
                        help="off: the whole budget (ill-conditioned networks keep improving)")
    blur = c[5].toggle("Blur prior", key=page.key("blur"), help="the default recipe's blur fills what the network leaves "
                       "undetermined with smooth content: it hides lost rank")
    n = len(widths) * len(acts) * len(depths)
    # Run, Stop and the estimate in one row right under the settings: on the first screen at 1280x720
    b1, b2, b3 = st.columns([1, 1, 5], vertical_alignment="center")
    if n and name is not None:
        with b3, errors("estimate: "):
            secs = _mlp_seconds(tuple(float(w) for w in widths), tuple(acts), tuple(int(d) for d in depths), int(msize),
                                int(seeds), int(iters), bool(blur), bool(early), int(init_seed))
            st.caption(f"Estimated on {describe(resolve_device('cpu'))} now: up to **{human(secs)}** for the "
                       f"{pickers.plural(n, 'network')} "
                       "(the largest measured for a few steps, times the networks; early stop may end them sooner).")
    clicked = b1.button("Run", type="primary", key=page.key("mlp_run"), disabled=not n or name is None)
    b2.button("Stop", key=page.key("mlp_stop"), disabled=not clicked,
              help="Stops; every finished network is kept" if clicked else "nothing is running")
    st.caption(f"{n} untrained networks on a {msize}×{msize} grey image ({msize * msize} inputs), {seeds} seeds, "
               f"up to {iters} Adam steps each: a network that never converges uses the whole budget. The bar names "
               "the network it is on.")
    if clicked:
        bar = st.progress(0.0, text="starting…")
        with errors("lab: "):
            img = image_at(page, name, msize)
            cfg = {"kind": "mlp", "image": name, "size": msize, "widths": [float(w) for w in widths],
                   "activations": acts, "depths": [int(d) for d in depths], "seeds": list(range(seeds)),
                   "iters": int(iters), "init_seed": int(init_seed), "blur": blur, "early_stop": early}
            titles = {c.name: c.title for c in plan_mlp(cfg["widths"], acts, cfg["depths"], msize)}
            page["mlp"] = {"rows": [], "original": img, "settings": cfg}  # Stop keeps every finished network
            for row in iter_mlp_lab(img, cfg["widths"], acts, cfg["depths"], seeds=cfg["seeds"], iters=cfg["iters"],
                                    init_seed=cfg["init_seed"], device="cpu", blur=blur, early_stop=early,
                                    cache=live.disk_cache(), callbacks=progress(bar, "inverting", titles)):
                page["mlp"]["rows"].append(row)
    if (shown := page.get("mlp")) and shown["rows"]:
        table = [r.to_json() for r in shown["rows"]]
        cfg = shown["settings"]
        show(page, lab_figure(table, lab_title(cfg)), table, LAB_CSV_FIELDS, cfg, "lab",
             stem("lab", "mlp", f"{cfg['size']}px", pickers.plural(len(cfg["seeds"]), "seed").replace(" ", ""),
                  cfg.get("image") or ""))
        st.image(lab_grid(shown["rows"], shown["original"]), caption="seed 0's reconstruction per network (red "
                 "dashed frame: not converged); 'pinv' rows: a linear network's exact pseudo-inverse answer")


def cnn_tab(page: PageState, name: str | None, link: dict | None = None, notices=None) -> None:
    """A CNN's float64 Jacobian at chosen depth stops, with the clarity curve beside it. `link`: the link's raw
    cstops and csize (`ui.notices.link_values`), whose values this model cannot take get a notice in `notices`."""
    link, notices = link or {}, notices or st
    c = st.columns([2, 1, 1])
    arch = c[0].selectbox("Model", list(ARCHITECTURES), key=page.key("cmodel"), format_func=models.model_label)
    ck = c[1].radio("Checkpoint", ["untrained", "trained"], key=page.key("cckpt"), horizontal=True)
    sizes = jacobian_sizes(ARCHITECTURES[arch])
    if page.get("csize") not in sizes:
        asked = page.get("csize")
        page["csize"] = min(sizes, key=lambda s: abs(s - (asked if isinstance(asked, int) else 16)))
        if link.get("csize"):
            notices.warning(f"ignored the link's csize={','.join(link['csize'])!r}: {arch}'s Jacobians are offered at "
                            f"{', '.join(map(str, sizes))} px; using {page['csize']} px")
    csize = c[2].select_slider("Image size (px)", sizes, key=page.key("csize"))
    stops = dict(models.stops_of(arch))
    if note := ignored_stops(link.get("cstops"), arch, stops, "cstops"):
        notices.warning(note)
    if page.get("cstops_for") != arch or not isinstance(page.get("cstops"), list):
        page["cstops"] = ([n for n in page.get("cstops") or [] if n in stops]
                                          or default_jacobian_stops(ARCHITECTURES[arch], list(stops)))
        page["cstops_for"] = arch
    chosen = st.multiselect("Depth stops", list(stops), key=page.key("cstops"), format_func=lambda n: f"{stops[n]} · {n}")
    c = st.columns(2)
    with_clarity = c[0].toggle("Clarity curve too (default preset, 2 seeds)", key=page.key("cclarity"))
    citers = c[1].number_input("Clarity step budget", 10, 2000, key=page.key("citers"))
    st.caption("Jacobians in float64 on the CPU, one stop at a time. The cost grows with about the 4th to 6th power "
               "of the image side (twice the side: 16 to 64 times as long), most at the early stops (conv1's "
               "Jacobian at 32 px is 16384 × 3072). Measured times are in BENCHMARKS.md (Numbers the docs rest on); "
               "this machine's load changes them.")
    trained_ok = ck != "trained" or models.trained_panel(arch, page.key("c"))
    b1, b2, _ = st.columns([1, 1, 5])
    clicked = b1.button("Run", type="primary", key=page.key("cnn_run"),
                        disabled=not chosen or not trained_ok or name is None)
    b2.button("Stop", key=page.key("cnn_stop"), disabled=not clicked,
              help="Stops; every finished stop is kept" if clicked else "nothing is running")
    if clicked:
        bar = st.progress(0.0, text="starting…")
        with errors("jacobian: "):
            model, img = models.get_model(arch, ck, csize)[0], image_at(page, name, csize)
            settings = {"kind": "jacobian", "model": arch, "checkpoint": ck, "size": csize, "image": name}
            page["cnn"] = {"rows": [], "settings": {**settings, "dtype": "float64"}}  # Stop keeps every finished stop
            rows = page["cnn"]["rows"]
            for row in iter_jacobian(model, img, [n for n in stops if n in chosen],
                                     callbacks=progress(bar, "Jacobian at")):
                rows.append(row)
            if with_clarity:
                add_clarity(rows, iter_curve(arch, img, [ck], [r.layer for r in rows], seeds=[0, 1],
                                                 preset=get_preset("default", iters=int(citers)), device="auto",
                                                 models=[model], cache=live.disk_cache(),
                                                 callbacks=progress(bar, "clarity at")))
    if (shown := page.get("cnn")) and shown["rows"]:
        table = [r.to_json() for r in shown["rows"]]
        cfg = shown["settings"]
        show(page, jacobian_figure(table, jacobian_title(cfg)), table, JACOBIAN_CSV_FIELDS, cfg, "jacobian",
             stem("jacobian", cfg["model"], cfg["checkpoint"], f"{cfg['size']}px", cfg.get("image") or ""))
