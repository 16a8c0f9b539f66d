"""Files and figures made from results: PNGs, grids, JSON/CSV and the plotly curve.

Shared by the command line and the app so both describe a run the same way.
"""

from __future__ import annotations

import csv
import io
from html import escape as html_escape
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from core.curve import CurveRow
from core.engine import InversionResult
from core.images import grid, to_pil

METRICS = {  # key in a curve row -> axis title
    "clarity": "clarity (1 = exact, 0 = the run's start)",
    "ssim_mean": "SSIM",
    "psnr_mean": "PSNR (dB)",
    "input_l2_mean": "m_i = ‖a_g − a‖₂",
    "mg_over_mr": "m_g / m_r (≤ 1: matched like a near-copy)",
}


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them (power loss, not only a kill)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def result_grid(result: InversionResult) -> Image.Image:
    """The original followed by one reconstruction per seed, in one row."""
    scale = max(1, 128 // result.size)
    return grid([[result.original, *result.images]], scale=scale)


def write_inversion(result: InversionResult, out: Path) -> dict:
    """result.json, original.png, seed_<s>.png per seed and grid.png in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    atomic_write(out / "result.json", json.dumps(data, indent=2))
    to_pil(result.original).save(out / "original.png")
    for seed, img in zip(result.seeds, result.images):
        to_pil(img).save(out / f"seed_{seed}.png")
    result_grid(result).save(out / "grid.png")
    return data


def row_value(row: dict, metric: str) -> float | None:
    """A row's value of `metric`; m_g / m_r is the worst seed's, and None (not plotted) for a degenerate layer."""
    if metric == "mg_over_mr":
        if row.get("degenerate") or not row["reference_l2"]:
            return None
        return row["mg_over_mr_max"]
    return row[metric]


def unconverged(rows: Sequence[dict]) -> list[dict]:
    """Rows whose seeds did not all reach m_g <= m_r (borderline or not converged), or degenerate."""
    return [r for r in rows if r.get("status", "converged") != "converged"]


def unconverged_text(rows: Sequence[dict]) -> str | None:
    """"untrained conv1 (borderline, m_g/m_r 1.19), ..." for the unconverged rows; None when every row converged."""
    bad = unconverged(rows)
    if not bad:
        return None
    return ", ".join(f"{_short_ck(r['checkpoint'])} {r['layer']} ({r['status']}"
                     + (f", m_g/m_r {r['mg_over_mr_max']:.2f}" if r.get("mg_over_mr_max") is not None else "")
                     + ")" for r in bad)


def curve_figure(rows: Sequence[dict], metric: str = "clarity", title: str | None = None):
    """Metric against depth (stops in forward order), one line per checkpoint, a band over seeds."""
    import plotly.graph_objects as go

    fig = go.Figure()
    order = sorted({(r["depth"], r["layer"]) for r in rows})
    labels = [layer for _, layer in order]
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    for i, ck in enumerate(dict.fromkeys(r["checkpoint"] for r in rows)):
        mine = sorted((r for r in rows if r["checkpoint"] == ck), key=lambda r: r["depth"])
        xs = [r["layer"] for r in mine]
        ys = [row_value(r, metric) for r in mine]
        color = palette[i % len(palette)]
        lo = hi = None  # the band over seeds, where the rows carry one
        if metric == "ssim_mean":
            lo = [r["ssim_mean"] - r["ssim_std"] for r in mine]
            hi = [r["ssim_mean"] + r["ssim_std"] for r in mine]
        elif metric == "clarity":
            lo, hi = [r["clarity_min"] for r in mine], [r["clarity_max"] for r in mine]
        if lo is not None:
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", mode="lines", line={"width": 0},
                                     fillcolor=color, opacity=0.18, hoverinfo="skip", showlegend=False,
                                     name=f"{ck} spread"))
        status = [r.get("status", "converged") for r in mine]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=_short_ck(ck), line={"color": color},
            # hollow markers: the point is not a converged result (borderline, not converged or degenerate);
            # a filled white circle with the line's colour as outline (an "-open" symbol would take its
            # outline from the fill colour and vanish)
            marker={"size": 9, "symbol": "circle", "color": ["white" if s_ != "converged" else color for s_ in status],
                    "line": {"color": color, "width": 2}},
            customdata=[[r["label"], s_] for r, s_ in zip(mine, status)],
            hovertemplate="%{x} (%{customdata[0]})<br>%{y:.3f} · %{customdata[1]}<extra>" + _short_ck(ck)
            + "</extra>"))
    if any(r.get("status", "converged") != "converged" for r in rows):
        fig.add_annotation(text="hollow = not converged / borderline / degenerate", xref="paper", yref="paper",
                           x=1, y=1.0, xanchor="right", yanchor="bottom", showarrow=False, font={"size": 11})
    if metric == "mg_over_mr":
        fig.add_hline(y=1.0, line_dash="dot", annotation_text="m_g = m_r")
    fig.update_layout(title=title, xaxis={"title": "depth stop (forward order)", "categoryorder": "array",
                                          "categoryarray": labels},
                      yaxis={"title": METRICS.get(metric, metric)}, template="plotly_white",
                      legend={"orientation": "h", "y": 1.08}, margin={"l": 60, "r": 20, "t": 60, "b": 80})
    return fig


def _short_ck(ck: str) -> str:
    return ck if ck in ("untrained", "trained") else Path(ck).name


def labelled_grid(tiles, columns: Sequence[str], row_names: Sequence[str], head: int = 16, side: int = 90):
    """Rows of (3, H, W) images, enlarged to about 96 px, with column names on top and row names on the left.

    Returns:
        (canvas, cell size in px, header height, left margin), so callers can draw on cells.
    """
    size = tiles[0][0].shape[-1]
    scale = max(1, 96 // size)
    body = grid(tiles, scale=scale)
    cell = size * scale + 4
    canvas = Image.new("RGB", (body.width + side, body.height + head), "white")
    canvas.paste(body, (side, head))
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(columns):
        draw.text((side + 4 + j * cell, 2), name[: max(4, cell // 6)], fill="black")
    for i, name in enumerate(row_names):
        draw.text((4, head + 4 + i * cell + cell // 2 - 6), name, fill="black")
    return canvas, cell, head, side


def gallery(rows: Sequence[CurveRow], original, seed_index: int = 0) -> Image.Image:
    """One row per checkpoint, one column per depth stop (the paper's figure), original first.
    A cell whose run did not converge gets a dashed red frame and a cross in its corner."""
    from core.verdict import status

    checkpoints = list(dict.fromkeys(r.checkpoint for r in rows))
    layers = [layer for _, layer in sorted({(r.depth, r.layer) for r in rows})]
    by = {(r.checkpoint, r.layer): r.result.images[seed_index] for r in rows}
    blank = original * 0 + 1
    tiles = [[original] + [by.get((ck, layer), blank) for layer in layers] for ck in checkpoints]
    canvas, cell, head, side = labelled_grid(tiles, ["original", *layers], [_short_ck(ck)[:14] for ck in checkpoints])
    draw = ImageDraw.Draw(canvas)
    bad = {(r.checkpoint, r.layer) for r in rows if status(r.result.metrics) != "converged"}
    for i, ck in enumerate(checkpoints):
        for j, layer in enumerate(layers):
            if (ck, layer) in bad:
                x0, y0 = side + 2 + (j + 1) * cell, head + 2 + i * cell
                for k in range(0, cell, 6):  # dashed frame
                    draw.line([(x0 + k, y0), (x0 + min(k + 3, cell), y0)], fill="red", width=2)
                    draw.line([(x0 + k, y0 + cell), (x0 + min(k + 3, cell), y0 + cell)], fill="red", width=2)
                    draw.line([(x0, y0 + k), (x0, y0 + min(k + 3, cell))], fill="red", width=2)
                    draw.line([(x0 + cell, y0 + k), (x0 + cell, y0 + min(k + 3, cell))], fill="red", width=2)
                draw.text((x0 + 4, y0 + 2), "x", fill="red")
    return canvas


def write_curve(rows: Sequence[CurveRow], settings: dict, original, out: Path) -> dict:
    """curve.json, curve.csv, curve.html and gallery.png in `out`; unconverged rows are listed under the chart."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = [r.to_json() for r in rows]
    data = {**settings, "rows": table}
    atomic_write(out / "curve.json", json.dumps(data, indent=2))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0].keys()))
    writer.writeheader()
    writer.writerows(table)
    atomic_write(out / "curve.csv", buf.getvalue())
    title = f"{settings.get('model')} at {settings.get('size')} px, {len(settings.get('seeds', []))} seeds"
    fig = curve_figure(table, "clarity", title)
    bad = unconverged_text(table)
    note = (f"<p><b>Not converged, borderline or degenerate (hollow points):</b> {html_escape(bad)}</p>" if bad
            else "<p>Every point converged (m_g ≤ m_r on every seed).</p>")
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    atomic_write(out / "curve.html", html.replace("</body>", note + "</body>"))
    gallery(rows, original).save(out / "gallery.png")
    return data
