"""Drawing on PIL images: fonts and glyph fitting, wrapped captions, and labelled grids of images (the exported
PNGs of every study). Captions and row names wrap onto more lines rather than lose their end: a label such as
"stem conv + BN + ReLU6" or a node such as "encoder.layers.encoder_layer_11" is drawn in full.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, field
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from core.images import to_pil
from core.report.text import wrap_words

CELL = 128  # smallest side of an image cell in the exported grids, px


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


@functools.lru_cache(maxsize=None)
def get_font(size: int):
    """PIL's own font at `size` px (Pillow >= 10.1 with FreeType), else its small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):  # older Pillow: no size
        return ImageFont.load_default()


def is_scalable(font) -> bool:
    return isinstance(font, ImageFont.FreeTypeFont)


@functools.lru_cache(maxsize=None)
def has_glyph(font, ch: str) -> bool:
    """Whether `font` draws `ch` (a missing glyph is drawn as the same box as an unassigned code point)."""
    if not is_scalable(font):
        return False
    missing = font.getmask("\U0010fffd")
    mask = font.getmask(ch)
    return mask.size != missing.size or bytes(mask) != bytes(missing)


_ASCII = {"✓": "ok", "✗": "x", "≤": "<=", "≥": ">=", "×": "x", "−": "-", "‖": "|", "′": "'", "₂": "2", "→": "->",
          "…": "...", "·": "-"}


def check_marks(font) -> tuple[str, str]:
    """(converged mark, not-converged mark): ✓/✗ where the font has them, else "ok"/"x"."""
    if has_glyph(font, "✓") and has_glyph(font, "✗"):
        return "✓", "✗"
    return "ok", "x"


def drawable(text: str, font) -> str:
    """`text` with each character the font cannot draw replaced by a plain one ("≤" -> "<=", else "?")."""
    if not is_scalable(font):  # the bitmap fallback font knows Latin-1 only
        text = "".join(_ASCII.get(ch, ch) if ord(ch) > 255 else ch for ch in text)
        return text.encode("latin-1", "replace").decode("latin-1")
    return "".join(ch if ch.isspace() or has_glyph(font, ch) else _ASCII.get(ch, "?") for ch in text)


def text_width(draw: ImageDraw.ImageDraw, text: str, font) -> float:
    return draw.textlength(drawable(text, font), font=font)


