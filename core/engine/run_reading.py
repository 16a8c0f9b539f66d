"""The plain-language reading of a run: converged or not, and if so unique or not.

Shared by the app, the command line and the reports, so every place says the same thing. Around
`m_g / m_r = 1` there is a borderline band (`core.engine.stopping.BORDERLINE`) instead of a hard flip, a
degenerate layer (m_r about 0) is said to be one, and a layer whose signal is nearly dead says so.

Uniqueness (`uniqueness`) has a band too, on the ratio `mean(m_i) / ‖a′−a‖₂` of a converged run:

    ratio <= NEAR_COPY (1.5)          "keeps the image"  (also: pixel fidelity >= KEEPS_FIDELITY, 0.9)
    NEAR_COPY < ratio < NON_UNIQUE    "borderline"       more seeds or more steps decide
    ratio >= NON_UNIQUE (3.0)         "non-unique"       the layer cannot tell the images apart

Why these numbers. `a′ = a + N(0, 1/25)` is not clamped, so `‖a′−a‖₂ ≈ √N / 25` and a ratio r is an RMS
pixel error of about r / 25 = 0.04 r. Up to 1.5 (RMS 0.06, about 15 of 255 levels) the reconstruction is
as far from the image as a near-copy give or take half of it: a blurred but faithful picture lands there
(a cell with SSIM 0.89 read 1.4). From 3 (RMS 0.12, about 31 of 255 levels, nine times the near-copy's
squared error) the difference is plainly visible, yet still well below where a run that learned nothing
sits (the start `a_0 ~ N(0.7, 1/20)` reads 8-11 on the sample images at 64 px), so "non-unique" means a
different picture with the same embedding, not a failed descent. In between, one number does not settle
it; docs/method.md asks for `m_i ≫ ‖a′−a‖₂`, and a ratio under 3 is not that.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from core.engine.stopping import BORDERLINE

if TYPE_CHECKING:  # hints only: the result's to_json reads this module
    from core.engine.result import InversionResult

DEAD_FLAT = 0.9  # more than this fraction of activation outputs on a flat part: the signal is mostly dead
NEAR_COPY = 1.5  # mean(m_i) / ‖a′−a‖₂ up to this: as close as a near-copy, the layer keeps the image
NON_UNIQUE = 3.0  # from this ratio on: the images differ, the layer cannot tell them apart
KEEPS_FIDELITY = 0.9  # pixel fidelity (normalised SSIM) from this on also keeps the image: nearly a copy


def status(metrics: dict) -> str:
    """"converged", "borderline", "not converged" or "degenerate" for a run's metrics (worst seed decides)."""
    if metrics.get("degenerate"):
        return "degenerate"
    conv = metrics.get("converged")
    if conv is not None and all(conv):
        return "converged"
    ratios = metrics.get("mg_over_mr") or []
    if ratios and max(ratios) <= BORDERLINE:
        return "borderline"
    return "not converged"


def _image_ratio(metrics) -> float:
    """mean(m_i) / ‖a′−a‖₂ (inf for a near-copy distance of 0 and m_i above it).

    Raises:
        ValueError: metrics without m_i or ‖a′−a‖₂ (a hand-made result): nothing to read.
    """
    mi, shift = metrics.get("input_l2"), metrics.get("shift_input_l2")
    if not mi or shift is None:
        raise ValueError("uniqueness needs the metrics input_l2 (m_i) and shift_input_l2 (‖a′−a‖₂)")
    mean_mi = sum(mi) / len(mi)
    if not shift > 0:
        return 0.0 if mean_mi <= 0 else math.inf
    return mean_mi / shift


