"""Reading rows: which ones are evidence (`reason_out`), per-image statistics with bootstrap intervals, the bands
that turn an interval into a verdict, and a model's stops in forward order. Pure numpy and the standard library."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from core.studies.stats import bootstrap_ci, finite, num, reason_out, split_rows, truth  # noqa: F401  (the verdicts read rows through these)
from core.studies.verdicts.claims import FAILS, HOLDS, INCONCLUSIVE, N_BOOT, SEED


def jsonable(v):
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return round(float(v), 6) if math.isfinite(v) else None
    if v is None or isinstance(v, str):
        return v
    return str(v)


def rounded(v, digits: int = 4):
    return round(float(v), digits) if finite(v) else None


def fmt(v, ci=None, signed: bool = False) -> str:
    """'−0.12 [−0.15, −0.09]' for a value and its interval; three decimals when all are below 0.01 in size, so
    a tiny effect does not print as '-0.00 [-0.00, +0.00]'."""
    if not finite(v):
        return "n/a"
    shown = [v] + [c for c in (ci or ()) if finite(c)]
    f = "{:" + ("+" if signed else "") + (".3f}" if max(abs(x) for x in shown) < 0.01 else ".2f}")
    text = f.format(v)
    if ci is not None and all(finite(c) for c in ci):
        text += f" [{f.format(ci[0])}, {f.format(ci[1])}]"
    return text


def mean_ci(per_key: dict) -> tuple[float, tuple[float, float] | None]:
    """Mean over keys (images) and its bootstrap CI; values in key order, so row order never changes the CI."""
    vals = [float(per_key[k]) for k in sorted(per_key) if finite(per_key[k])]
    if not vals:
        return float("nan"), None
    return float(np.mean(vals)), bootstrap_ci(vals, n_boot=N_BOOT, seed=SEED)


def median_ci(per_key: dict) -> tuple[float, tuple[float, float] | None]:
    """Median over keys and a percentile bootstrap CI of the median (the same resampling as `bootstrap_ci`)."""
    v = np.asarray([float(per_key[k]) for k in sorted(per_key) if finite(per_key[k])], dtype=float)
    if v.size == 0:
        return float("nan"), None
    if v.size == 1:
        return float(v[0]), (float(v[0]), float(v[0]))
    rng = np.random.default_rng(SEED)
    meds = np.median(v[rng.integers(0, v.size, size=(N_BOOT, v.size))], axis=1)
    return float(np.median(v)), (float(np.quantile(meds, 0.025)), float(np.quantile(meds, 0.975)))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    ranks[order] = np.arange(1, len(x) + 1, dtype=float)
    for value in np.unique(x):
        tie = x == value
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of y with x (average ranks for ties).

    Args:
        x, y: paired values (at least two).

    Returns:
        rho in [-1, 1]; 0.0 when x or y is constant (a flat curve has no rank trend); NaN for fewer than 2 pairs.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(np.clip(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy), -1.0, 1.0))


def band(value, ci, holds, fails) -> str:
    """HOLDS if holds(value, lo, hi), FAILS if fails(...), else INCONCLUSIVE; inconclusive without a CI."""
    if ci is None or not finite(value) or not all(finite(c) for c in ci):
        return INCONCLUSIVE
    lo, hi = ci
    if holds(value, lo, hi):
        return HOLDS
    if fails(value, lo, hi):
        return FAILS
    return INCONCLUSIVE


def combine_parts(parts: Sequence[str]) -> str:
    """Holds if every part holds, does not hold if any part does not, else inconclusive."""
    if parts and all(p == HOLDS for p in parts):
        return HOLDS
    if any(p == FAILS for p in parts):
        return FAILS
    return INCONCLUSIVE


def depth_of(row: dict) -> float:
    d = num(row.get("depth"))
    return d if finite(d) else num(row.get("relative_depth"))


def rel_depth(row: dict) -> float:
    return num(row.get("relative_depth"))


def count_text(n: int, what: str = "image") -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def scope(rows: Iterable[dict], model_name: str | None,
          checkpoints: Sequence[str] | None) -> tuple[list[dict], str | None]:
    """The rows of one model (and the given checkpoints); raises ValueError when `model_name` is None but the rows
    hold several (a finding never pools models: their depths and images do not pair)."""
    rows = [r for r in rows if model_name is None or r.get("model") == model_name]
    models = sorted({str(r.get("model")) for r in rows if r.get("model") is not None})
    if model_name is None and len(models) > 1:
        raise ValueError(f"rows of several models ({', '.join(models)}): pass model_name=")
    if checkpoints is not None:
        rows = [r for r in rows if r.get("checkpoint") in checkpoints]
    return rows, model_name if model_name is not None else (models[0] if models else None)


def one_checkpoint(rows: list[dict], checkpoint: str | None) -> tuple[list[dict], str | None]:
    if checkpoint is not None:
        return [r for r in rows if r.get("checkpoint") == checkpoint], checkpoint
    cks = sorted({str(r.get("checkpoint")) for r in rows})
    if len(cks) > 1:
        raise ValueError(f"rows of several checkpoints ({', '.join(cks)}): pass checkpoint=")
    return rows, cks[0] if cks else None


def by_image_layer(rows: Iterable[dict], key: str = "clarity") -> dict:
    """{(image, layer): mean of `key`} (several rows of one cell, e.g. merged sweeps, are averaged)."""
    acc: dict = {}
    for r in rows:
        acc.setdefault((str(r.get("image")), str(r.get("layer"))), []).append(num(r.get(key)))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def stops_of(rows: Iterable[dict]) -> list[dict]:
    """The distinct stops (layer, label, depth, relative depth, kind) of rows, in forward order."""
    seen: dict = {}
    for r in rows:
        layer = str(r.get("layer"))
        if layer not in seen:
            seen[layer] = {"layer": layer, "label": str(r.get("label") or layer), "depth": depth_of(r),
                           "relative_depth": rel_depth(r), "kind": r.get("kind")}
    return sorted(seen.values(), key=lambda s: (s["depth"] if finite(s["depth"]) else math.inf, s["layer"]))
