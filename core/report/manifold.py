"""Finding 5's presentation and files: captions, the picture grid, the chart, manifold.json/png/html.

The study (inputs, descriptors, runs, validation, comparison) is core/studies/manifold.py; the CLI's
`manifold` command and the app's manifold page both show what is made here.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Sequence

import torch

from core.atomic import atomic_write
from core.models.checkpoints import short_checkpoint
from core.report.draw import check_marks, get_font, labelled_grid, png_bytes
from core.report.text import PALETTE
from core.studies.manifold import BN, CK_ORDER, JUDGE_DESC, SLOPE, ManifoldRow, by_input, finite_mean, natural_gaps

__all__ = ["validation_table", "summary_lines", "manifold_captions", "manifold_cell_caption", "manifold_order",
           "manifold_grid", "manifold_figure", "manifold_title", "manifold_json", "write_manifold"]


def validation_table(validation: dict) -> list[dict]:
    """One line per sample photo and generated input: its kind and every descriptor (for a table)."""
    out = []
    for kind in ("natural", "generated"):
        for name, vals in validation[kind].items():
            out.append({"image": name, "kind": kind,
                        **{k: (None if v is None else round(v, 4)) for k, v in vals.items()}})
    return out


def summary_lines(validation: dict, comparison: dict | None = None) -> list[str]:
    """Plain sentences: does each descriptor separate natural from generated, and do trained reconstructions move
    toward the natural range?"""
    lines = []
    for name, v in validation["descriptors"].items():
        lo, hi = v["natural_range"]
        a, an, margin = v["auc"], v["auc_noise"], v["margin"]
        sep = ("separates every generated input" if margin is not None and margin > 0 else
               f"does not separate all of them ({', '.join(v['inside_range']) or 'none'} inside the natural range)")
        lines.append(f"{v['title']}: natural photos {lo:.3g} … {hi:.3g}; AUC natural vs generated "
                     f"{'n/a' if a is None else f'{a:.2f}'}, vs noise {'n/a' if an is None else f'{an:.2f}'}; {sep}"
                     + (f"; undefined for {', '.join(v['undefined_for'])}" if v["undefined_for"] else "") + ".")
        c = (comparison or {}).get(name)
        if c and c["of"]:
            g = c["mean_gap"]
            lines.append(f"  trained vs untrained reconstructions: trained more natural in {c['trained_more_natural']} "
                         f"of {c['of']} (input, layer) pairs; closer to the natural range in "
                         f"{c['trained_closer_to_range']}, farther in {c['untrained_closer_to_range']}; inside it: "
                         f"trained {c['inside_range']['trained']}, untrained {c['inside_range']['untrained']}; mean "
                         f"distance outside it: trained {g['trained']:.3g}, untrained {g['untrained']:.3g}.")
    titles = {d.name: d.title for d in (SLOPE, BN, JUDGE_DESC)}
    for name, why in validation.get("unavailable", {}).items():
        lines.append(f"{titles.get(name, name)}: {why}.")
    return lines


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def manifold_captions(values: dict, descriptors: Sequence[str]) -> list[str]:
    """Short caption lines for a picture: "slope 1.85", "BN 0.42"."""
    shorts = {d.name: d.short for d in (SLOPE, BN, JUDGE_DESC)}
    return [f"{shorts.get(n, n)} {_fmt(values.get(n))}" for n in descriptors]


def manifold_cell_caption(row: ManifoldRow, descriptors: Sequence[str], seed_index: int = 0) -> str:
    """One line under a reconstruction on the page: "trained · noise · slope 1.85 · BN 0.42" (+ NOT CONVERGED)."""
    text = " · ".join([row.checkpoint, row.input, *manifold_captions({d: row.value(d, seed_index) for d in descriptors},
                                                            descriptors)])
    return text + ("" if all(row.result.metrics["converged"]) else " · NOT CONVERGED")


def manifold_order(rows: Sequence[ManifoldRow]) -> list[tuple[str, str, str]]:
    """(checkpoint, layer, label) of the grid's rows: layers in forward order, untrained above trained."""
    keys = {(r.depth, r.checkpoint, r.layer, r.label) for r in rows}
    return [(ck, layer, label) for _, ck, layer, label in
            sorted(keys, key=lambda k: (k[0], CK_ORDER.get(k[1], 2), k[1]))]


