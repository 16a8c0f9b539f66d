"""The comparison's chart, gallery and files (the study itself is `core.studies.compare`).

    write_compare(rows, settings, image, Path("out"), skipped)   # compare.json, .csv, .html, gallery.png
"""

from __future__ import annotations

import json
import math
from html import escape as html_escape
from pathlib import Path
from typing import Sequence

from core.atomic import atomic_write
from core.models.checkpoints import short_checkpoint
from core.report.draw import check_marks, get_font, labelled_grid, png_bytes
from core.report.figures import seed_band
from core.report.files import cell_mark, curve_csv
from core.report.text import DASHES, axis_title, checkpoint_colour, curve_title, row_value, unconverged_text
from core.studies.compare import MAX_BINS, CompareRow, align, default_bins

__all__ = ["compare_title", "compare_figure", "compare_gallery", "write_compare"]



# --------------------------------------------------------------------------- the chart


def compare_title(settings: dict) -> str:
    """"resnet18, vgg16 · untrained vs trained · 32 px · 2 seeds · preset default · ≤ 150 steps"."""
    s = {k: v for k, v in settings.items() if k not in ("model", "stops")}
    s["model"] = ", ".join(settings.get("models") or [])
    return curve_title(s)


def _where(depth: float, n: int) -> str:
    if float(depth).is_integer():
        return f"stop {int(depth) + 1} of {n}"
    return f"between stops {math.floor(depth) + 1} and {math.floor(depth) + 2} of {n}"


