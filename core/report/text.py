"""The words every report and page uses for the same things: titles, short names, metric names, and the
list of points that did not converge.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Sequence

from core.measures import CLARITY, MEASURES
from core.models.checkpoints import short_checkpoint

if TYPE_CHECKING:  # hints only: importing these would pull in the models
    from core.engine.result import InversionResult


METRICS = {  # key in a curve row -> axis title (the measures first, clarity leading: the curve's picker order)
    "clarity": "clarity: recognisable content (1 = the image, 0 = the run's start)",
    "fidelity": "pixel fidelity: SSIM (1 = the image, 0 = the run's start)",
    "structure": "structure: edges on luminance (1 = the image, 0 = the run's start)",
    "ssim_mean": "SSIM",
    "psnr_mean": "PSNR (dB)",
    "input_l2_mean": "m_i = ‖a_g − a‖₂",
    "mg_over_mr": "m_g / m_r (≤ 1: matched like a near-copy)",
}


def axis_title(metric: str) -> str:
    """A measure's name short enough for a chart's y axis ("clarity: recognisable content"): the whole of
    `METRICS` was cut at the chart's height on a 1280x720 screen; the metric picker above says the rest."""
    return METRICS.get(metric, metric).split(" (")[0]


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]

# One colour per checkpoint on every page and in every export: untrained blue, trained red, others after them.
CHECKPOINT_COLOURS = {"untrained": PALETTE[0], "trained": PALETTE[1]}
DASHES = ["solid", "dash", "dot", "dashdot"]


def checkpoint_colour(checkpoint: str, order: list[str] | None = None) -> str:
    """The colour of `checkpoint`: fixed for untrained and trained; another checkpoint (a file, a hub id) takes the
    next free colour by its place in `order` (the checkpoints shown together)."""
    if checkpoint in CHECKPOINT_COLOURS:
        return CHECKPOINT_COLOURS[checkpoint]
    others = [c for c in dict.fromkeys(order or [checkpoint]) if c not in CHECKPOINT_COLOURS]
    i = others.index(checkpoint) if checkpoint in others else 0
    return PALETTE[2 + i % (len(PALETTE) - 2)]


MAX_TICKS = 12  # most labelled stops on the curve's x axis


TICK_CHARS = 18  # longest line of a stop label on the x axes (a label takes two lines; `tick_label`)


def run_title(result: "InversionResult", checkpoint_display: str | None = None) -> str:
    """The one-line description of a run used as the title of its exported grid.

    Args:
        result: the run.
        checkpoint_display: how to name the checkpoint (e.g. a file's original name); default the
            result's checkpoint ("untrained", "trained" or a file's name without its folder).

    Returns:
        "resnet18 · untrained · layer2 (Conv3 = layer2 (block 2)) · 32 px · preset default · 120 steps".
    """
    ck = checkpoint_display or short_checkpoint(str(result.checkpoint))
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
        parts.append(" vs ".join(short_checkpoint(str(c)) for c in ([cks] if isinstance(cks, str) else cks)))
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


SHORT = {"clarity": "clarity", "fidelity": "pixel", "structure": "structure", "content": "content"}  # in captions


def measures_text(m, i: int | None = None) -> str:
    """A run's measures in a caption: "clarity 0.16 · pixel 0.00 · structure 0.02" (seed `i`'s, else the mean
    over seeds). Clarity is not repeated under its measure's own name; a run stored before the panel shows
    "clarity" only.

    Args:
        m: a run's metrics (`Metrics` or a dict).
        i: a seed's position, or None for the means.
    """
    names = ["clarity"] + [n for n in MEASURES if n != (m.get("clarity_measure") or CLARITY)]
    parts = []
    for n in names:
        v = m.get(n) if i is None else (m.get("clarity_per_seed" if n == "clarity" else f"{n}_per_seed") or [None] * (i + 1))[i]
        if v is not None:
            parts.append(f"{SHORT.get(n, n)} {v:.2f}")
    return " · ".join(parts)


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
    return row.get(metric)


def unconverged(rows: Sequence[dict]) -> list[dict]:
    """Rows whose seeds did not all reach m_g <= m_r (borderline or not converged), or degenerate."""
    return [r for r in rows if r.get("status", "converged") != "converged"]