def uniqueness(metrics) -> str | None:
    """What a converged run says about uniqueness: "keeps the image", "borderline" or "non-unique".

    The band is on `mean(m_i) / ‖a′−a‖₂` (module docstring): up to NEAR_COPY (1.5, inclusive) the layer keeps
    the image, and so it does at pixel fidelity >= KEEPS_FIDELITY (0.9) whatever the ratio; from NON_UNIQUE (3.0,
    inclusive) on the representation is non-unique; strictly in between "borderline" (more seeds or more steps
    decide). Every place that states uniqueness (the reading, hence result.json's verdict and the CLI) asks this.

    Args:
        metrics: a run's metrics (`Metrics` or a dict): "input_l2", "shift_input_l2", "fidelity" (a dict
            without it: "clarity", as results were scored before the measures panel) and what `status` reads.

    Returns:
        The class, or None when `status(metrics)` is not "converged" (before m_g <= m_r, or at a degenerate
        layer, the pictures are not the layer's answer, so they say nothing about uniqueness).

    Raises:
        ValueError: a converged run's metrics without m_i or ‖a′−a‖₂.
    """
    if status(metrics) != "converged":
        return None
    pixel = _fidelity(metrics)
    ratio = _image_ratio(metrics)
    if (pixel is not None and pixel >= KEEPS_FIDELITY) or ratio <= NEAR_COPY:
        return "keeps the image"
    if ratio < NON_UNIQUE:
        return "borderline"
    return "non-unique"


def _fidelity(metrics) -> float | None:
    """Pixel fidelity; "clarity" for metrics made before the panel (then clarity was normalised SSIM)."""
    value = metrics.get("fidelity")
    return metrics.get("clarity") if value is None and metrics.get("clarity_measure") is None else value


def _times(r: float) -> str:
    """A ratio as printed in a reading: one decimal below 10 ("1.4"), whole from 10 ("23"); two decimals where one
    would round onto a band's edge without being on it ("1.53", not "1.5", for a borderline run)."""
    if not r < 10:
        return f"{r:.0f}"
    text = f"{r:.1f}"
    return f"{r:.2f}" if float(text) in (NEAR_COPY, NON_UNIQUE) and float(text) != r else text


def signal_note(metrics: dict) -> str:
    sig = metrics.get("signal") or {}
    flat = sig.get("flat_fraction")
    if flat is not None and flat >= DEAD_FLAT:
        return (f" The signal is mostly dead here: {flat:.0%} of activation outputs up to this layer sit on a flat "
                "part of their non-linearity, where no gradient passes.")
    return ""


def reading(result: InversionResult) -> str:
    """One or two plain sentences on what the numbers say."""
    m = result.metrics
    mg = m["embedding_l2"]
    k = len(mg)
    budget = m.get("budget") or result.preset.iters
    prefix = f"Stopped at step {result.steps_done} of {budget}. " if result.stopped_early else ""
    st = status(m)
    note = signal_note(m)
    if st == "degenerate":
        return prefix + ("Degenerate layer: a near-copy of the image lands at the same embedding (m_r ≈ 0), so "
                         "m_g / m_r means nothing here; judge by the pictures and clarity." + note)
    ratio = max(m["mg_over_mr"]) if m.get("mg_over_mr") else float("inf")
    if st == "converged":
        u = uniqueness(m)
        r = _image_ratio(m)
        times = _times(r)
        matched = "Embedding matched as well as a near-copy (m_g ≤ m_r)"
        if u == "keeps the image":
            why = f"m_i ≈ {times} × ‖a′−a‖₂"
            if r > NEAR_COPY:  # kept by pixel fidelity, farther than a near-copy in pixels
                why = f"pixel fidelity {_fidelity(m):.2f}, {why}"
            return prefix + (f"{matched} and the images match the original ({why}): this layer keeps the image."
                             + note)
        if u == "borderline":
            return prefix + (f"{matched}; the images differ a little more than a near-copy does (m_i ≈ {times} × "
                             f"‖a′−a‖₂, between {NEAR_COPY:g} and {NON_UNIQUE:g}): borderline between keeping the "
                             "image and non-unique — more seeds or more steps decide." + note)
        return prefix + (f"{matched} but the images differ (m_i ≈ {times} × ‖a′−a‖₂): non-unique — the layer "
                         "cannot tell them apart." + note)
    matched = sum(m["converged"])
    if st == "borderline":
        return prefix + (f"Borderline: the worst seed's m_g is {ratio:.2f} × m_r, close to a near-copy's distance; "
                         "continue the run to be sure before reading the picture as the layer's answer." + note)
    if matched:
        return prefix + (f"{matched} of {k} seeds matched the embedding like a near-copy; the others have not "
                         f"converged (worst m_g ≈ {ratio:.1f} × m_r): continue or raise iterations." + note)
    return prefix + (f"Not converged: m_g ≈ {ratio:.1f} × m_r (a near-copy's distance); this picture is the "
                     "optimiser's, not the layer's answer — continue or raise iterations." + note)
