"""Models side by side: the clarity curves of several models (and checkpoints) on one relative-depth axis.

Relative depth puts every model on [0, 1]: 0 is the input and 1 the logits. A row whose stop index
is `depth` (from `core.curve.resolve_layers`; another graph node sits at +0.5) in a model with
`n_stops` depth stops sits at `(depth + 1) / n_stops`: the first stop at 1 / n_stops, the last stop,
which is every registered model's logits, at 1.

    lines, skipped = plan_compare(["resnet18", "vgg16"], ["untrained"], 32, layers=6)
    rows = list(iter_compare(lines, image, seeds=[0, 1], preset=get_preset("default", iters=150)))
    write_compare(rows, settings, image, Path("out"), skipped)

Each model × checkpoint is one `core.curve.iter_curve` over its own stops, so every stop is one
`core.jobs.run` (cache included): a rerun, or a stop the clarity curve page already ran, is instant.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from html import escape as html_escape
from pathlib import Path
from typing import Callable, Iterator, Sequence

from core.architectures import get_architecture
from core.errors import UserError, WeightsNotCached

__all__ = [
    "relative_depth", "spread", "parse_models", "common_sizes", "check_sizes", "Line", "layers_for",
    "plan_compare", "CompareRow", "iter_compare", "compare_title", "compare_figure", "default_bins", "align",
    "compare_gallery", "unconverged_text", "write_compare",
]

DASHES = ["solid", "dash", "dot", "dashdot"]  # one per checkpoint, in the order given
MAX_BINS = 10  # gallery columns when none are chosen: 0.1, 0.2 ... 1.0 for long curves (`default_bins`)


def relative_depth(depth: float, n_stops: int) -> float:
    """Where a row sits between the input (0) and the logits (1).

    Args:
        depth: the row's stop index (`core.curve.resolve_layers`; other graph nodes sit at +0.5).
        n_stops: the model's number of depth stops (its last stop is its logits).

    Returns:
        (depth + 1) / n_stops, clipped to [0, 1].
    """
    if n_stops < 1:
        raise ValueError(f"a model needs at least one depth stop (got {n_stops})")
    return min(1.0, max(0.0, (float(depth) + 1.0) / n_stops))


def spread(n: int, k: int) -> list[int]:
    """`k` indices spread evenly over range(n), the first and the last (the logits) always included.

    Args:
        n: how many stops the model has.
        k: how many to keep (all when k >= n; the logits alone when k == 1).

    Returns:
        Sorted, distinct indices.
    """
    if k >= n:
        return list(range(n))
    if k <= 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def parse_models(models: str | Sequence[str]) -> list[str]:
    """A comma list or a sequence of architecture names, checked and without repeats."""
    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models) if m and m.strip()]
    if not names:
        raise UserError("choose at least one model to compare (see `python -m core models`)")
    for m in names:
        get_architecture(m)  # unknown names: one line listing the known ones
    return list(dict.fromkeys(names))


def common_sizes(models: Sequence[str], most: int = 1024) -> tuple[int, int]:
    """(smallest size, step): every size `smallest + k * step` up to `most` suits all of `models`."""
    archs = [get_architecture(m) for m in models]
    step = math.lcm(*[a.size_multiple for a in archs])
    lo = max(a.min_size for a in archs)
    return lo + (-lo) % step, step


def check_sizes(models: Sequence[str], size: int) -> None:
    """Raise one UserError naming every model `size` does not suit, and a size that suits all of them."""
    bad = []
    for m in models:
        try:
            get_architecture(m).check_size(size)
        except UserError as exc:
            bad.append(str(exc))
    if bad:
        lo, step = common_sizes(models)
        near = max(lo, lo + round((size - lo) / step) * step) if isinstance(size, int) else lo
        fits = (f"every chosen model takes {lo} px" + (f" and every {step} px above it" if step > 1 else " or more")
                + (f" (nearest: {near})" if near != lo else ""))
        raise UserError("; ".join(bad) + f"; {fits}")


@dataclass
class Line:
    """One model × checkpoint of a comparison: its loaded model and the stops it runs."""

    model: str
    checkpoint: str
    loaded: object  # core.checkpoints.LoadedModel
    n_stops: int
    plan: list  # (depth, node, label), forward order (`core.curve.resolve_layers`)

    @property
    def name(self) -> str:
        return f"{self.model} · {_short_ck(self.checkpoint)}"

    @property
    def nodes(self) -> list[str]:
        return [node for _, node, _ in self.plan]


def _short_ck(ck: str) -> str:
    return ck if ck in ("untrained", "trained") else Path(str(ck)).name


def layers_for(loaded, layers: str | int | Sequence[str] | None = "stops") -> list[tuple[float, str, str]]:
    """(depth, node, label) of the stops a model runs, in forward order.

    Args:
        loaded: the model (`core.checkpoints.LoadedModel`).
        layers: "stops"/None for every depth stop, an int k for k stops spread evenly over the model (its first
            stop and its logits included), or node names that every compared model must have.
    """
    from core.curve import resolve_layers
    from core.encoder import depth_stops

    if layers is None or layers == "stops":
        return resolve_layers(loaded, "stops")
    if isinstance(layers, int) and not isinstance(layers, bool):
        if layers < 1:
            raise UserError(f"stops per model must be at least 1 (got {layers})")
        stops = depth_stops(loaded)
        return [(i, stops[i].node, stops[i].label) for i in spread(len(stops), layers)]
    if not layers:
        raise UserError("choose at least one layer, 'stops' for all, or a number of stops per model")
    try:
        return resolve_layers(loaded, list(dict.fromkeys(layers)))
    except UserError as exc:
        raise UserError(f"a layer list applies to every compared model: {exc}") from None


def plan_compare(models: str | Sequence[str], checkpoints: Sequence[str], size: int,
                 layers: str | int | Sequence[str] | None = "stops", init_seed: int = 0,
                 loader: Callable | None = None) -> tuple[list[Line], list[str]]:
    """Check the settings and load every model × checkpoint before any run.

    Trained weights that are not on disk skip that model × checkpoint with a note saying how to get them;
    any other problem (unknown model or layer, a size one model cannot take, an unreadable file) is a
    UserError naming the model.

    Args:
        models: architecture names (a comma list or a sequence).
        checkpoints: "untrained", "trained" or state-dict paths, tried on every model.
        size: the image side in px (checked against every model first).
        layers: see `layers_for`.
        init_seed: the untrained initialisation's seed.
        loader: `loader(arch, checkpoint, size, init_seed) -> LoadedModel` (default `core.checkpoints.load_model`;
            the app passes its cached one).

    Returns:
        (lines, skipped notes), lines model by model, checkpoints in the order given.
    """
    names = parse_models(models)
    checkpoints = list(dict.fromkeys(c.strip() for c in checkpoints if c and c.strip()))
    if not checkpoints:
        raise UserError("choose at least one checkpoint (untrained, trained or a path)")
    check_sizes(names, size)
    if loader is None:
        from core.checkpoints import load_model as loader
    from core.encoder import depth_stops

    lines, skipped = [], []
    for m in names:
        for ck in checkpoints:
            if ck == "trained" and not get_architecture(m).has_trained:
                skipped.append(f"skipped {m} × trained: {m} has no trained weights in this project")
                continue
            try:
                loaded = loader(m, ck, size, init_seed)
            except WeightsNotCached as exc:
                skipped.append(f"skipped {m} × {ck}: {exc}")
                continue
            except UserError as exc:
                raise UserError(f"{m} × {_short_ck(ck)}: {exc}") from None
            lines.append(Line(m, ck, loaded, len(depth_stops(loaded)), layers_for(loaded, layers)))
    if not lines:
        raise UserError("nothing to compare: " + "; ".join(skipped))
    return lines, skipped


@dataclass
class CompareRow:
    """One stop of one model × checkpoint: the curve's row plus where it sits on the relative-depth axis."""

    model: str
    n_stops: int
    row: object  # core.curve.CurveRow

    checkpoint = property(lambda self: self.row.checkpoint)
    layer = property(lambda self: self.row.layer)
    label = property(lambda self: self.row.label)
    depth = property(lambda self: self.row.depth)
    result = property(lambda self: self.row.result)
    cached = property(lambda self: self.row.cached)

    @property
    def relative_depth(self) -> float:
        return relative_depth(self.row.depth, self.n_stops)

    @property
    def line(self) -> str:
        return f"{self.model} · {_short_ck(self.checkpoint)}"

    def to_json(self) -> dict:
        """model, checkpoint, layer, label, depth, relative_depth, n_stops, then every `CurveRow.to_json` field."""
        d = self.row.to_json()
        return {"model": self.model, "checkpoint": d["checkpoint"], "layer": d["layer"], "label": d["label"],
                "depth": d["depth"], "relative_depth": round(self.relative_depth, 6), "n_stops": self.n_stops, **d}