def unconverged_text(rows: Sequence[dict]) -> str | None:
    """"untrained conv1 (borderline, m_g/m_r 1.19), ..." for the unconverged rows; None when every row converged.

    A row with a "model" (a comparison's) is named with it first: "vgg16 untrained classifier.6 (...)"."""
    bad = unconverged(rows)
    if not bad:
        return None
    return ", ".join((f"{r['model']} " if r.get("model") else "")
                     + f"{short_checkpoint(r['checkpoint'])} {r['layer']} ({r['status']}"
                     + (f", m_g/m_r {r['mg_over_mr_max']:.2f}" if r.get("mg_over_mr_max") is not None else "")
                     + ")" for r in bad)


def short_label(text: str, most: int = TICK_CHARS) -> str:
    """`text` cut with "…" to `most` characters (one line; `tick_label` wraps instead of cutting)."""
    text = str(text)
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


_PIECES = re.compile(r"[^._/\-]+[._/\-]*|[._/\-]+")  # "encoder.layers.x_1" -> "encoder.", "layers.", "x_1"


def _pieces(word: str, fits: Callable[[str], bool]) -> list[str]:
    """A word too long for a line, in pieces that fit: broken after ".", "_", "-" or "/" (a node name, a file
    name), and only a piece that still does not fit between characters."""
    out: list[str] = []
    for piece in _PIECES.findall(word) or [word]:
        if fits(piece):
            out.append(piece)
            continue
        cur = ""
        for ch in piece:
            if cur and not fits(cur + ch):
                out.append(cur)
                cur = ch
            else:
                cur += ch
        out.append(cur)
    return out


def shorten(text: str, fits: Callable[[str], bool]) -> str:
    """`text`, shortened with "…" until `fits` says yes: prose (with spaces) loses its end; one token (a node
    or file name) its middle, so its start and its most specific end stay ("encoder.lay…encoder_layer_11")."""
    if fits(text):
        return text
    if " " in text.strip():
        while text and not fits(text + "…"):
            text = text[:-1]
        return text.rstrip() + "…"
    head, tail = text[: (len(text) + 1) // 2], text[(len(text) + 1) // 2:]
    while (head or tail) and not fits(head + "…" + tail):
        if len(head) > len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return head + "…" + tail


def wrap_words(text: str, fits: Callable[[str], bool], max_lines: int = 2) -> list[str]:
    """`text` in at most `max_lines` lines that each `fits`: broken at " · " first, then at spaces, a word too long
    for a line after ".", "_", "-" or "/"; whatever is left past the last line is shortened into it (`shorten`).

    Args:
        text: the label.
        fits: whether a line fits (a pixel width, a character count).
        max_lines: most lines.

    Returns:
        The lines (at least one).
    """
    lines: list[str] = []
    seps: list[str] = []  # what stood in the text before each line: " · ", " " or "" (inside a broken word)
    for seg in str(text).split(" · "):
        if lines and fits(f"{lines[-1]} · {seg}"):
            lines[-1] = f"{lines[-1]} · {seg}"
            continue
        cur, sep_cur = "", " · " if lines else ""
        for w, word in enumerate(seg.split(" ")):
            parts = [word] if fits(word) else _pieces(word, fits)
            for k, part in enumerate(parts):
                sep = "" if k else (" " if w else "")
                cand = f"{cur}{sep}{part}" if cur else part
                if cur and not fits(cand):
                    lines.append(cur)
                    seps.append(sep_cur)
                    cur, sep_cur = part, sep
                else:
                    cur = cand
        lines.append(cur)
        seps.append(sep_cur)
    if len(lines) > max_lines:
        rest = lines[max_lines - 1] + "".join(sep + ln for sep, ln in zip(seps[max_lines:], lines[max_lines:]))
        lines = lines[: max_lines - 1] + [rest]
    return [shorten(ln, fits) for ln in lines]


def tick_label(text: str, most: int = TICK_CHARS, max_lines: int = 2) -> str:
    """An axis tick's label in full where it fits: up to `max_lines` lines of `most` characters joined by plotly's
    "<br>" ("Conv3 = layer2<br>(block 2)"), shortened with "…" only past that (`wrap_words`)."""
    return "<br>".join(wrap_words(str(text), lambda line: len(line) <= most, max_lines))


def thin_ticks(xs: Sequence[float], most: int = MAX_TICKS) -> list[float]:
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
