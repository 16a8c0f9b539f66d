"""The invertibility lab's charts, tables and files (the study itself is core/studies/lab.py).

lab.json/csv/html/png for the MLP part, jacobian.json/csv/html for a CNN's Jacobians; the app's lab
page shows the same charts and offers the same tables.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

import torch

from core.atomic import atomic_write
from core.report.draw import labelled_grid, png_bytes
from core.report.text import thin_ticks, tick_label
from core.studies.lab import ACTIVATIONS, JacobianRow, MLPRow, grey_image

__all__ = ["lab_figure", "LAB_CSV_FIELDS", "table_csv", "lab_title", "lab_grid", "write_lab", "jacobian_figure",
           "JACOBIAN_CSV_FIELDS", "jacobian_title", "write_jacobian"]

# --------------------------------------------------------------------------- the MLP part

_ACT_COLOURS = {"linear": "#1f77b4", "relu": "#d62728", "leaky_relu": "#ff7f0e", "tanh": "#2ca02c"}
_SYMBOLS = {"linear": "circle", "relu": "square", "leaky_relu": "diamond", "tanh": "triangle-up"}
_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]


def _width_axis(widths: Sequence[float]) -> dict:
    ws = sorted(set(widths))
    return {"title": "hidden width (x the input)", "type": "log", "tickmode": "array", "tickvals": ws,
            "ticktext": [f"{w:g}x" for w in ws]}


def lab_figure(rows: Sequence[dict], title: str | None = None):
    """Clarity against width (left) and the Jacobian's rank / input dimension (right), one line per
    activation x depth; hollow markers: not every seed converged; x markers: a linear network's pseudo-inverse.

    Args:
        rows: `MLPRow.to_json()` rows.
        title: the chart's title.

    Returns:
        A plotly Figure.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("clarity of the gradient-descent reconstruction",
                                        "Jacobian rank / input (1 = injective at the image)"))
    depths = sorted({r["depth"] for r in rows})
    groups = list(dict.fromkeys((r["activation"], r["depth"]) for r in rows))
    pinv_shown = False
    for act, depth in groups:
        mine = sorted((r for r in rows if r["activation"] == act and r["depth"] == depth), key=lambda r: r["width"])
        colour = _ACT_COLOURS.get(act, "#555555")
        dash = _DASHES[depths.index(depth) % len(_DASHES)]
        name = f"{ACTIVATIONS.get(act, act).split(' (')[0]}, depth {depth}"
        xs = [r["width"] for r in mine]
        hover = [f"{r['units']} units · rank {r['jacobian_rank']}/{r['input_dim']} · cond "
                 + (f"{r['condition_number']:.3g}" if r["condition_number"] is not None else "∞")
                 + f" · {r['converged_seeds']}/{len(r['seeds'])} converged · {r['steps']} steps" for r in mine]
        fig.add_trace(go.Scatter(
            x=xs, y=[r["clarity"] for r in mine], mode="lines+markers", name=name, legendgroup=name,
            line={"color": colour, "dash": dash},
            marker={"size": 9, "symbol": _SYMBOLS.get(act, "circle"),
                    "color": [colour if r["converged"] else "white" for r in mine],
                    "line": {"color": colour, "width": 2}},
            error_y={"type": "data", "symmetric": False, "thickness": 1, "width": 3,
                     "array": [r["clarity_max"] - r["clarity"] for r in mine],
                     "arrayminus": [r["clarity"] - r["clarity_min"] for r in mine]},
            customdata=hover, hovertemplate="%{x:g}x: clarity %{y:.3f}<br>%{customdata}<extra>" + name + "</extra>"),
            row=1, col=1)
        fig.add_trace(go.Scatter(
            x=xs, y=[r["rank_fraction"] for r in mine], mode="lines+markers", name=name, legendgroup=name,
            showlegend=False, line={"color": colour, "dash": dash},
            marker={"size": 7, "color": colour, "symbol": _SYMBOLS.get(act, "circle")},
            customdata=hover, hovertemplate="%{x:g}x: rank/input %{y:.3f}<br>%{customdata}<extra>" + name
            + "</extra>"), row=1, col=2)
        if any(r.get("pinv_clarity") is not None for r in mine):
            fig.add_trace(go.Scatter(
                x=xs, y=[r.get("pinv_clarity") for r in mine], mode="markers", name="pseudo-inverse (exact answer)",
                legendgroup="pinv", showlegend=not pinv_shown, marker={"symbol": "x", "size": 10, "color": "black"},
                hovertemplate="%{x:g}x: pseudo-inverse clarity %{y:.3f}<extra>depth " + str(depth) + "</extra>"),
                row=1, col=1)
            pinv_shown = True
    axis = _width_axis([r["width"] for r in rows])
    fig.update_xaxes(**axis)
    fig.update_yaxes(range=[-0.03, 1.05], row=1, col=1, title="clarity (1 = exact, 0 = the run's start)")
    fig.update_yaxes(range=[-0.03, 1.05], row=1, col=2, title="rank / input dimension")
    if any(not r["converged"] for r in rows):
        note = "hollow = not every seed converged (m_g > m_r); bars: the spread over seeds"
        title = f"{title}<br><sup>{note}</sup>" if title else note
    fig.update_layout(title=title, template="plotly_white", height=480, margin={"l": 60, "r": 20, "t": 100, "b": 60},
                      legend={"orientation": "h", "y": -0.2})
    return fig