def iter_compare(lines: Sequence[Line], image, seeds: Sequence[int] = (0, 1), preset=None, device: str = "auto", *,
                 on_stop: Callable[[int, int, str, str], None] | None = None, on_snapshot=None, on_note=None,
                 callbacks=None, every: int = 10, speed=None, cache=None,
                 use_cache: bool = True, batch_stops: str = "auto") -> Iterator[CompareRow]:
    """Yield one row per (model × checkpoint, stop): each line is one `core.curve.iter_curve` over its stops.

    Args:
        lines: from `plan_compare`.
        image: (3, N, N) in [0, 1], N the size the lines were planned for.
        seeds, preset, device, every, speed, cache, use_cache, batch_stops: as for `core.curve.iter_curve`.
        on_stop: `on_stop(done, total, line name, layer)` before each run, and once at the end with layer "".
        on_snapshot, on_note: progress hooks (or give `callbacks`, a `core.jobs.Callbacks`).

    Returns:
        An iterator of `CompareRow`s, line by line, stops in forward order.
    """
    from core.curve import iter_curve
    from core.jobs import Callbacks

    cb = callbacks or Callbacks(snapshot=on_snapshot, progress=on_snapshot, note=on_note)
    total, base = sum(len(line.plan) for line in lines), 0
    for line in lines:
        def stop(done, _total, _ck, layer, base=base, name=line.name):
            if on_stop and layer:
                on_stop(base + done, total, name, layer)

        for row in iter_curve(line.model, image, [line.checkpoint], line.nodes, seeds, preset, device,
                              on_stop=stop, every=every, speed=speed, models=[line.loaded], cache=cache,
                              use_cache=use_cache, callbacks=cb, batch_stops=batch_stops):
            yield CompareRow(line.model, line.n_stops, row)
        base += len(line.plan)
    if on_stop:
        on_stop(total, total, "", "")