def truncate_text(draw, text: str, font, width: float) -> str:
    """`text`, cut with "…" to fit `width` px."""
    if text_width(draw, text, font) <= width:
        return text
    while text and text_width(draw, text + "…", font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap_text(draw, text: str, font, width: float, max_lines: int = 2) -> list[str]:
    """`text` in at most `max_lines` lines of `width` px (`core.report.text.wrap_words`): broken at " · " first,
    then at spaces, a node or file name too long for a line after ".", "_", "-" or "/"; only what does not fit
    in `max_lines` is shortened with "…" (prose at its end, a node name in its middle)."""
    return wrap_words(str(text), lambda line: text_width(draw, line, font) <= width, max_lines)


@dataclass
class Cell:
    image: object = None  # (3, H, W) tensor, or None for an empty cell
    lines: list = field(default_factory=list)  # (text, colour) caption lines under the image
    frame: bool = False  # red dashed frame: not converged


def dashed_frame(draw, x0: int, y0: int, w: int, h: int, colour="red", dash=6, width=3) -> None:
    for k in range(0, max(w, h), dash * 2):
        if k < w:
            draw.line([(x0 + k, y0), (x0 + min(k + dash, w), y0)], fill=colour, width=width)
            draw.line([(x0 + k, y0 + h), (x0 + min(k + dash, w), y0 + h)], fill=colour, width=width)
        if k < h:
            draw.line([(x0, y0 + k), (x0, y0 + min(k + dash, h))], fill=colour, width=width)
            draw.line([(x0 + w, y0 + k), (x0 + w, y0 + min(k + dash, h))], fill=colour, width=width)


def render_rows(rows: list[tuple[str, list[Cell], bool]], scale: int, title: str | None = None,
            side: int | None = None, text_px: int = 14, title_px: int = 17):
    """Draw rows of cells (name, cells, separator above) on one white canvas.

    Returns:
        (canvas, cell width in px, {(row, column): (x, y) of that image's top-left corner}).
    """
    first = next(c.image for _, cells, _ in rows for c in cells if c.image is not None)
    h, w = (int(s) * scale for s in first.shape[-2:])
    pad, gap = 6, 14
    font, tfont = get_font(text_px), get_font(title_px)
    line_h = text_px + 4 if is_scalable(font) else 12
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    named = any(name for name, _, _ in rows)
    if side is None:
        side = (min(220, int(max(text_width(scratch, n, font) for n, _, _ in rows)) + 2 * pad) if named else 0)
    n_cols = max(len(cells) for _, cells, _ in rows)
    width = side + pad + n_cols * (w + pad)
    # every caption line wraps onto up to three lines of the cell's width ("at 0.60 · encoder.layers.encoder_layer_11"
    # takes three at 128 px): a long label or node stays whole
    wrapped = {(i, j): [(ln, colour) for text, colour in c.lines for ln in wrap_text(scratch, text, font, w, 3)]
               for i, (_, cells, _) in enumerate(rows) for j, c in enumerate(cells)}
    names = [wrap_text(scratch, name, font, side - 2 * pad, max_lines=3) if name else [] for name, _, _ in rows]
    cap_lines = max((len(v) for v in wrapped.values()), default=0)
    cap_h = cap_lines * line_h + (4 if cap_lines else 0)
    title_lines = wrap_text(scratch, title, tfont, width - 2 * pad, max_lines=3) if title else []
    title_h = (len(title_lines) * (title_px + 6) + 6) if title_lines else 0
    row_h = h + cap_h + pad
    height = title_h + pad + len(rows) * row_h + sum(gap for _, _, sep in rows if sep)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(title_lines):
        draw.text((pad, 6 + k * (title_px + 6)), drawable(line, tfont), fill="black", font=tfont)
    boxes: dict[tuple[int, int], tuple[int, int]] = {}
    y = title_h + pad
    for i, (_, cells, sep) in enumerate(rows):
        if sep:
            draw.line([(pad, y + gap // 2 - 2), (width - pad, y + gap // 2 - 2)], fill="#cccccc", width=1)
            y += gap
        top = y + h // 2 - len(names[i]) * line_h // 2  # the name's lines centred on the row's images
        for k, line in enumerate(names[i]):
            draw.text((pad, top + k * line_h), drawable(line, font), fill="black", font=font)
        for j, c in enumerate(cells):
            x = side + pad + j * (w + pad)
            boxes[(i, j)] = (x, y)
            if c.image is not None:
                tile = to_pil(c.image)
                if scale != 1:
                    tile = tile.resize((w, h), Image.NEAREST)
                canvas.paste(tile, (x, y))
            if c.frame:
                dashed_frame(draw, x - 2, y - 2, w + 3, h + 3)
            for k, (text, colour) in enumerate(wrapped[(i, j)]):
                draw.text((x + 1, y + h + 3 + k * line_h), drawable(text, font), fill=colour, font=font)
        y += row_h
    return canvas, w, boxes


def column_bands(n_cols: int, repeat: int, max_columns: int) -> list[list[int]]:
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
    font = get_font(14)

    def lines(i: int, j: int) -> list:
        out = [(ln, "black") for ln in wrap_text(scratch, str(columns[j]), font, cell_w)] if j < len(columns) else []
        extra = captions[i][j] if captions is not None and j < len(captions[i]) else None
        if extra is None:
            return out
        for item in [extra] if isinstance(extra, (str, tuple)) else extra:
            out.append((item, "#333333") if isinstance(item, str) else tuple(item))
        return out

    rows, where = [], []
    for b, cols in enumerate(column_bands(n_cols, repeat, max_columns)):
        for i, row in enumerate(tiles):
            cells = [Cell(row[j] if j < len(row) else None, lines(i, j),
                           bool(marks is not None and j < len(marks[i]) and marks[i][j])) for j in cols]
            rows.append((str(row_names[i]) if i < len(row_names) else "", cells, b > 0 and i == 0))
            where.append([(i, j) for j in cols])
    canvas, cell, boxes = render_rows(rows, scale, title=title, side=side)
    placed: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for r, keys in enumerate(where):
        for c, key in enumerate(keys):
            placed.setdefault(key, []).append(boxes[(r, c)])
    return canvas, cell, placed
