"""The Manifold page's run and result view (pages/5_manifold.py); the logic is in core/studies/manifold.py, the
captions, picture and chart in core/report/manifold.py."""

from __future__ import annotations

import json

import streamlit as st

from core import trained_status
from core.images import upscale
from core.jobs import Callbacks
from core.report import (
    manifold_captions,
    manifold_cell_caption,
    manifold_figure,
    manifold_grid,
    manifold_json,
    manifold_title,
    png_bytes,
    summary_lines,
    validation_table,
)
from core.studies import (
    JUDGE,
    Describer,
    by_input,
    iter_manifold,
    layers_of,
    natural_gaps,
    validate,
)
from ui import live, models
from ui.names import stem
from ui.state import PageState


def run(arch: str, inputs: dict, checkpoints: list[str], layers: list[str], seeds, preset, device, init_seed: int,
        loaded: list, size: int, view: dict) -> None:
    """Validate the descriptors on the sample photos, then invert every input at every layer and checkpoint
    (`core.studies.manifold.iter_manifold`), appending rows to `view["rows"]` with a progress bar."""
    bar = st.progress(0.0, text="measuring the descriptors on the sample photos…")
    step = live.LiveView(seeds, show_images=False, show_chart=False)
    judge = models.get_model(JUDGE, "trained", size)[0] if trained_status(JUDGE)["cached"] else None
    describer = Describer(arch, size, trained=judge)
    view["validation"] = validate(size, describer)
    names = list(inputs)

    def on_run(done, total, ck, layer):
        name = names[done % len(names)]  # inputs run in order within each layer
        bar.progress(done / total, text=f"{ck} · {layer} · {name} ({done + 1} of {total})" if layer else "done")

    cb = Callbacks(snapshot=step.progress, progress=step.progress, note=st.warning, wait=step.waiting, next_run=on_run)
    for row in iter_manifold(arch, inputs, checkpoints, layers, seeds=seeds, preset=preset, device=device,
                                init_seed=init_seed, describer=describer, models=loaded, cache=live.disk_cache(),
                                callbacks=cb):
        view["rows"].append(row)
    step.clear()


def show(shown: dict, base: dict, box, page: PageState) -> None:
    """The summary, inputs and reconstructions with their descriptors, the chart, the validation table and
    downloads of a finished run (`shown`), noting when the settings (`base`) have changed since."""
    rows, v = shown["rows"], shown["validation"]
    with box:
        if shown["base"] != base:
            st.info("Showing the last run; the settings have changed since. Press Run for the current ones.")
        st.markdown("\n".join(f"- {line}" for line in summary_lines(v, natural_gaps(rows, v))))
        descs = list(v["descriptors"])
        ran = [c for c in ("untrained", "trained") if any(r.checkpoint == c for r in rows)]
        st.image([upscale(im, 128) for im in shown["inputs"].values()], width=128, caption=[
            f"input {n} · " + " · ".join(manifold_captions(by_input(rows, n) or {}, descs)) for n in shown["inputs"]])
        for layer, label in layers_of(rows):
            st.markdown(f"**{label}** · `{layer}` — reconstructions of seed 0")
            for col, ck in zip(st.columns(len(ran)), ran):
                mine = [r for r in rows if r.layer == layer and r.checkpoint == ck]
                col.image([upscale(r.result.images[0], 128) for r in mine], width=128,
                          caption=[manifold_cell_caption(r, descs) for r in mine])
        st.plotly_chart(manifold_figure(rows, v), width="stretch")
        st.dataframe(validation_table(v), hide_index=True)
        d1, d2, _ = st.columns([1, 1, 4])
        b = shown["base"]
        name = stem("manifold", b["model"], b["checkpoints"], f"{b['size']}px", b["layers"])
        d1.download_button("Manifold (JSON)", json.dumps(manifold_json(rows, v, b), indent=2),
                           f"{name}.json", "application/json", key=page.key("json"))
        picture = manifold_grid(rows, shown["inputs"], title=manifold_title(b))
        d2.download_button("Grid (PNG)", png_bytes(picture), f"{name}.png", "image/png", key=page.key("png"))
