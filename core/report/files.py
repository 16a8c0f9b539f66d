"""The files of one run and one curve: image grids (PNG), CSV tables, JSON and the curve's HTML.
"""

from __future__ import annotations

import csv
import io
import json
import math
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PIL import Image, ImageDraw

from core.atomic import atomic_write
from core.engine.run_reading import status
from core.images import to_pil
from core.report.draw import CELL, Cell, check_marks, get_font, labelled_grid, png_bytes, render_rows, wrap_text
from core.report.figures import as_matrix, curve_figure, is_reference
from core.report.text import curve_title, measures_text, run_title, short_checkpoint, unconverged_text

if TYPE_CHECKING:  # hints only: importing these would pull in the models
    from core.engine.result import InversionResult
    from core.studies.curve import CurveRow


__all__ = [
    "result_grid", "write_inversion", "cell_mark", "gallery", "curve_csv", "write_curve", "trajectory_csv",
    "distances_csv",
]


def seed_cells(result: "InversionResult", width: int, original: bool = True) -> list[Cell]:
    """A run's grid cells: the original (or an empty cell, for a row under another run's), then each seed with
    "seed s · clarity 0.16 · pixel 0.00 · structure 0.02 · converged" wrapped to `width` px ("not converged" in
    red, with a red dashed frame)."""
    m = result.metrics or {}
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = get_font(14)
    cells = [Cell(result.original, [("original", "black")]) if original else Cell(None, [])]
    conv = m.get("converged") or []
    for i, (s, img) in enumerate(zip(result.seeds, result.images)):
        text = " · ".join(t for t in (f"seed {s}", measures_text(m, i) if m.get("clarity_per_seed") else "") if t)
        ok = bool(conv[i]) if i < len(conv) else None
        if ok is not None:
            text += " · converged" if ok else " · not converged"
        colour = "black" if ok is not False else "#c00000"
        cells.append(Cell(img, [(ln, colour) for ln in wrap_text(scratch, text, font, width)], ok is False))
    return cells


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
    scale = max(1, math.ceil(cell / min(int(s) for s in result.original.shape[-2:])))
    cells = seed_cells(result, int(result.original.shape[-1]) * scale)
    per_row = 4 if len(cells) > 5 else len(cells)
    rows = [("", cells[k:k + per_row], False) for k in range(0, len(cells), per_row)]
    title = run_title(result) if title is None else title
    return render_rows(rows, scale, title=title or None)[0]


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


def cell_mark(result: "InversionResult", seed_index: int, marks: tuple[str, str]):
    """One gallery cell's picture and mark lines: the seed's image, "SSIM 0.42 ok" in green, or the SSIM with
    a cross and the status in red, and whether the cell gets the red frame.

    Returns:
        (image or None, [(text, colour)], not converged)."""
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
    font = get_font(14)
    ok_mark, bad_mark = check_marks(font)
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
            tile, mark, bad = cell_mark(r.result, seed_index, (ok_mark, bad_mark))
            t_row.append(tile)
            c_row.append(lines + mark)
            m_row.append(bad)
        tiles.append(t_row)
        captions.append(c_row)
        marks.append(m_row)
    columns = ["original", *[str(labels.get(layer) or layer) for _, layer in stops]]
    return labelled_grid(tiles, columns, [short_checkpoint(str(ck)) for ck in checkpoints], captions=captions,
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
    px, emb = as_matrix(m.get("seed_distances_input")), as_matrix(m.get("seed_distances_embedding"))
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
                             "" if p is None or not is_reference(shift) else p / shift, "" if e is None else e,
                             "" if e is None or not is_reference(ref) else e / ref])
    return buf.getvalue()
