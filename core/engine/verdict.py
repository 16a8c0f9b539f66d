"""The plain-language reading of a run: converged or not, and if so unique or not.

Shared by the app, the command line and the reports, so every place says the same thing. Around
`m_g / m_r = 1` there is a borderline band (`core.engine.stopping.BORDERLINE`) instead of a hard flip, a
degenerate layer (m_r about 0) is said to be one, and a layer whose signal is nearly dead says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.engine.stopping import BORDERLINE

if TYPE_CHECKING:  # hints only: the result's to_json reads this module
    from core.engine.result import InversionResult

DEAD_FLAT = 0.9  # more than this fraction of activation outputs on a flat part: the signal is mostly dead


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
    mg, mi, shift = m["embedding_l2"], m["input_l2"], m["shift_input_l2"]
    k = len(mg)
    mean_mi = sum(mi) / k
    budget = m.get("budget") or result.preset.iters
    prefix = f"Stopped at step {result.steps_done} of {budget}. " if result.stopped_early else ""
    st = status(m)
    note = signal_note(m)
    if st == "degenerate":
        return prefix + ("Degenerate layer: a near-copy of the image lands at the same embedding (m_r ≈ 0), so "
                         "m_g / m_r means nothing here; judge by the pictures and clarity." + note)
    ratio = max(m["mg_over_mr"]) if m.get("mg_over_mr") else float("inf")
    if st == "converged":
        if m["clarity"] >= 0.9 or mean_mi <= shift:  # as close as a near-copy, or nearly the image to the eye
            return prefix + ("Embedding matched as well as a near-copy (m_g ≤ m_r) and the images match the "
                             "original: this layer keeps the image." + note)
        return prefix + (f"Embedding matched as well as a near-copy (m_g ≤ m_r) but the images differ "
                         f"(m_i ≈ {mean_mi / shift:.0f} × ‖a′−a‖₂): non-unique — the layer cannot tell them apart."
                         + note)
    matched = sum(m["converged"])
    if st == "borderline":
        return prefix + (f"Borderline: the worst seed's m_g is {ratio:.2f} × m_r, close to a near-copy's distance; "
                         "continue the run to be sure before reading the picture as the layer's answer." + note)
    if matched:
        return prefix + (f"{matched} of {k} seeds matched the embedding like a near-copy; the others have not "
                         f"converged (worst m_g ≈ {ratio:.1f} × m_r): continue or raise iterations." + note)
    return prefix + (f"Not converged: m_g ≈ {ratio:.1f} × m_r (a near-copy's distance); this picture is the "
                     "optimiser's, not the layer's answer — continue or raise iterations." + note)
