"""A sweep's files and chart (the sweep itself is `core.studies.sweep`).

    outcome = run_sweep(sweep, out)
    write_sweep(outcome, sweep, out)   # results.parquet, summary.csv, summary.html, sweep.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from core.atomic import atomic_write
from core.report.text import DASHES, axis_title, checkpoint_colour
from core.studies.sweep import COLUMNS, SUMMARY_COLUMNS, Outcome, Sweep, summarize

__all__ = ["summary_figure", "write_sweep"]


def summary_figure(summary: Sequence[dict], title: str | None = None, metric: str = "clarity"):
    """A measure's mean ± its 95% interval over images, per model and checkpoint, against relative depth.

    Args:
        summary: `core.studies.summarize` rows.
        title: the chart's title.
        metric: "clarity" or a measure of `core.measures.MEASURES` ("fidelity", "structure").
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    lines = list(dict.fromkeys((s["model"], s["checkpoint"]) for s in summary))
    models = list(dict.fromkeys(m for m, _ in lines))
    checkpoints = list(dict.fromkeys(ck for _, ck in lines))
    for model, ck in lines:  # a colour per checkpoint (as on every page), a dash per model
        mine = sorted((s for s in summary if (s["model"], s["checkpoint"]) == (model, ck)),
                      key=lambda s: s["relative_depth"])
        xs = [s["relative_depth"] for s in mine]
        color = checkpoint_colour(ck, checkpoints)
        fig.add_trace(go.Scatter(x=xs + xs[::-1], y=[s[f"{metric}_ci_high"] for s in mine]
                                 + [s[f"{metric}_ci_low"] for s in mine][::-1], fill="toself", mode="lines",
                                 line={"width": 0}, fillcolor=color, opacity=0.2, hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(
            x=xs, y=[s[f"{metric}_mean"] for s in mine], mode="lines+markers", name=f"{model} · {ck}",
            line={"color": color, "dash": DASHES[models.index(model) % len(DASHES)]}, customdata=[[s["label"], s["layer"], s["n"], s[f"{metric}_ci_low"], s[f"{metric}_ci_high"],
                                                s["converged_fraction"]] for s in mine],
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>" + metric + " %{y:.3f} "
                          "[%{customdata[3]:.3f}, %{customdata[4]:.3f}] over %{customdata[2]} images (converged runs)<br>"
                          "converged %{customdata[5]:.0%}<extra>" + f"{model} · {ck}" + "</extra>"))
    what = "mean and 95% bootstrap interval over images (converged runs)"  # the y axis says it short, to fit
    fig.update_layout(title=f"{title}<br><sup>{what}</sup>" if title else what, template="plotly_white", xaxis={"title": "relative depth (0 = input, 1 = logits)",
                                                                   "range": [0, 1.02]},
                      # short enough to fit the chart's height at 1280x720 (a longer title was cut)
                      yaxis={"title": f"{axis_title(metric).split(':')[0]}: mean, 95% CI"},
                      legend={"orientation": "h", "y": 1.1}, margin={"l": 60, "r": 20, "t": 70, "b": 60})
    return fig


def write_sweep(outcome: Outcome, sweep: Sweep, out: str | os.PathLike) -> None:
    """Write results.parquet (a row per run), summary.csv, summary.html and sweep.json (settings, skipped, notes).

    Args:
        outcome: what `core.studies.sweep.run_sweep` returned (interrupted ones too: their finished rows).
        sweep: what was run.
        out: the sweep's folder (the one given to `run_sweep`).
    """
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(outcome.rows, columns=COLUMNS)
    tmp = out / ".results.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, out / "results.parquet")
    summary = summarize(outcome.rows)
    atomic_write(out / "summary.csv", pd.DataFrame(summary, columns=SUMMARY_COLUMNS).to_csv(index=False))
    n_images = len({r["image"] for r in outcome.rows})
    title = (f"{', '.join(sweep.models)} · {', '.join(sweep.checkpoints)} · {n_images} images · {sweep.size} px · "
             f"{len(sweep.seeds)} seeds · {sweep.preset.name} preset")
    html = summary_figure(summary, title).to_html(include_plotlyjs=True, full_html=True)
    atomic_write(out / "summary.html", html)
    meta = {**sweep.to_dict(), "backend": outcome.backend, "done_before": outcome.done_before, "ran": outcome.ran,
            "failed": outcome.failed, "seconds": round(outcome.seconds, 3), "interrupted": outcome.interrupted}
    atomic_write(out / "sweep.json", json.dumps(meta, indent=1, default=str))