LAB_CSV_FIELDS = ["name", "activation", "depth", "width", "units", "input_dim", "size", "init_seed", "clarity",
              "clarity_min", "clarity_max", "ssim", "converged", "converged_seeds", "steps", "iters", "stop_reason",
              "recipe", "jacobian_rank", "rank_fraction", "condition_number", "sigma_max", "sigma_min", "pinv_clarity",
              "pinv_ssim", "pinv_max_error", "seconds", "jacobian_seconds", "cached"]


def table_csv(rows: Sequence[dict], fields: Sequence[str] | None = None) -> str:
    """Rows as CSV text: the listed fields (default every scalar key), in order; "" for no rows."""
    if not rows:
        return ""
    fields = list(fields or [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def lab_title(settings: dict) -> str:
    seeds = settings.get("seeds") or []
    prior = ("blur prior" if settings.get("blur") else "no prior") + (
        "" if settings.get("early_stop", True) else " · no early stop")
    return (f"Invertibility lab · untrained MLPs on a {settings.get('size')}x{settings.get('size')} grey image · "
            f"init seed {settings.get('init_seed', 0)} · {len(seeds)} seed{'s' if len(seeds) != 1 else ''} · "
            f"≤ {settings.get('iters')} steps · {prior}")


def lab_grid(rows: Sequence[MLPRow], original: torch.Tensor, seed_index: int = 0, title: str | None = None):
    """One row per activation x depth, one column per width: seed `seed_index`'s reconstruction with its clarity;
    a linear network's pseudo-inverse answer in an extra row. The grey original is the first column.

    Returns:
        A PIL image.
    """
    grey = grey_image(original)
    widths = sorted({r.config.width for r in rows})
    tiles, names, captions, marks = [], [], [], []
    for act, depth in dict.fromkeys((r.config.activation, r.config.depth) for r in rows):
        by = {r.config.width: r for r in rows if r.config.activation == act and r.config.depth == depth}
        t, c, mk = [grey], [None], [False]
        for w in widths:
            r = by.get(w)
            if r is None:
                t.append(None), c.append("not run"), mk.append(False)
                continue
            i = min(seed_index, len(r.result.images) - 1)
            ok = bool(r.result.metrics["converged"][i])
            t.append(r.result.images[i])
            c.append([f"clarity {r.result.metrics['clarity_per_seed'][i]:.2f}",
                      f"rank {r.spectrum.rank}/{r.spectrum.input_dim}"])
            mk.append(not ok)
        tiles.append(t), names.append(f"{act}, depth {depth}"), captions.append(c), marks.append(mk)
        if any(r.pinv is not None for r in by.values()):
            t, c = [grey], [None]
            for w in widths:
                r = by.get(w)
                t.append(None if r is None or r.pinv is None else r.pinv.clamp(0, 1))
                c.append("" if r is None or r.pinv_scores is None else f"clarity {r.pinv_scores['clarity']:.2f}")
            tiles.append(t), names.append(f"{act}, depth {depth}: pinv"), captions.append(c)
            marks.append([False] * len(t))
    columns = ["original (grey)"] + [f"width {w:g}x" for w in widths]
    return labelled_grid(tiles, columns, names, captions=captions, marks=marks, title=title, max_columns=8,
                         repeat=1)[0]


def _write_table(out: Path, stem: str, table: list[dict], settings: dict, fields, figure) -> dict:
    """STEM.json (settings + rows), STEM.csv and STEM.html (the chart) in `out`; returns the JSON as a dict."""
    out.mkdir(parents=True, exist_ok=True)
    data = {**settings, "rows": table}
    atomic_write(out / f"{stem}.json", json.dumps(data, indent=2))
    atomic_write(out / f"{stem}.csv", table_csv(table, fields))
    atomic_write(out / f"{stem}.html", figure.to_html(include_plotlyjs=True, full_html=True))
    return data


def write_lab(rows: Sequence[MLPRow], settings: dict, original: torch.Tensor, out: Path) -> dict:
    """Write lab.json (settings + rows), lab.csv, lab.html (the chart) and lab.png (the reconstructions) in `out`.

    Returns:
        The JSON written to lab.json, as a dict.
    """
    out, table, title = Path(out), [r.to_json() for r in rows], lab_title(settings)
    data = _write_table(out, "lab", table, settings, LAB_CSV_FIELDS, lab_figure(table, title))
    atomic_write(out / "lab.png", png_bytes(lab_grid(rows, original, title=title)))
    return data


# --------------------------------------------------------------------------- the CNN part


def jacobian_figure(rows: Sequence[dict], title: str | None = None):
    """Against depth: rank / input dimension, the dimension bound min(1, output / input) and clarity (top);
    log10 of the condition number (bottom).

    Args:
        rows: `JacobianRow.to_json()` rows ("clarity" may be None: then no clarity line).
        title: the chart's title.

    Returns:
        A plotly Figure.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = sorted(rows, key=lambda r: r["depth"])
    xs = [r["depth"] for r in rows]
    text = [f"{r['layer']} · {r['output_dim']} outputs · rank {r['rank']}/{r['input_dim']} · σ {r['sigma_max']:.3g}"
            f"…{r['sigma_min']:.3g} · {r['seconds']:.1f} s" for r in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4],
                        subplot_titles=("what the layer keeps", "how well it keeps it"))
    fig.add_trace(go.Scatter(x=xs, y=[r["rank_fraction"] for r in rows], mode="lines+markers",
                             name="Jacobian rank / input dimension", line={"color": "#1f77b4"}, customdata=text,
                             hovertemplate="%{y:.3f}<br>%{customdata}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=xs, y=[min(1.0, 1 / r["dim_ratio"]) for r in rows], mode="lines",
                             name="bound: min(1, outputs / inputs)", line={"color": "#7f7f7f", "dash": "dot"},
                             hovertemplate="%{y:.3f}<extra>dimension bound</extra>"), row=1, col=1)
    if any(r.get("clarity") is not None for r in rows):
        fig.add_trace(go.Scatter(x=xs, y=[r.get("clarity") for r in rows], mode="lines+markers",
                                 name="clarity (gradient descent)", line={"color": "#d62728"},
                                 hovertemplate="clarity %{y:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=xs, y=[r.get("log10_condition") for r in rows], mode="lines+markers",
                             name="log10 condition number (σ_max / σ_rank)", line={"color": "#9467bd"},
                             customdata=text, hovertemplate="10^%{y:.2f}<br>%{customdata}<extra></extra>"),
                  row=2, col=1)
    shown = thin_ticks(xs)
    labels = {r["depth"]: r.get("label") or r["layer"] for r in rows}
    # labels in full, on two lines where long ("stem conv + BN +<br>ReLU6"); automargin makes room for them
    fig.update_xaxes(tickmode="array", tickvals=shown, ticktext=[tick_label(labels[d]) for d in shown],
                     tickangle=-30 if len(shown) > 6 else 0, automargin=True, row=2, col=1,
                     title="depth stop (forward order)")
    fig.update_yaxes(range=[-0.03, 1.05], title="fraction", row=1, col=1)
    fig.update_yaxes(title="log10 cond", row=2, col=1)
    fig.update_layout(title=title, template="plotly_white", height=660, legend={"orientation": "h", "y": -0.3},
                      margin={"l": 70, "r": 20, "t": 80, "b": 150})
    return fig


JACOBIAN_CSV_FIELDS = ["layer", "label", "depth", "input_dim", "output_dim", "dim_ratio", "rank", "rank_fraction",
                       "sigma_max", "sigma_min", "condition_number", "log10_condition", "tolerance", "clarity",
                       "mode", "jacobian_mb", "jacobian_seconds", "svd_seconds", "seconds"]


def jacobian_title(settings: dict) -> str:
    return (f"Jacobian at the image · {settings.get('model')} · {settings.get('checkpoint')} · "
            f"{settings.get('size')} px · float64")


def write_jacobian(rows: Sequence[JacobianRow], settings: dict, out: Path) -> dict:
    """Write jacobian.json (settings + rows), jacobian.csv and jacobian.html (the chart) in `out`.

    Returns:
        The JSON written to jacobian.json, as a dict.
    """
    table = [r.to_json() for r in rows]
    return _write_table(Path(out), "jacobian", table, settings, JACOBIAN_CSV_FIELDS,
                        jacobian_figure(table, jacobian_title(settings)))
