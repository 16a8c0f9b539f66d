"""Which runs count as evidence, and the intervals over images: one rule for the Sweeps summary, the findings
report's curve and the verdicts. A run counts when it converged (`m_g <= m_r` for every seed) with a finite value;
an error, a degenerate layer, a borderline or an unconverged run never does (docs/findings.md). Pure numpy."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np


def finite(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(v)


def num(v) -> float:
    """A float, NaN for None, text or anything else that is not a finite number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f if math.isfinite(f) else float("nan")


def truth(v) -> bool:
    """A bool from a row's bool-ish field (numpy bools, 0/1, "true"/"false"); None or NaN is False."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return False
    return bool(v)


def reason_out(row: dict, value_key: str = "clarity") -> str | None:
    """Why a row is no evidence (None: it is): "error", "degenerate", "borderline", "not converged", "no <value>".

    Args:
        row: one run's row.
        value_key: the number the finding reads ("clarity"; "naturalness" for finding 5).

    Returns:
        The reason, or None for a converged run with a finite value.
    """
    st = str(row.get("status") or "").strip().lower()
    err = row.get("error")
    if st == "error" or (isinstance(err, str) and err.strip()):
        return "error"
    if st == "degenerate":
        return "degenerate"
    if not truth(row.get("converged")):
        return "borderline" if st == "borderline" else "not converged"
    if value_key and not finite(num(row.get(value_key))):
        return f"no {value_key}"
    return None


def split_rows(rows: Iterable[dict], value_key: str = "clarity") -> tuple[list[dict], Counter]:
    used, out = [], Counter()
    for r in rows:
        why = reason_out(r, value_key)
        if why is None:
            used.append(r)
        else:
            out[why] += 1
    return used, out


def evidence(rows: Iterable[dict], value_key: str = "clarity") -> list[dict]:
    """The rows an interval is made of (`reason_out` is None)."""
    return split_rows(rows, value_key)[0]


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean over `values` (the images); one value gives (v, v)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))
