"""The Manifold page's run and result view (pages/5_manifold.py); the logic is in core/manifold.py."""

from __future__ import annotations

import json

import streamlit as st

from core import manifold as mf
from core import trained_status
from core.jobs import Callbacks
from core.report import png_bytes
from ui import live, models, views


def run(arch: str, inputs: dict, checkpoints: list[str], layers: list[str], seeds, preset, device, init_seed: int,
        loaded: list, size: int, view: dict) -> None:
    """Validate the descriptors on the sample photos, then invert every input at every layer and checkpoint
    (`core.manifold.iter_manifold`), appending rows to `view["rows"]` with a progress bar."""
    bar = st.progress(0.0, text="measuring the descriptors on the sample photos…")
    step = live.LiveView(seeds, show_images=False, show_chart=False)
    judge = models.get_model(mf.JUDGE, "trained", size)[0] if trained_status(mf.JUDGE)["cached"] else None
    describer = mf.Describer(arch, size, trained=judge)
    view["validation"] = mf.validate(size, describer)
    cb = Callbacks(snapshot=step.progress, progress=step.progress, note=st.warning, wait=step.waiting)

    def on_run(done, total, ck, layer, name):
        bar.progress(done / total, text=f"{ck} · {layer} · {name} ({done + 1} of {total})" if layer else "done")

    for row in mf.iter_manifold(arch, inputs, checkpoints, layers, seeds, preset, device, init_seed, describer, loaded,
                                cache=live.disk_cache(), callbacks=cb, on_run=on_run):
        view["rows"].append(row)
    step.clear()


def show(shown: dict, base: dict, box, prefix: str) -> None:
    """The summary, inputs and reconstructions with their descriptors, the chart, the validation table and
    downloads of a finished run (`shown`), noting when the settings (`base`) have changed since."""
    rows, v = shown["rows"], shown["validation"]
    with box:
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
                           "manifold.json", "application/json", key=prefix + "json")
        d2.download_button("Grid (PNG)", png_bytes(mf.grid(rows, shown["inputs"], title=mf.title(shown["base"]))),
                           "manifold.png", "image/png", key=prefix + "png")