def manifold_grid(rows: Sequence[ManifoldRow], inputs: dict[str, torch.Tensor], seed_index: int = 0, title: str | None = None):
    """The picture: the inputs on top, then one row per layer and checkpoint (untrained above trained), one column
    per input; under each cell its descriptors (seed `seed_index`) and ✓ / not converged (red frame)."""
    names = list(inputs)
    descs = list(dict.fromkeys(k for r in rows for k in r.descriptors)) or [SLOPE.name]
    by = {(r.checkpoint, r.layer, r.input): r for r in rows}
    ok_mark, bad_mark = check_marks(get_font(14))
    tiles = [[inputs[n] for n in names]]
    caps = [[[(ln, "#333333") for ln in manifold_captions(by_input(rows, n) or {}, descs)] for n in names]]
    marks = [[False] * len(names)]
    row_names = ["input"]
    for ck, layer, label in manifold_order(rows):
        t_row, c_row, m_row = [], [], []
        for n in names:
            r = by.get((ck, layer, n))
            if r is None:
                t_row.append(None)
                c_row.append([("not run", "#666666")])
                m_row.append(False)
                continue
            conv = all(r.result.metrics["converged"])
            lines = [(ln, "#333333") for ln in manifold_captions({d: r.value(d, seed_index) for d in descs}, descs)]
            lines.append((f"clarity {r.result.metrics['clarity']:.2f} {ok_mark}", "#1a7f37") if conv
                         else (f"{bad_mark} not converged", "#c00000"))
            imgs = r.result.images
            t_row.append(imgs[seed_index] if seed_index < len(imgs) else None)
            c_row.append(lines)
            m_row.append(not conv)
        tiles.append(t_row)
        caps.append(c_row)
        marks.append(m_row)
        row_names.append(f"{short_checkpoint(ck)} · {label if len(label) <= 18 else layer}")
    return labelled_grid(tiles, names, row_names, captions=caps, marks=marks, title=title, repeat=0,
                         max_columns=max(1, len(names)))[0]