# --------------------------------------------------------------------------- the chart


def compare_title(settings: dict) -> str:
    """"resnet18, vgg16 · untrained vs trained · 32 px · 2 seeds · preset default · ≤ 150 steps"."""
    from core.report import curve_title

    s = {k: v for k, v in settings.items() if k not in ("model", "stops")}
    s["model"] = ", ".join(settings.get("models") or [])
    return curve_title(s)


def _where(depth: float, n: int) -> str:
    if float(depth).is_integer():
        return f"stop {int(depth) + 1} of {n}"
    return f"between stops {math.floor(depth) + 1} and {math.floor(depth) + 2} of {n}"


def compare_figure(table: Sequence[dict], metric: str = "clarity", title: str | None = None):
    """Metric against relative depth, one line per model × checkpoint, with a band over seeds.

    The conventions of `core.report.curve_figure`: the band is the spread over seeds (clarity min..max, or
    SSIM ± its std), a hollow marker is a point that did not converge (borderline, not converged,
    degenerate). One colour per model, one dash per checkpoint. Hover: model · checkpoint, the stop's label
    and node, its index among the model's stops, its relative depth, the value and status.

    Args:
        table: `CompareRow.to_json()` rows.
        metric: a key of `core.report.METRICS`.
        title: the chart's title.

    Returns:
        A plotly Figure, x from 0 (input) to 1 (logits).
    """
    import plotly.graph_objects as go

    from core.report import METRICS, PALETTE, row_value, seed_band

    fig = go.Figure()
    models = list(dict.fromkeys(r["model"] for r in table))
    cks = list(dict.fromkeys(r["checkpoint"] for r in table))
    for model, ck in dict.fromkeys((r["model"], r["checkpoint"]) for r in table):
        mine = sorted((r for r in table if r["model"] == model and r["checkpoint"] == ck),
                      key=lambda r: r["relative_depth"])
        name = f"{model} · {_short_ck(ck)}"
        xs = [float(r["relative_depth"]) for r in mine]
        ys = [row_value(r, metric) for r in mine]
        color = PALETTE[models.index(model) % len(PALETTE)]
        lo, hi = seed_band(mine, metric)
        if lo is not None:
            fig.add_trace(go.Scatter(x=xs + xs[::-1], y=hi + lo[::-1], fill="toself", mode="lines", line={"width": 0},
                                     fillcolor=color, opacity=0.15, hoverinfo="skip", showlegend=False,
                                     legendgroup=name, name=f"{name} spread"))
        status = [r.get("status", "converged") for r in mine]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers", name=name, legendgroup=name,
            line={"color": color, "dash": DASHES[cks.index(ck) % len(DASHES)]},
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
        yaxis={"title": METRICS.get(metric, metric)}, margin={"l": 60, "r": 20, "t": 60, "b": 60})
    return fig


