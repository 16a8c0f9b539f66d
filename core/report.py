"""Files and figures made from results: PNGs, grids, JSON/CSV and the plotly charts.

Shared by the command line and the app so both describe a run the same way: the trajectory chart
(`trajectory_figure`), the clarity curve (`curve_figure`), the seed-distance matrices
(`distance_figures`), the exported image grids (`result_grid`, `gallery`, `labelled_grid`), their
titles (`run_title`, `curve_title`) and the CSV downloads (`curve_csv`, `distances_csv`,
`trajectory_csv`).

Only light modules are imported at load time (no model code, no `core.curve`), so modules that
only store files can use `atomic_write` from here or from `core.atomic`.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PIL import Image, ImageDraw, ImageFont

from core.atomic import atomic_write
from core.images import to_pil

if TYPE_CHECKING:  # hints only: importing these would pull in the models
    from core.curve import CurveRow
    from core.engine import InversionResult

__all__ = [
    "METRICS", "atomic_write", "png_bytes", "run_title", "curve_title", "result_grid", "write_inversion",
    "row_value", "unconverged", "unconverged_text", "curve_figure", "labelled_grid", "gallery", "curve_csv",
    "write_curve", "log_ticks", "trajectory_figure", "distance_figures", "distances_csv", "trajectory_csv",
]

METRICS = {  # key in a curve row -> axis title
    "clarity": "clarity (1 = exact, 0 = the run's start)",
    "ssim_mean": "SSIM",
    "psnr_mean": "PSNR (dB)",
    "input_l2_mean": "m_i = ‖a_g − a‖₂",
    "mg_over_mr": "m_g / m_r (≤ 1: matched like a near-copy)",
}

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
CELL = 128  # smallest side of an image cell in the exported grids, px
MAX_TICKS = 12  # most labelled stops on the curve's x axis
TICK_CHARS = 18  # longest stop label on the curve's x axis


def png_bytes(img: Image.Image) -> bytes:
    """The PNG encoding of `img`.

    Args:
        img: a PIL image.

    Returns:
        The PNG file's bytes.
    """
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _short_ck(ck: str) -> str:
    return ck if ck in ("untrained", "trained") else Path(ck).name


# --------------------------------------------------------------------------- titles


def run_title(result: "InversionResult", checkpoint_display: str | None = None) -> str:
    """The one-line description of a run used as the title of its exported grid.

    Args:
        result: the run.
        checkpoint_display: how to name the checkpoint (e.g. a file's original name); default the
            result's checkpoint ("untrained", "trained" or a file's name without its folder).

    Returns:
        "resnet18 · untrained · layer2 (Conv3 = layer2 (block 2)) · 32 px · preset default · 120 steps".
    """
    ck = checkpoint_display or _short_ck(str(result.checkpoint))
    return (f"{result.model} · {ck} · {result.layer} ({result.label}) · {result.size} px · "
            f"preset {result.preset.name} · {result.steps_done} steps")


def curve_title(settings: dict, stops: int | None = None) -> str:
    """The one-line description of a clarity curve (chart and gallery title).

    Args:
        settings: the curve's settings. Read: "model", "checkpoints" (or "cks"), "size", "seeds" (a list or a
            count), "preset" (a name, a preset's dict or a Preset), "iters" (else the preset's), and "stops" (a
            list or a count) when `stops` is not given. Missing keys are left out.
        stops: the number of depth stops, overriding settings["stops"].

    Returns:
        "efficientnet_lite0 · untrained vs trained · 22 stops · 64 px · 2 seeds · preset default · ≤ 200 steps".
    """
    parts = [str(settings["model"])] if settings.get("model") else []
    cks = settings.get("checkpoints", settings.get("cks"))
    if cks:
        parts.append(" vs ".join(_short_ck(str(c)) for c in ([cks] if isinstance(cks, str) else cks)))
    if stops is None:
        s = settings.get("stops")
        stops = len(s) if isinstance(s, (list, tuple)) else s
    if stops is not None:
        parts.append(f"{stops} stop{'s' if stops != 1 else ''}")
    if settings.get("size"):
        parts.append(f"{settings['size']} px")
    seeds = settings.get("seeds")
    if seeds is not None:
        k = len(seeds) if isinstance(seeds, (list, tuple)) else int(seeds)
        parts.append(f"{k} seed{'s' if k != 1 else ''}")
    preset, iters = settings.get("preset"), settings.get("iters")
    if isinstance(preset, dict):
        iters = iters if iters is not None else preset.get("iters")
        preset = preset.get("name")
    elif preset is not None and not isinstance(preset, str):  # a Preset
        iters = iters if iters is not None else getattr(preset, "iters", None)
        preset = getattr(preset, "name", preset)
    if preset:
        parts.append(f"preset {preset}")
    if iters is not None:
        parts.append(f"≤ {iters} steps")
    return " · ".join(parts)


# --------------------------------------------------------------------------- drawing text on PIL images


@functools.lru_cache(maxsize=None)
def _font(size: int):
    """PIL's own font at `size` px (Pillow >= 10.1 with FreeType), else its small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):  # older Pillow: no size
        return ImageFont.load_default()


