"""The plotly charts of one run and one curve: the clarity curve, the m_g/m_i trajectories and the
seed-distance matrices.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from core.report.text import (PALETTE, axis_title, checkpoint_colour, row_value, short_checkpoint, thin_ticks,
                              tick_label)

if TYPE_CHECKING:  # hints only: importing these would pull in the models
    from core.engine.result import InversionResult


def seed_band(rows: Sequence[dict], metric: str) -> tuple[list | None, list | None]:
    """The band over seeds that curve rows carry for `metric` (SSIM ± its spread, a measure's min to max);
    (None, None) for a metric without one."""
    if metric == "ssim_mean":
        return [r["ssim_mean"] - r["ssim_std"] for r in rows], [r["ssim_mean"] + r["ssim_std"] for r in rows]
    if all(r.get(f"{metric}_min") is not None and r.get(f"{metric}_max") is not None for r in rows):  # the measures
        return [r[f"{metric}_min"] for r in rows], [r[f"{metric}_max"] for r in rows]
    return None, None


def curve_figure(rows: Sequence[dict], metric: str = "clarity", title: str | None = None):
    """Metric against depth, one line per checkpoint, with a band over seeds.

    The x axis is the stop's numeric depth (forward order; graph nodes between two stops sit at
    +0.5), labelled with the stops' labels in full, on two lines where long (`core.report.text.tick_label`;
    at most 12 labelled ticks, the first and last always). A hollow marker is a point that did not
    converge (borderline, not converged or degenerate).

    Args:
        rows: curve rows (`CurveRow.to_json()`): "checkpoint", "layer", "label", "depth", the metric, "status".
        metric: a key of METRICS.
        title: the chart's title.

    Returns:
        A plotly Figure.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    labels: dict[float, tuple[str, str]] = {}
    for r in rows:
        labels.setdefault(float(r["depth"]), (str(r.get("label") or r["layer"]), str(r["layer"])))
    depths = sorted(labels)
    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in rows))
    for ck in checkpoints:
        mine = sorted((r for r in rows if r["checkpoint"] == ck), key=lambda r: r["depth"])
        xs = [float(r["depth"]) for r in mine]
        ys = [row_value(r, metric) for r in mine]
        color = checkpoint_colour(ck, checkpoints)
        lo, hi = seed_band(mine, metric)
        if lo is not None:
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", mode="lines", line={"width": 0},
                                     fillcolor=color, opacity=0.18, hoverinfo="skip", showlegend=False,
                                     name=f"{ck} spread"))
        status = [r.get("status", "converged") for r in mine]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=short_checkpoint(ck), line={"color": color},
            # hollow markers: the point is not a converged result (borderline, not converged or degenerate);
            # a filled white circle with the line's colour as outline (an "-open" symbol would take its
            # outline from the fill colour and vanish)
            marker={"size": 9, "symbol": "circle", "color": ["white" if s_ != "converged" else color for s_ in status],
                    "line": {"color": color, "width": 2}},
            customdata=[[str(r.get("label") or r["layer"]), s_, str(r["layer"])] for r, s_ in zip(mine, status)],
            hovertemplate="%{customdata[0]} (%{customdata[2]})<br>%{y:.3f} · %{customdata[1]}<extra>"
            + short_checkpoint(ck) + "</extra>"))
    if any(r.get("status", "converged") != "converged" for r in rows):
        fig.add_annotation(text="hollow = not converged / borderline / degenerate", xref="paper", yref="paper",
                           x=1, y=1.0, xanchor="right", yanchor="bottom", showarrow=False, font={"size": 11})
    if metric == "mg_over_mr":
        fig.add_hline(y=1.0, line_dash="dot", annotation_text="m_g = m_r")
    shown = thin_ticks(depths)
    xaxis = {"title": "depth stop (forward order)", "tickmode": "array", "tickvals": shown,
             "ticktext": [tick_label(labels[d][0]) for d in shown], "tickangle": -30 if len(shown) > 6 else 0,
             "showgrid": False, "zeroline": False, "automargin": True}
    if depths:
        xaxis["range"] = [depths[0] - 0.5, depths[-1] + 0.5]
    # a slanted first label reaches left of the plot, and plotly drops a label that leaves the figure: room for it
    first = max(len(line) for line in xaxis["ticktext"][0].split("<br>")) if shown else 0  # its longest line
    left = max(60, int(6 * first * 0.87) + 16) if xaxis["tickangle"] and shown else 60
    fig.update_layout(title=title, xaxis=xaxis, yaxis={"title": axis_title(metric)},
                      template="plotly_white", legend={"orientation": "h", "y": 1.08},
                      margin={"l": left, "r": 20, "t": 60, "b": 90})
    return fig


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log axis over `values`, labelled in full ("70", "100", "200").

    1-2-5 steps; powers of ten only over many decades; every digit within about one decade; none
    (leaving plotly's) when even that gives fewer than two. Plotly's own labels show only the
    leading digit between powers of ten ("7, 8, 9, 100, 2"), which reads as values below 100
    sitting above it.

    Args:
        values: numbers; None, NaN, inf and values <= 0 are ignored.

    Returns:
        (tick values, tick labels), or ([], []).
    """
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return [], []
    lo, hi = min(finite), max(finite)

    def at(digits):
        return [d * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.floor(math.log10(hi)) + 1)
                for d in digits if lo <= d * 10.0 ** e <= hi]

    ticks = at((1, 2, 5))
    if len(ticks) > 10:  # many decades: powers of ten only
        ticks = at((1,))
    elif len(ticks) < 3:  # less than a decade: every digit
        ticks = at(range(1, 10))
    if len(ticks) < 2:  # too narrow for round values: plotly's own ticks
        return [], []
    return ticks, [f"{t:.6g}" for t in ticks]


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round values (steps of 1, 2 or 5 times a power of ten) between lo and hi, about `target` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    raw = (hi - lo) / target
    base = 10.0 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= raw)
    first = math.ceil(lo / step)
    ticks = [round(k * step, 12) for k in range(first, math.floor(hi / step) + 1)]
    return [t for t in ticks if t > 0]


def _clean(series, positive: bool = False) -> list[float | None]:
    """A series for plotly: NaN, inf (and, on a log axis, values <= 0) become gaps."""
    out = []
    for v in series:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if math.isfinite(f) and (f > 0 or not positive) else None)
    return out


def is_reference(v) -> bool:
    return v is not None and not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def trajectory_figure(history: dict, seeds, m_r: float | None = None, shift: float | None = None, height=320):
    """m_g (log scale) and m_i per seed against the step, with the near-copy references as dotted lines.

    The y ranges are set from the data: the m_g axis spans log10 of the smallest to the largest finite
    positive m_g and m_r, the m_i axis 0 (or the minimum, when below) to the largest m_i and the shift,
    each padded by 5% (the log axis by at least 0.05 decades). NaN, inf and (on the log axis) values
    <= 0 are left out. Each reference line is labelled inside the plot at its left end, where the
    descending curves are still far above it.

    Args:
        history: a result's history: "step", "embedding_l2" and "input_l2" (one list per seed).
        seeds: the seeds, in the history's order.
        m_r: the embedding distance of a near-copy (reference for m_g), or None.
        shift: the pixel distance of the near-copy ‖a′−a‖₂ (reference for m_i), or None.
        height: the figure's height in px.

    Returns:
        A plotly Figure: m_g on the left (xaxis/yaxis), m_i on the right (xaxis2/yaxis2).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("m_g = ‖O(a_g) − O(a)‖₂", "m_i = ‖a_g − a‖₂"))
    steps = list(history.get("step", []))
    mg_all, mi_all = [], []
    for i, s in enumerate(seeds):
        color = PALETTE[i % len(PALETTE)]
        mg = _clean(history["embedding_l2"][i], positive=True) if i < len(history.get("embedding_l2", [])) else []
        mi = _clean(history["input_l2"][i]) if i < len(history.get("input_l2", [])) else []
        mg_all += [v for v in mg if v is not None]
        mi_all += [v for v in mi if v is not None]
        fig.add_trace(go.Scatter(x=steps, y=mg, name=f"seed {s}", legendgroup=str(s), line={"color": color}),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=mi, name=f"seed {s}", legendgroup=str(s), showlegend=False,
                                 line={"color": color}), row=1, col=2)
    m_r = float(m_r) if is_reference(m_r) else None
    shift = float(shift) if is_reference(shift) else None

    log_axis: dict = {"type": "log"}
    values = mg_all + ([m_r] if m_r else [])
    if values:
        lo, hi = math.log10(min(values)), math.log10(max(values))
        pad = max(0.05 * (hi - lo), 0.05)
        log_axis["range"] = [lo - pad, hi + pad]
        tickvals, ticktext = log_ticks([10 ** (lo - pad), 10 ** (hi + pad)])
        if len(tickvals) < 3:  # under a decade with few round digits: evenly spaced round values, if more
            nice = _nice_ticks(10 ** (lo - pad), 10 ** (hi + pad))
            if len(nice) > len(tickvals):
                tickvals, ticktext = nice, [f"{t:.6g}" for t in nice]
        if len(tickvals) >= 2:
            log_axis.update(tickmode="array", tickvals=tickvals, ticktext=ticktext)
    fig.update_yaxes(row=1, col=1, **log_axis)

    lin_axis: dict = {}
    values = mi_all + ([shift] if shift else [])
    if values:
        lo, hi = min(0.0, min(values)), max(values)
        pad = 0.05 * (hi - lo) if hi > lo else max(0.05 * abs(hi), 0.05)
        lin_axis["range"] = [lo - pad if lo < 0 or hi == lo else lo, hi + pad]
        fig.update_yaxes(row=1, col=2, **lin_axis)

    def label(text: str, y: float, axis: list[float] | None, pos: float, xref: str, yref: str):
        # below the line when the line sits near the top of the plot, so the text stays inside it
        top = axis is not None and (pos - axis[0]) / max(axis[1] - axis[0], 1e-12) > 0.85
        # at the left end: the curves start far above their reference and end near it, so the left is clear
        fig.add_annotation(text=text, x=0.01, xref=xref, y=y, yref=yref, xanchor="left",
                           yanchor="top" if top else "bottom", showarrow=False, font={"size": 11},
                           bgcolor="rgba(255,255,255,0.6)")

    if m_r:
        # the label goes on separately: on a log axis plotly reads an annotation's y as log10(y) (a shape's as y),
        # and add_hline's own label at y = m_r stretched the axis to 10^m_r, flattening every curve
        fig.add_hline(y=m_r, line_dash="dot", row=1, col=1)
        label("m_r (near-copy)", math.log10(m_r), log_axis.get("range"), math.log10(m_r), "x domain", "y")
    if shift:
        fig.add_hline(y=shift, line_dash="dot", row=1, col=2)
        label("‖a′−a‖₂ (near-copy)", shift, lin_axis.get("range"), shift, "x2 domain", "y2")
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, template="plotly_white", margin={"l": 40, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def _ratio_text(r: float) -> str:
    if r >= 10:
        return f"{r:.0f}×"
    if r >= 0.01:
        return f"{r:.2g}×"
    return f"{r:.1e}×" if r > 0 else "0×"


RATIO_TICKS = (0.001, 0.01, 0.1, 0.2, 0.5, 1, 2, 5, 10, 100, 1000)


MAX_RATIO_DECADES = 3.0  # the shared colour scale spans at most 1/1000× .. 1000×


def _zval(ratio: float, span: float) -> float | None:
    """log10(ratio) clipped to ±span (0 and inf at the ends); None for NaN."""
    if math.isnan(ratio):
        return None
    if ratio <= 0:
        return -span
    if math.isinf(ratio):
        return span
    return max(-span, min(span, math.log10(ratio)))


def as_matrix(mat) -> list[list[float]]:
    return [[float(v) for v in row] for row in (mat or [])]


def distance_figures(result: "InversionResult"):
    """The seed-by-seed distance matrices, each divided by its near-copy reference, on one shared colour scale.

    Two figures (the app shows them side by side): pixel distances ‖a_i − a_j‖₂ / ‖a′−a‖₂
    (metrics "seed_distances_input" / "shift_input_l2") and embedding distances
    ‖O(a_i) − O(a_j)‖₂ / m_r ("seed_distances_embedding" / "reference_l2"). The colour is
    log10(ratio) on a diverging scale centred at 1× (zmid 0), with the same symmetric zmin/zmax in
    both figures (± the largest |log10 ratio| of either, at least log10 2, at most 3 decades); the
    colour bar is labelled as ratios (0.5×, 1×, 2×...), each cell shows its ratio ("2.3×") and the
    diagonal is blank. Far apart in pixels (red, left) but close in the layer (blue, right):
    different images the layer cannot tell apart. A matrix whose reference is 0 (degenerate layer)
    shows the raw distances instead, on its own scale, and says so in its title.

    Args:
        result: the run.

    Returns:
        (fig_pixels, fig_embedding), two plotly Figures with one Heatmap each.
    """
    import plotly.graph_objects as go

    m = result.metrics or {}
    names = [f"seed {s}" for s in result.seeds]
    specs = [("between reconstructions (pixels)", "‖a_i − a_j‖₂", "‖a′−a‖₂",
              as_matrix(m.get("seed_distances_input")), m.get("shift_input_l2")),
             ("between their embeddings", "‖O(a_i) − O(a_j)‖₂", "m_r",
              as_matrix(m.get("seed_distances_embedding")), m.get("reference_l2"))]
    ratios = []
    for *_, mat, ref in specs:
        if is_reference(ref):
            ratios.append([[v / ref for v in row] for row in mat])
        else:
            ratios.append(None)
    logs = [abs(math.log10(v)) for rat in ratios if rat for i, row in enumerate(rat) for j, v in enumerate(row)
            if i != j and math.isfinite(v) and v > 0]
    span = min(max([math.log10(2)] + logs), MAX_RATIO_DECADES)
    ticks = [t for t in RATIO_TICKS if abs(math.log10(t)) <= span + 1e-9]
    figs = []
    for (title, what, ref_name, mat, ref), rat in zip(specs, ratios):
        n = len(mat)
        if rat is not None:
            z = [[None if i == j else _zval(v, span) for j, v in enumerate(row)] for i, row in enumerate(rat)]
            text = [["" if i == j else _ratio_text(v) for j, v in enumerate(row)] for i, row in enumerate(rat)]
            heat = go.Heatmap(
                z=z, x=names[:n], y=names[:n], text=text, texttemplate="%{text}", customdata=mat,
                colorscale="RdBu_r", zmid=0, zmin=-span, zmax=span,
                colorbar={"title": {"text": f"÷ {ref_name}", "side": "right"}, "tickmode": "array",
                          "tickvals": [math.log10(t) for t in ticks], "ticktext": [f"{t:g}×" for t in ticks]},
                hovertemplate="%{y} vs %{x}: %{customdata:.3g} = %{text} " + ref_name + "<extra></extra>")
            full = f"{title}: {what} ÷ {ref_name}<br><sub>{ref_name} = {ref:.3g} (a near-copy's distance)</sub>"
        else:
            z = [[None if i == j else v for j, v in enumerate(row)] for i, row in enumerate(mat)]
            top = max([v for i, row in enumerate(z) for v in row if v is not None and math.isfinite(v)], default=0.0)
            heat = go.Heatmap(z=z, x=names[:n], y=names[:n], colorscale="Viridis", texttemplate="%{z:.3g}",
                              zmin=0.0, zmax=top if top > 0 else 1.0,
                              hovertemplate="%{y} vs %{x}: %{z:.3g}<extra></extra>")
            full = (f"{title}: {what}, raw<br><sub>the reference {ref_name} is 0 (degenerate layer): "
                    "distances not divided</sub>")
        fig = go.Figure(heat)
        fig.update_layout(title=full, height=360, template="plotly_white", margin={"l": 10, "r": 10, "t": 70, "b": 10},
                          yaxis={"autorange": "reversed"})
        figs.append(fig)
    return figs[0], figs[1]