def unconverged_text(table: Sequence[dict]) -> str | None:
    """"vgg16 untrained classifier.6 (not converged, m_g/m_r 3.10), ..."; None when every row converged."""
    bad = [r for r in table if r.get("status", "converged") != "converged"]
    if not bad:
        return None
    return ", ".join(f"{r['model']} {_short_ck(r['checkpoint'])} {r['layer']} ({r['status']}"
                     + (f", m_g/m_r {r['mg_over_mr_max']:.2f}" if r.get("mg_over_mr_max") is not None else "")
                     + ")" for r in bad)


# --------------------------------------------------------------------------- the gallery


def default_bins(rows: Sequence[CompareRow], most: int = MAX_BINS) -> list[float]:
    """The gallery's columns: 0.1, 0.2 ... 1.0 when some line ran at least `most` stops; otherwise, with k the
    most stops any line ran, the mean relative depth of the i-th stop over the lines that ran k (i = 1..k), so a
    thinned comparison (k stops per model) shows each line's stops once, the first and the logits included."""
    per_line: dict[str, list[float]] = {}
    for r in rows:
        per_line.setdefault(r.line, []).append(r.relative_depth)
    k = max((len(v) for v in per_line.values()), default=0)
    if k >= most or k == 0:
        return [round(j / most, 3) for j in range(1, most + 1)]
    full = [sorted(v) for v in per_line.values() if len(v) == k]
    return [round(sum(v[i] for v in full) / len(full), 3) for i in range(k)]


def align(rows: Sequence[CompareRow], bins: Sequence[float]) -> dict[str, list[CompareRow]]:
    """For each model × checkpoint, the row nearest each relative depth in `bins` (ties: the shallower).

    Returns:
        {line name: [row per bin]}, lines in first-seen order; a row may fill several bins when a line ran
        fewer stops than there are bins.
    """
    out: dict[str, list[CompareRow]] = {}
    for name in dict.fromkeys(r.line for r in rows):
        mine = sorted((r for r in rows if r.line == name), key=lambda r: r.relative_depth)
        out[name] = [min(mine, key=lambda r: (abs(r.relative_depth - b), r.relative_depth)) for b in bins]
    return out


def compare_gallery(rows: Sequence[CompareRow], original, bins: Sequence[float] | None = None, seed_index: int = 0,
                    title: str | None = None, max_columns: int = MAX_BINS):
    """One row per model × checkpoint, one column per relative depth, the original first.

    Each cell is the line's stop nearest the column's relative depth (`align`), first seed by default, at least
    128 px; under it the stop's label, its own relative depth, "SSIM 0.42 ✓" in green, or "SSIM 0.12 ✗" and the
    status in red with a red dashed frame when it did not converge.

    Args:
        rows: the comparison's rows (all one image size).
        original: the inverted image, (3, H, W) in [0, 1].
        bins: relative depths of the columns (default `default_bins`).
        seed_index: which seed's reconstruction to show.
        title: a title line at the top.
        max_columns: most depth columns per band (past it the grid continues below).

    Returns:
        A PIL image.
    """
    from core.report import _font, _marks, cell_verdict, labelled_grid  # noqa: PLC2701 - the curve gallery's marks

    bins = list(bins) if bins else default_bins(rows)
    ok_mark, bad_mark = _marks(_font(14))
    tiles, captions, marks, names = [], [], [], []
    for name, cells in align(rows, bins).items():
        t_row, c_row, m_row = [original], [None], [False]
        for r in cells:
            tile, verdict, bad = cell_verdict(r.result, seed_index, (ok_mark, bad_mark))
            t_row.append(tile)
            c_row.append([(str(r.label or r.layer), "#333333"), (f"at {r.relative_depth:.2f} · {r.layer}", "#666666")]
                         + verdict)
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

    Returns:
        The JSON written to compare.json, as a dict.
    """
    from core.report import atomic_write, curve_csv, png_bytes

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