def compare_figure(table: Sequence[dict], metric: str = "clarity", title: str | None = None):
    """Metric against relative depth, one line per model × checkpoint, with a band over seeds.

    The conventions of `core.report.figures.curve_figure`: the band is the spread over seeds (clarity min..max, or
    SSIM ± its std), a hollow marker is a point that did not converge (borderline, not converged,
    degenerate). One colour per checkpoint (as on every page), one dash per model. Hover: model · checkpoint, the
    stop's label and node, its index among the model's stops, its relative depth, the value and status.

    Args:
        table: `CompareRow.to_json()` rows.
        metric: a key of `core.report.text.METRICS`.
        title: the chart's title.

    Returns:
        A plotly Figure, x from 0 (input) to 1 (logits).
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    models = list(dict.fromkeys(r["model"] for r in table))
    cks = list(dict.fromkeys(r["checkpoint"] for r in table))
    for model, ck in dict.fromkeys((r["model"], r["checkpoint"]) for r in table):
        mine = sorted((r for r in table if r["model"] == model and r["checkpoint"] == ck),
                      key=lambda r: r["relative_depth"])
        name = f"{model} · {short_checkpoint(ck)}"
        xs = [float(r["relative_depth"]) for r in mine]
        ys = [row_value(r, metric) for r in mine]
        color = checkpoint_colour(ck, cks)
        lo, hi = seed_band(mine, metric)
        if lo is not None:
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", mode="lines", line={"width": 0},
                                     fillcolor=color, opacity=0.15, hoverinfo="skip", showlegend=False,
                                     legendgroup=name, name=f"{name} spread"))
        status = [r.get("status", "converged") for r in mine]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=name, legendgroup=name,
            line={"color": color, "dash": DASHES[models.index(model) % len(DASHES)]},
            marker={"size": 8, "symbol": "circle", "color": ["white" if s != "converged" else color for s in status],
                    "line": {"color": color, "width": 2}},
            customdata=[[str(r.get("label") or r["layer"]), str(r["layer"]), s, name,
                         _where(r["depth"], r.get("n_stops") or 1)] for r, s in zip(mine, status)],
            hovertemplate="<b>%{customdata[3]}</b><br>%{customdata[0]} (%{customdata[1]})<br>%{customdata[4]} · "
                          "relative depth %{x:.2f}<br>%{y:.3f} · %{customdata[2]}<extra></extra>"))
    if any(r.get("status", "converged") != "converged" for r in table):
        fig.add_annotation(text="hollow = not converged / borderline / degenerate", xref="paper", yref="paper",
                           x=1, y=1.0, xanchor="right", yanchor="bottom", showarrow=False, font={"size": 11})
    if metric == "mg_over_mr":
        fig.add_hline(y=1.0, line_dash="dot", annotation_text="m_g = m_r")
    ticks = [k / 10 for k in range(11)]
    fig.update_layout(
        title=title, template="plotly_white", legend={"orientation": "h", "y": -0.22},
        xaxis={"title": "relative depth: (stop index + 1) / number of stops", "range": [-0.02, 1.02],
               "tickmode": "array", "tickvals": ticks,
               "ticktext": ["0 input"] + [f"{t:.1f}" for t in ticks[1:-1]] + ["1 logits"], "zeroline": False},
        yaxis={"title": axis_title(metric)}, margin={"l": 60, "r": 20, "t": 60, "b": 60})
    return fig


def compare_gallery(rows: Sequence[CompareRow], original, bins: Sequence[float] | None = None, seed_index: int = 0,
                    title: str | None = None, max_columns: int = MAX_BINS):
    """One row per model × checkpoint, one column per relative depth, the original first.

    Each cell is the line's stop nearest the column's relative depth (`core.studies.compare.align`), first seed by default, at least
    128 px; under it the stop's label, its own relative depth, "SSIM 0.42 ✓" in green, or "SSIM 0.12 ✗" and the
    status in red with a red dashed frame when it did not converge.

    Args:
        rows: the comparison's rows (all one image size).
        original: the inverted image, (3, H, W) in [0, 1].
        bins: relative depths of the columns (default `core.studies.compare.default_bins`).
        seed_index: which seed's reconstruction to show.
        title: a title line at the top.
        max_columns: most depth columns per band (past it the grid continues below).

    Returns:
        A PIL image.
    """
    bins = list(bins) if bins else default_bins(rows)
    ok_mark, bad_mark = check_marks(get_font(14))
    tiles, captions, marks, names = [], [], [], []
    for name, cells in align(rows, bins).items():
        t_row, c_row, m_row = [original], [None], [False]
        for r in cells:
            tile, mark, bad = cell_mark(r.result, seed_index, (ok_mark, bad_mark))
            t_row.append(tile)
            c_row.append([(str(r.label or r.layer), "#333333"), (f"at {r.relative_depth:.2f} · {r.layer}", "#666666")]
                         + mark)
            m_row.append(bad)
        tiles.append(t_row)
        captions.append(c_row)
        marks.append(m_row)
        names.append(name)
    columns = ["original", *[f"depth {b:.2f}".rstrip("0").rstrip(".") for b in bins]]
    return labelled_grid(tiles, columns, names, captions=captions, marks=marks, title=title,
                         max_columns=max_columns, repeat=1)[0]


# --------------------------------------------------------------------------- files


def write_compare(rows: Sequence[CompareRow], settings: dict, original, out: Path, skipped: Sequence[str] = (),
                  bins: Sequence[float] | None = None) -> dict:
    """Write compare.json (settings, skipped notes, rows), compare.csv, compare.html (the chart; unconverged
    rows and skipped lines listed under it) and gallery.png (titled) in `out`.

    Args:
        rows: from `core.studies.compare.iter_compare`.
        settings: what was run (`compare_title` reads it); written first into compare.json.
        original: the inverted image, (3, H, W) in [0, 1] (the gallery's first column).
        out: the folder (created when missing).
        skipped: `plan_compare`'s notes on the lines left out.
        bins: the gallery's relative depths (default `core.studies.compare.default_bins`).

    Returns:
        The JSON written to compare.json, as a dict.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = [r.to_json() for r in rows]
    bins = list(bins) if bins else default_bins(rows)
    data = {**settings, "bins": bins, "skipped": list(skipped), "rows": table}
    atomic_write(out / "compare.json", json.dumps(data, indent=2))
    atomic_write(out / "compare.csv", curve_csv(table))
    title = compare_title(settings)
    bad = unconverged_text(table)
    note = (f"<p><b>Not converged, borderline or degenerate (hollow points):</b> {html_escape(bad)}</p>" if bad
            else "<p>Every point converged (m_g ≤ m_r on every seed).</p>")
    note += "".join(f"<p><b>Skipped:</b> {html_escape(s)}</p>" for s in skipped)
    note += ("<p>Relative depth = (stop index + 1) / the model's number of depth stops: 0 is the input, "
             "1 the logits (every model's last stop).</p>")
    html = compare_figure(table, "clarity", title).to_html(include_plotlyjs=True, full_html=True)
    atomic_write(out / "compare.html", html.replace("</body>", note + "</body>"))
    atomic_write(out / "gallery.png", png_bytes(compare_gallery(rows, original, bins, title=title)))
    return data