def _scalable(font) -> bool:
    return isinstance(font, ImageFont.FreeTypeFont)


@functools.lru_cache(maxsize=None)
def _has_glyph(font, ch: str) -> bool:
    """Whether `font` draws `ch` (a missing glyph is drawn as the same box as an unassigned code point)."""
    if not _scalable(font):
        return False
    missing = font.getmask("\U0010fffd")
    mask = font.getmask(ch)
    return mask.size != missing.size or bytes(mask) != bytes(missing)


_ASCII = {"✓": "ok", "✗": "x", "≤": "<=", "≥": ">=", "×": "x", "−": "-", "‖": "|", "′": "'", "₂": "2", "→": "->",
          "…": "...", "·": "-"}


def _marks(font) -> tuple[str, str]:
    """(converged mark, not-converged mark): ✓/✗ where the font has them, else "ok"/"x"."""
    if _has_glyph(font, "✓") and _has_glyph(font, "✗"):
        return "✓", "✗"
    return "ok", "x"


def _safe(text: str, font) -> str:
    """`text` with each character the font cannot draw replaced by a plain one ("≤" -> "<=", else "?")."""
    if not _scalable(font):  # the bitmap fallback font knows Latin-1 only
        text = "".join(_ASCII.get(ch, ch) if ord(ch) > 255 else ch for ch in text)
        return text.encode("latin-1", "replace").decode("latin-1")
    return "".join(ch if ch.isspace() or _has_glyph(font, ch) else _ASCII.get(ch, "?") for ch in text)


def _width(draw: ImageDraw.ImageDraw, text: str, font) -> float:
    return draw.textlength(_safe(text, font), font=font)