def manifold_figure(rows: Sequence[ManifoldRow], validation: dict, title: str | None = None):
    """Plotly: one panel per descriptor; the seed-mean value of each reconstruction against the layer (forward
    order), untrained and trained in two colours, one marker per input (hollow: not converged), each input's own
    value as a short grey tick at the left, and the sample photos' range as a green band."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    descs = list(validation["descriptors"])
    fig = make_subplots(rows=1, cols=max(1, len(descs)), subplot_titles=[validation["descriptors"][d]["title"]
                                                                         for d in descs] or [""])
    layers = [(layer, label) for _, layer, label in sorted({(r.depth, r.layer, r.label) for r in rows})]
    xs = {layer: i for i, (layer, _) in enumerate(layers)}
    inputs = list(dict.fromkeys(r.input for r in rows))
    symbols = ["circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon", "pentagon"]
    cks = sorted(dict.fromkeys(r.checkpoint for r in rows), key=lambda c: CK_ORDER.get(c, 2))
    for col, d in enumerate(descs, start=1):
        lo, hi = validation["descriptors"][d]["natural_range"]
        if lo is not None:
            fig.add_hrect(y0=lo, y1=hi, fillcolor="#2ca02c", opacity=0.18, line_width=0, row=1, col=col,
                          exclude_empty_subplots=False, annotation_text="sample photos",
                          annotation_position="top right", annotation_font={"color": "#2ca02c", "size": 11})
        for ci, ck in enumerate(cks):
            colour = PALETTE[ci % len(PALETTE)]
            for ii, inp in enumerate(inputs):
                mine = sorted((r for r in rows if r.checkpoint == ck and r.input == inp), key=lambda r: r.depth)
                pts = [(xs[r.layer] + (ci - (len(cks) - 1) / 2) * 0.12, finite_mean(r.descriptors.get(d, [])),
                        all(r.result.metrics["converged"])) for r in mine]
                pts = [p for p in pts if p[1] is not None]
                if not pts:
                    continue
                fig.add_trace(go.Scatter(
                    x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                    name=f"{short_checkpoint(ck)} · {inp}", legendgroup=ck, showlegend=col == 1,
                    line={"color": colour, "width": 1}, opacity=0.85,
                    marker={"symbol": symbols[ii % len(symbols)], "size": 9,
                            "color": [colour if p[2] else "white" for p in pts], "line": {"color": colour, "width": 2}},
                    hovertemplate=f"{short_checkpoint(ck)} · {inp}<br>%{{y:.3f}}<extra></extra>"), row=1, col=col)
        own = [(inp, by_input(rows, inp) or {}) for inp in inputs]
        vals = [(inp, v.get(d)) for inp, v in own if v.get(d) is not None]
        if vals:
            fig.add_trace(go.Scatter(x=[-0.6] * len(vals), y=[v for _, v in vals], mode="markers",
                                     name="the input itself", legendgroup="input", showlegend=col == 1,
                                     marker={"symbol": "line-ew-open", "size": 14, "color": "#777777"},
                                     text=[inp for inp, _ in vals],
                                     hovertemplate="input %{text}: %{y:.3f}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(tickmode="array", tickvals=[-0.6] + list(range(len(layers))),
                         ticktext=["input"] + [lbl if len(lbl) <= 16 else lay for lay, lbl in layers],
                         range=[-1, len(layers) - 0.5], row=1, col=col)
    fig.update_layout(title=title, template="plotly_white", height=460, legend={"orientation": "h", "y": -0.2},
                      margin={"l": 60, "r": 20, "t": 90, "b": 40})
    return fig


def manifold_title(settings: dict) -> str:
    seeds = settings.get("seeds") or []
    return (f"{settings.get('model')} · non-natural inputs at deep layers · {settings.get('size')} px · "
            f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} · {settings.get('preset', 'default')} preset, "
            f"{settings.get('iters')} steps · seed 0 shown")


def manifold_json(rows: Sequence[ManifoldRow], validation: dict, settings: dict) -> dict:
    """manifold.json's content: the settings, the descriptors' definitions, one row per run, the validation and the
    trained-vs-untrained comparison."""
    comparison = natural_gaps(rows, validation)
    return {**settings, "descriptors": {d.name: {"title": d.title, "score": d.score, "note": d.note}
                                        for d in (SLOPE, BN, JUDGE_DESC) if d.name in validation["descriptors"]},
            "rows": [r.to_json() for r in rows], "validation": validation, "comparison": comparison,
            "summary": summary_lines(validation, comparison)}


def write_manifold(rows: Sequence[ManifoldRow], inputs: dict[str, torch.Tensor], validation: dict, settings: dict,
                   out: Path) -> dict:
    """Write manifold.json, manifold.png (cells of at least 128 px) and manifold.html (plotly) in `out`.

    Returns:
        The JSON written to manifold.json, as a dict.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = manifold_json(rows, validation, settings)
    atomic_write(out / "manifold.json", json.dumps(data, indent=2))
    head = manifold_title(settings)
    atomic_write(out / "manifold.png", png_bytes(manifold_grid(rows, inputs, title=head)))
    html = manifold_figure(rows, validation, head).to_html(include_plotlyjs=True, full_html=True)
    notes = "".join(f"<li>{escape(line)}</li>" for line in data["summary"])
    atomic_write(out / "manifold.html", html.replace("</body>", f"<ul>{notes}</ul></body>"))
    return data