def _truncate(draw, text: str, font, width: float) -> str:
    """`text`, cut with "…" to fit `width` px."""
    if _width(draw, text, font) <= width:
        return text
    while text and _width(draw, text + "…", font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _wrap(draw, text: str, font, width: float, max_lines: int = 2) -> list[str]:
    """`text` in at most `max_lines` lines of `width` px: broken at " · " first, then at spaces; the last line is
    cut with "…" when the text does not fit."""
    lines: list[str] = []
    for seg in str(text).split(" · "):
        if lines and _width(draw, f"{lines[-1]} · {seg}", font) <= width:
            lines[-1] = f"{lines[-1]} · {seg}"
            continue
        cur = ""
        for word in seg.split(" "):
            cand = f"{cur} {word}" if cur else word
            if cur and _width(draw, cand, font) > width:
                lines.append(cur)
                cur = word
            else:
                cur = cand
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    return [_truncate(draw, ln, font, width) for ln in lines]


@dataclass
class _Cell:
    image: object = None  # (3, H, W) tensor, or None for an empty cell
    lines: list = field(default_factory=list)  # (text, colour) caption lines under the image
    frame: bool = False  # red dashed frame: not converged


def _dashed_frame(draw, x0: int, y0: int, w: int, h: int, colour="red", dash=6, width=3) -> None:
    for k in range(0, max(w, h), dash * 2):
        if k < w:
            draw.line([(x0 + k, y0), (x0 + min(k + dash, w), y0)], fill=colour, width=width)
            draw.line([(x0 + k, y0 + h), (x0 + min(k + dash, w), y0 + h)], fill=colour, width=width)
        if k < h:
            draw.line([(x0, y0 + k), (x0, y0 + min(k + dash, h))], fill=colour, width=width)
            draw.line([(x0 + w, y0 + k), (x0 + w, y0 + min(k + dash, h))], fill=colour, width=width)


def _render(rows: list[tuple[str, list[_Cell], bool]], scale: int, title: str | None = None,
            side: int | None = None, text_px: int = 14, title_px: int = 17):
    """Draw rows of cells (name, cells, separator above) on one white canvas.

    Returns:
        (canvas, cell width in px, {(row, column): (x, y) of that image's top-left corner}).
    """
    first = next(c.image for _, cells, _ in rows for c in cells if c.image is not None)
    h, w = (int(s) * scale for s in first.shape[-2:])
    pad, gap = 6, 14
    font, tfont = _font(text_px), _font(title_px)
    line_h = text_px + 4 if _scalable(font) else 12
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    named = any(name for name, _, _ in rows)
    if side is None:
        side = (min(220, int(max(_width(scratch, n, font) for n, _, _ in rows)) + 2 * pad) if named else 0)
    n_cols = max(len(cells) for _, cells, _ in rows)
    width = side + pad + n_cols * (w + pad)
    cap_lines = max((len(c.lines) for _, cells, _ in rows for c in cells), default=0)
    cap_h = cap_lines * line_h + (4 if cap_lines else 0)
    title_lines = _wrap(scratch, title, tfont, width - 2 * pad, max_lines=3) if title else []
    title_h = (len(title_lines) * (title_px + 6) + 6) if title_lines else 0
    row_h = h + cap_h + pad
    height = title_h + pad + len(rows) * row_h + sum(gap for _, _, sep in rows if sep)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(title_lines):
        draw.text((pad, 6 + k * (title_px + 6)), _safe(line, tfont), fill="black", font=tfont)
    boxes: dict[tuple[int, int], tuple[int, int]] = {}
    y = title_h + pad
    for i, (name, cells, sep) in enumerate(rows):
        if sep:
            draw.line([(pad, y + gap // 2 - 2), (width - pad, y + gap // 2 - 2)], fill="#cccccc", width=1)
            y += gap
        if name:
            draw.text((pad, y + h // 2 - line_h // 2), _safe(_truncate(draw, name, font, side - 2 * pad), font),
                      fill="black", font=font)
        for j, c in enumerate(cells):
            x = side + pad + j * (w + pad)
            boxes[(i, j)] = (x, y)
            if c.image is not None:
                tile = to_pil(c.image)
                if scale != 1:
                    tile = tile.resize((w, h), Image.NEAREST)
                canvas.paste(tile, (x, y))
            if c.frame:
                _dashed_frame(draw, x - 2, y - 2, w + 3, h + 3)
            for k, (text, colour) in enumerate(c.lines):
                draw.text((x + 1, y + h + 3 + k * line_h), _safe(_truncate(draw, text, font, w), font),
                          fill=colour, font=font)
        y += row_h
    return canvas, w, boxes


def _bands(n_cols: int, repeat: int, max_columns: int) -> list[list[int]]:
    """Column indices per band: the first `repeat` columns in every band, then at most `max_columns` more."""
    fixed = list(range(min(repeat, n_cols)))
    rest = list(range(len(fixed), n_cols))
    step = max(1, int(max_columns))
    return [fixed + rest[i:i + step] for i in range(0, len(rest), step)] or [fixed]


def labelled_grid(tiles, columns: Sequence[str], row_names: Sequence[str], side: int | None = None, *,
                  captions=None, marks=None, title: str | None = None, max_columns: int = 8, repeat: int = 1,
                  min_cell: int = CELL):
    """Rows of images with a caption under each cell and row names on the left, wrapped into bands.

    Each cell is its image enlarged by an integer nearest-neighbour factor to at least `min_cell` px.
    Past `max_columns` columns (not counting the `repeat` leading ones, e.g. the original) the grid
    continues in another band below; each band repeats the leading columns and the row names.

    Args:
        tiles: rows of (3, H, W) images in [0, 1], all one size; a None entry leaves its cell blank.
        columns: one name per column, the first caption line of each cell (wrapped to two lines).
        row_names: one name per row, drawn on the left.
        side: width of the row-name margin in px (default: the longest name's).
        captions: optional rows of extra caption lines per cell: a str, a (text, colour) pair or a list of them.
        marks: optional rows of booleans: True draws a red dashed frame (not converged).
        title: an optional title line (wrapped) at the top.
        max_columns: most columns per band besides the repeated ones.
        repeat: how many leading columns every band repeats.
        min_cell: smallest cell side in px.

    Returns:
        (canvas, cell side in px, {(row, column): [(x, y), ...]}: the top-left corner of each drawing of that
        cell, one per band it appears in).
    """
    h = min(int(s) for s in next(t for row in tiles for t in row if t is not None).shape[-2:])
    scale = max(1, math.ceil(min_cell / h))
    n_cols = max(len(r) for r in tiles)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    cell_w = int(next(t for row in tiles for t in row if t is not None).shape[-1]) * scale
    font = _font(14)

    def lines(i: int, j: int) -> list:
        out = [(ln, "black") for ln in _wrap(scratch, str(columns[j]), font, cell_w)] if j < len(columns) else []
        extra = captions[i][j] if captions is not None and j < len(captions[i]) else None
        if extra is None:
            return out
        for item in [extra] if isinstance(extra, (str, tuple)) else extra:
            out.append((item, "#333333") if isinstance(item, str) else tuple(item))
        return out

    rows, where = [], []
    for b, cols in enumerate(_bands(n_cols, repeat, max_columns)):
        for i, row in enumerate(tiles):
            cells = [_Cell(row[j] if j < len(row) else None, lines(i, j),
                           bool(marks is not None and j < len(marks[i]) and marks[i][j])) for j in cols]
            rows.append((str(row_names[i]) if i < len(row_names) else "", cells, b > 0 and i == 0))
            where.append([(i, j) for j in cols])
    canvas, cell, boxes = _render(rows, scale, title=title, side=side)
    placed: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for r, keys in enumerate(where):
        for c, key in enumerate(keys):
            placed.setdefault(key, []).append(boxes[(r, c)])
    return canvas, cell, placed


# --------------------------------------------------------------------------- one run


def result_grid(result: "InversionResult", title: str | None = None, cell: int = CELL) -> Image.Image:
    """The exported picture of one run: the original, then each seed's reconstruction with its caption.

    Args:
        result: the run.
        title: the title line (default `run_title(result)`; "" for none).
        cell: smallest cell side in px (images are enlarged by an integer nearest-neighbour factor).

    Returns:
        A PIL image: one row, or rows of 4 when there are more than 5 images; under each seed
        "seed s · SSIM 0.42 · converged" (or "not converged", in red, with a red dashed frame).
    """
    m = result.metrics or {}
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    scale = max(1, math.ceil(cell / min(int(s) for s in result.original.shape[-2:])))
    w = int(result.original.shape[-1]) * scale
    font = _font(14)
    cells = [_Cell(result.original, [("original", "black")])]
    ssim, conv = m.get("ssim") or [], m.get("converged") or []
    for i, (s, img) in enumerate(zip(result.seeds, result.images)):
        text = f"seed {s}"
        if i < len(ssim):
            text += f" · SSIM {ssim[i]:.2f}"
        ok = bool(conv[i]) if i < len(conv) else None
        if ok is not None:
            text += " · converged" if ok else " · not converged"
        colour = "black" if ok is not False else "#c00000"
        cells.append(_Cell(img, [(ln, colour) for ln in _wrap(scratch, text, font, w)], ok is False))
    per_row = 4 if len(cells) > 5 else len(cells)
    rows = [("", cells[k:k + per_row], False) for k in range(0, len(cells), per_row)]
    title = run_title(result) if title is None else title
    return _render(rows, scale, title=title or None)[0]


def write_inversion(result: "InversionResult", out: Path, checkpoint_display: str | None = None) -> dict:
    """Write result.json, original.png, seed_<s>.png per seed and grid.png (titled) in `out`.

    Args:
        result: the run.
        out: the folder (created when missing).
        checkpoint_display: the checkpoint's name in the grid's title (default the result's).

    Returns:
        The JSON written to result.json, as a dict.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    atomic_write(out / "result.json", json.dumps(data, indent=2))
    to_pil(result.original).save(out / "original.png")
    for seed, img in zip(result.seeds, result.images):
        to_pil(img).save(out / f"seed_{seed}.png")
    atomic_write(out / "grid.png", png_bytes(result_grid(result, run_title(result, checkpoint_display))))
    return data


# --------------------------------------------------------------------------- the clarity curve


def row_value(row: dict, metric: str) -> float | None:
    """A curve row's value of `metric`.

    Args:
        row: a curve row (`CurveRow.to_json()`).
        metric: a key of METRICS.

    Returns:
        The value; for "mg_over_mr" the worst seed's, and None (not plotted) for a degenerate layer.
    """
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


def _short_label(text: str, most: int = TICK_CHARS) -> str:
    text = str(text)
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _thin(xs: Sequence[float], most: int = MAX_TICKS) -> list[float]:
    """At most `most` of the sorted positions `xs`, roughly evenly spaced along the axis, the first and the last
    always: a position is kept when it lies at least (last - first) / (most - 1) after the previous one kept."""
    xs = sorted(xs)
    if len(xs) <= most:
        return list(xs)
    gap = (xs[-1] - xs[0]) / (most - 1)
    keep = [xs[0]]
    for x in xs[1:-1]:
        if x - keep[-1] >= gap - 1e-9 and xs[-1] - x >= gap / 2:
            keep.append(x)
    return keep[: most - 1] + [xs[-1]]


def seed_band(rows: Sequence[dict], metric: str) -> tuple[list | None, list | None]:
    """The band over seeds that curve rows carry for `metric` (SSIM ± its spread, clarity's min to max);
    (None, None) for a metric without one."""
    if metric == "ssim_mean":
        return [r["ssim_mean"] - r["ssim_std"] for r in rows], [r["ssim_mean"] + r["ssim_std"] for r in rows]
    if metric == "clarity":
        return [r["clarity_min"] for r in rows], [r["clarity_max"] for r in rows]
    return None, None


def curve_figure(rows: Sequence[dict], metric: str = "clarity", title: str | None = None):
    """Metric against depth, one line per checkpoint, with a band over seeds.

    The x axis is the stop's numeric depth (forward order; graph nodes between two stops sit at
    +0.5), labelled with the stops' short labels (at most 12 labelled ticks, the first and last
    always). A hollow marker is a point that did not converge (borderline, not converged or
    degenerate).

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
    for i, ck in enumerate(dict.fromkeys(r["checkpoint"] for r in rows)):
        mine = sorted((r for r in rows if r["checkpoint"] == ck), key=lambda r: r["depth"])
        xs = [float(r["depth"]) for r in mine]
        ys = [row_value(r, metric) for r in mine]
        color = PALETTE[i % len(PALETTE)]
        lo, hi = seed_band(mine, metric)
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
            customdata=[[str(r.get("label") or r["layer"]), s_, str(r["layer"])] for r, s_ in zip(mine, status)],
            hovertemplate="%{customdata[0]} (%{customdata[2]})<br>%{y:.3f} · %{customdata[1]}<extra>"
            + _short_ck(ck) + "</extra>"))
    if any(r.get("status", "converged") != "converged" for r in rows):
        fig.add_annotation(text="hollow = not converged / borderline / degenerate", xref="paper", yref="paper",
                           x=1, y=1.0, xanchor="right", yanchor="bottom", showarrow=False, font={"size": 11})
    if metric == "mg_over_mr":
        fig.add_hline(y=1.0, line_dash="dot", annotation_text="m_g = m_r")
    shown = _thin(depths)
    xaxis = {"title": "depth stop (forward order)", "tickmode": "array", "tickvals": shown,
             "ticktext": [_short_label(labels[d][0]) for d in shown], "tickangle": -30 if len(shown) > 6 else 0,
             "showgrid": False, "zeroline": False, "automargin": True}
    if depths:
        xaxis["range"] = [depths[0] - 0.5, depths[-1] + 0.5]
    # a slanted first label reaches left of the plot, and plotly drops a label that leaves the figure: room for it
    left = max(60, int(6 * len(xaxis["ticktext"][0]) * 0.87) + 16) if xaxis["tickangle"] and shown else 60
    fig.update_layout(title=title, xaxis=xaxis, yaxis={"title": METRICS.get(metric, metric)},
                      template="plotly_white", legend={"orientation": "h", "y": 1.08},
                      margin={"l": left, "r": 20, "t": 60, "b": 90})
    return fig


def cell_verdict(result: "InversionResult", seed_index: int, marks: tuple[str, str]):
    """One gallery cell's picture and verdict lines: the seed's image, "SSIM 0.42 ok" in green, or the SSIM with
    a cross and the status in red, and whether the cell gets the red frame.

    Returns:
        (image or None, [(text, colour)], not converged)."""
    from core.verdict import status

    ok_mark, bad_mark = marks
    m = result.metrics
    st = status(m)
    ssim = m.get("ssim") or []
    value = f"SSIM {ssim[seed_index]:.2f}" if seed_index < len(ssim) else "SSIM ?"
    if st == "converged":
        lines = [(f"{value} {ok_mark}", "#1a7f37")]
    else:
        lines = [(f"{value} {bad_mark}", "#c00000"), (st.upper() if st == "not converged" else st, "#c00000")]
    images = result.images
    return (images[seed_index] if seed_index < len(images) else None), lines, st != "converged"


def gallery(rows: Sequence["CurveRow"], original, seed_index: int = 0, title: str | None = None,
            max_columns: int = 8) -> Image.Image:
    """The paper's figure: one row per checkpoint, one column per depth stop, the original first.

    Cells are at least 128 px (integer nearest-neighbour upscale). Under each cell: the stop's label,
    its node name (when it differs) and "SSIM 0.42 ✓" ("ok" where the font lacks ✓), or "SSIM 0.12 ✗"
    and the status ("NOT CONVERGED", "borderline", "degenerate") in red with a red dashed frame for a row that did not converge (borderline, not converged,
    degenerate). Past `max_columns` stops the grid continues in another band below, which repeats
    the original and the row names (22 stops, 8 per band: 3 bands).

    Args:
        rows: the curve's rows.
        original: the inverted image, (3, H, W) in [0, 1].
        seed_index: which seed's reconstruction to show.
        title: an optional title line at the top (e.g. `curve_title(settings)`).
        max_columns: most stop columns per band.

    Returns:
        A PIL image.
    """
    checkpoints = list(dict.fromkeys(r.checkpoint for r in rows))
    stops = sorted({(float(r.depth), r.layer, r.label) for r in rows})
    stops = list(dict.fromkeys((d, layer) for d, layer, _ in stops))
    labels = {r.layer: r.label for r in rows}
    by = {(r.checkpoint, r.layer): r for r in rows}
    font = _font(14)
    ok_mark, bad_mark = _marks(font)
    tiles, captions, marks = [], [], []
    for ck in checkpoints:
        t_row, c_row, m_row = [original], [None], [False]
        for _, layer in stops:
            r = by.get((ck, layer))
            lines = [(layer, "#666666")] if labels.get(layer) and labels[layer] != layer else []
            if r is None:
                t_row.append(None)
                c_row.append(lines + [("not run", "#666666")])
                m_row.append(False)
                continue
            tile, verdict, bad = cell_verdict(r.result, seed_index, (ok_mark, bad_mark))
            t_row.append(tile)
            c_row.append(lines + verdict)
            m_row.append(bad)
        tiles.append(t_row)
        captions.append(c_row)
        marks.append(m_row)
    columns = ["original", *[str(labels.get(layer) or layer) for _, layer in stops]]
    return labelled_grid(tiles, columns, [_short_ck(str(ck)) for ck in checkpoints], captions=captions,
                         marks=marks, title=title, max_columns=max_columns, repeat=1)[0]


def curve_csv(table: Sequence[dict]) -> str:
    """The curve's rows as CSV text (a header, then one line per row).

    Args:
        table: curve rows (`CurveRow.to_json()`); the columns are every key, in first-seen order.

    Returns:
        The CSV text; "" for no rows.
    """
    if not table:
        return ""
    fields = list(dict.fromkeys(k for row in table for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def write_curve(rows: Sequence["CurveRow"], settings: dict, original, out: Path) -> dict:
    """Write curve.json, curve.csv, curve.html and gallery.png (titled) in `out`.

    Unconverged rows are listed under the chart in curve.html.

    Args:
        rows: the curve's rows.
        settings: the curve's settings (stored in curve.json; the title reads model, checkpoints, size, seeds,
            preset and iters).
        original: the inverted image, (3, H, W).
        out: the folder (created when missing).

    Returns:
        The JSON written to curve.json, as a dict.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = [r.to_json() for r in rows]
    data = {**settings, "rows": table}
    atomic_write(out / "curve.json", json.dumps(data, indent=2))
    atomic_write(out / "curve.csv", curve_csv(table))
    title = curve_title(settings, stops=len({r["layer"] for r in table}))
    fig = curve_figure(table, "clarity", title)
    bad = unconverged_text(table)
    note = (f"<p><b>Not converged, borderline or degenerate (hollow points):</b> {html_escape(bad)}</p>" if bad
            else "<p>Every point converged (m_g ≤ m_r on every seed).</p>")
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    atomic_write(out / "curve.html", html.replace("</body>", note + "</body>"))
    atomic_write(out / "gallery.png", png_bytes(gallery(rows, original, title=title)))
    return data


# --------------------------------------------------------------------------- trajectories


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


def _ref_ok(v) -> bool:
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
    m_r = float(m_r) if _ref_ok(m_r) else None
    shift = float(shift) if _ref_ok(shift) else None

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


def trajectory_csv(result: "InversionResult") -> str:
    """The run's trajectories as CSV text: one line per (step, seed).

    Args:
        result: the run (its history: "step", "embedding_l2", "input_l2" and "loss", one list per seed).

    Returns:
        CSV with columns step, seed, m_g, m_i, loss (empty where the history lacks a value).
    """
    h = result.history or {}
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["step", "seed", "m_g", "m_i", "loss"])

    def at(key: str, i: int, n: int):
        series = h.get(key) or []
        return series[i][n] if i < len(series) and n < len(series[i]) else ""

    for n, step in enumerate(h.get("step", [])):
        for i, seed in enumerate(result.seeds):
            writer.writerow([step, seed, at("embedding_l2", i, n), at("input_l2", i, n), at("loss", i, n)])
    return buf.getvalue()


# --------------------------------------------------------------------------- non-uniqueness


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


def _matrix(mat) -> list[list[float]]:
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
              _matrix(m.get("seed_distances_input")), m.get("shift_input_l2")),
             ("between their embeddings", "‖O(a_i) − O(a_j)‖₂", "m_r",
              _matrix(m.get("seed_distances_embedding")), m.get("reference_l2"))]
    ratios = []
    for *_, mat, ref in specs:
        if _ref_ok(ref):
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


def distances_csv(result: "InversionResult") -> str:
    """The seed-pair distances as CSV text, one line per pair (i < j).

    Args:
        result: the run (metrics "seed_distances_input", "shift_input_l2", "seed_distances_embedding",
            "reference_l2").

    Returns:
        CSV with columns seed_i, seed_j, pixel_l2, pixel_ratio, embedding_l2, embedding_ratio; a ratio is
        empty where its reference is 0.
    """
    m = result.metrics or {}
    px, emb = _matrix(m.get("seed_distances_input")), _matrix(m.get("seed_distances_embedding"))
    shift, ref = m.get("shift_input_l2"), m.get("reference_l2")
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["seed_i", "seed_j", "pixel_l2", "pixel_ratio", "embedding_l2", "embedding_ratio"])
    seeds = list(result.seeds)
    for i in range(len(seeds)):
        for j in range(i + 1, len(seeds)):
            p = px[i][j] if i < len(px) and j < len(px[i]) else None
            e = emb[i][j] if i < len(emb) and j < len(emb[i]) else None
            writer.writerow([seeds[i], seeds[j], "" if p is None else p,
                             "" if p is None or not _ref_ok(shift) else p / shift, "" if e is None else e,
                             "" if e is None or not _ref_ok(ref) else e / ref])
    return buf.getvalue()
