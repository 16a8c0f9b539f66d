"""The paper's findings as falsifiable tests: rows of many inversion runs in, one verdict per finding out.

Each finding of METHOD.md ("Findings the project must let a user see", plus the ViT blog's) becomes a stated test:
a hypothesis, a measurement per image, a statistic over images with a 95% percentile bootstrap interval
(`core.studies.sweep.bootstrap_ci`, fixed seed, values ordered by image name, so the same rows always give the
same interval whatever their order) and a threshold that says "holds", "does not hold" or "inconclusive". The
functions here are pure (numpy and the standard library); nothing is drawn or written.

The rule every finding obeys: an unconverged run is never evidence. A row whose `converged` is false (m_g > m_r on
some seed; "borderline" rows included), whose status is "degenerate" or "error", or whose number is missing is
left out of every statistic. Each `Verdict` says how many rows it used (`n`) and how many it left out
(`left_out`, reason -> count); the two add up to the rows in the finding's scope (its model and checkpoints), so
structural reasons ("middle third of depth", "not the image's deepest converged deep stop") are counted too.

Rows (one per image x model x checkpoint x layer, seeds averaged) are the sweep's (`core.studies.sweep.COLUMNS`)
plus `label`/`kind`, see `finding_1`. Findings 5 (manifold) and 6 (MLP lab) read their own fields, see there.

    verdicts = evaluate(rows)                        # every finding the rows allow, per model
    [v.to_dict() for v in verdicts]                  # JSON-ready; `validate(d)` checks one
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.engine.verdict import NEAR_COPY, NON_UNIQUE
from core.studies.sweep import bootstrap_ci

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE)

N_BOOT = 2000  # bootstrap resamples, as `bootstrap_ci`'s default
SEED = 0  # the bootstrap's fixed seed: the same rows give the same interval
MIN_IMAGES = 2  # fewer images (inputs) than this: no interval worth the name, the verdict is inconclusive
MIN_STOPS = 3  # finding 1: a rank correlation over fewer converged stops says nothing
EARLY = 1 / 3  # relative depth up to this: an early stop (findings 4)
LATE = 2 / 3  # relative depth from this: a late / deep stop (findings 3, 4, 5)
EPS = 1e-9  # tolerance on the depth bands (1/3 and 2/3 are not exact in floating point)
FIRST_CONV_CLARITY = 0.9  # finding 2: "almost perfectly" (core.engine.verdict.KEEPS_CLARITY)
CONVERGED_SHARE = 0.5  # finding 3: fewer deep runs than this converged: the optimiser failed, no evidence
RELU_WIDTH = 2.0  # finding 6: ReLU is unique from this width ratio on ...
RELU_NOT = 1.5  # ... and not below this one
UNIQUE_CLARITY = 0.95  # finding 6: a lab row without `unique` is unique at clarity >= this
FLAT_SPREAD = 0.1  # finding 7: "nearly flat": mean spread of clarity over the encoder blocks at most this ...
FLAT_CI = 0.15  # ... with the interval's upper end at most this
PE_SHARE = 0.5  # finding 7: at least this share of the last block's loss is already there at the patch embedding
NATURAL_KINDS = ("natural", "photo", "sample", "image")  # finding 5: inputs of these kinds are not "arbitrary"

CLAIMS = {
    "1": "Before training, the deeper the layer, the less accurate its reconstruction.",
    "2": "The first convolution (before pooling) reconstructs almost perfectly; max-pooling (the first pooling or "
         "strided stop) is where exactness is first lost.",
    "3": "Poor deep reconstructions come from non-uniqueness, not from a failing optimiser: m_g reaches m_r while "
         "m_i stays large.",
    "4": "Training to classify makes early layers' reconstructions clearer, but not late layers': those become "
         "abstract images.",
    "5": "Deep layers of a trained model map arbitrary inputs (noise, unrelated images) toward the manifold of "
         "natural images.",
    "6": "In a fully connected network a layer narrower than its input cannot represent it uniquely; with ReLU "
         "about twice the input width is needed.",
    "7": "(ViT) Clarity is nearly flat across the encoder blocks: the information is lost at the patch embedding.",
}
TESTS = {
    "1": f"Untrained model: per image, the Spearman rank correlation rho of clarity with depth over its converged "
         f"stops (at least {MIN_STOPS}); the claim predicts rho < 0. Statistic: mean rho over images with a 95% "
         f"bootstrap CI over images.",
    "2": f"Untrained model: (a) clarity at the first convolution stop, predicted >= {FIRST_CONV_CLARITY:g}; (b) per "
         f"image, clarity at the first pooling/strided stop minus clarity at the first convolution, predicted < 0. "
         f"Means over images with 95% bootstrap CIs over images.",
    "3": f"At the stops in the last third of relative depth (>= 2/3) most runs must have converged (m_g <= m_r on "
         f"every seed; otherwise the optimiser failed and nothing is shown); per image, m_i / ||a'-a||_2 at its "
         f"deepest converged deep stop, predicted >= {NON_UNIQUE:g} (core.engine.verdict's non-unique band). "
         f"Statistic: median over images with a 95% bootstrap CI.",
    "4": "Delta = trained - untrained clarity, paired by image and stop, both runs converged. Early stops (relative "
         "depth <= 1/3): per image the mean Delta over them, predicted > 0; late stops (relative depth >= 2/3): "
         "predicted not > 0. Means over images with 95% bootstrap CIs over images.",
    "5": "Non-natural inputs (noise, shapes) reconstructed at deep layers (relative depth >= 2/3 where known) by "
         "the untrained and the trained checkpoint, both converged: per input, the mean over layers of trained - "
         "untrained naturalness, predicted > 0. Statistic: mean over inputs with a 95% bootstrap CI over inputs.",
    "6": f"Converged MLP-lab runs: (a) no run with width ratio < 1 is unique, whatever the activation; (b) no ReLU "
         f"run with width ratio < {RELU_NOT:g} is unique; (c) at least half of the ReLU runs with width ratio >= "
         f"{RELU_WIDTH:g} are unique. Unique = the inversion recovered the input (`unique`, else clarity >= "
         f"{UNIQUE_CLARITY:g}); a network whose Jacobian at the image has rank below the input's dimension is not "
         "unique and counts even if its run did not converge (for linear and ReLU networks the map is linear near "
         "the image, so the rank deficit is an exact proof).",
    "7": f"Per image converged at every encoder block: the spread (max - min) of clarity over the block stops, "
         f"predicted <= {FLAT_SPREAD:g}; per image, d = (1 - clarity at the patch embedding) - {PE_SHARE:g} x "
         f"(1 - clarity at the last block), predicted >= 0 (at least half of the loss is already there at the "
         f"patch embedding). Means over images with 95% bootstrap CIs over images.",
}
STATISTICS = {
    "1": "Spearman rho of clarity with depth, mean over images",
    "2": "mean clarity at the first convolution over images (part b, the paired difference, in evidence)",
    "3": "median over images of m_i / ||a'-a||_2 at the image's deepest converged stop in the last third",
    "4": "mean over images of trained - untrained clarity at the early stops (the late stops' in evidence)",
    "5": "mean over inputs of trained - untrained naturalness at deep layers",
    "6": f"fraction of converged ReLU runs with width ratio >= {RELU_WIDTH:g} that are unique (CI over runs)",
    "7": "mean over images of the spread (max - min) of clarity over the encoder blocks (the patch-embedding "
         "part in evidence)",
}
THRESHOLDS = {
    "1": "holds if the CI's upper end < 0; does not hold if its lower end >= 0; inconclusive if it straddles 0 or "
         f"fewer than {MIN_IMAGES} images have {MIN_STOPS} converged stops",
    "2": f"(a) holds if CI low >= {FIRST_CONV_CLARITY:g}, fails if CI high < {FIRST_CONV_CLARITY:g}; (b) holds if "
         "CI high < 0, fails if CI low >= 0; the finding holds if both hold, does not hold if either fails, else "
         f"inconclusive (also without both stops or with fewer than {MIN_IMAGES} images)",
    "3": f"holds if CI low >= {NON_UNIQUE:g}; does not hold if CI high < {NEAR_COPY:g} (near copies: the layer "
         f"keeps the image); otherwise inconclusive, and inconclusive if fewer than {CONVERGED_SHARE:.0%} of the "
         f"deep runs converged or fewer than {MIN_IMAGES} images qualify",
    "4": "early holds if CI low > 0, fails if CI high <= 0; late holds if CI high <= 0, fails if CI low > 0; the "
         "finding holds if both parts hold, does not hold if either fails, else inconclusive",
    "5": f"holds if CI low > 0; does not hold if CI high <= 0; inconclusive if it straddles 0 or fewer than "
         f"{MIN_IMAGES} inputs qualify",
    "6": "holds if (a), (b) and (c) all hold; does not hold if any fails; inconclusive if a width group is missing",
    "7": f"flat holds if mean <= {FLAT_SPREAD:g} and CI high <= {FLAT_CI:g}, fails if CI low > {FLAT_SPREAD:g}; "
         "drop holds if CI low >= 0, fails if CI high < 0; the finding holds if both hold, does not hold if either "
         f"fails, else inconclusive (also without a patch-embedding stop, fewer than 2 blocks or {MIN_IMAGES} images)",
}


# --------------------------------------------------------------------------- the verdict


@dataclass
class Verdict:
    """One finding's test on one model (and checkpoint): what was claimed, tested, computed and concluded."""

    id: str  # "1" ... "7"
    claim: str  # the paper's claim in plain words
    test: str  # the stated, falsifiable test
    statistic: str  # what `value` is
    value: float | None
    ci: tuple[float, float] | None  # 95% bootstrap CI (over images, inputs or runs)
    threshold: str  # when it holds, when it does not
    verdict: str  # "holds" | "does not hold" | "inconclusive"
    why: str  # one plain sentence
    n: int  # rows used
    left_out: dict = field(default_factory=dict)  # reason -> rows
    model: str | None = None
    checkpoint: str | None = None
    evidence: dict = field(default_factory=dict)  # the numbers behind it, JSON-ready

    def to_dict(self) -> dict:
        """The verdict as a JSON-ready dict with the fields `VERDICT_FIELDS` (NaN -> None, ci -> [lo, hi] or None)."""
        ci = None
        if self.ci is not None and all(_finite(c) for c in self.ci):
            ci = [float(self.ci[0]), float(self.ci[1])]
        return {"id": str(self.id), "claim": self.claim, "test": self.test, "statistic": self.statistic,
                "value": float(self.value) if _finite(self.value) else None, "ci": ci, "threshold": self.threshold,
                "verdict": self.verdict, "why": self.why, "n": int(self.n),
                "left_out": {str(k): int(v) for k, v in sorted(self.left_out.items())},
                "model": self.model, "checkpoint": self.checkpoint, "evidence": _jsonable(self.evidence)}


VERDICT_FIELDS = ("id", "claim", "test", "statistic", "value", "ci", "threshold", "verdict", "why", "n", "left_out",
                  "model", "checkpoint", "evidence")


def validate(d: dict) -> dict:
    """Check that `d` is a verdict as `Verdict.to_dict` writes it (findings.json's entries).

    Args:
        d: the dict.

    Returns:
        `d` unchanged.

    Raises:
        ValueError: naming every missing field, wrong type or bad value (the dict must also be strict JSON).
    """
    if not isinstance(d, dict):
        raise ValueError(f"not a verdict: a dict is needed (got {type(d).__name__})")  # noqa: TRY004 - one error type
    problems = [f"missing field {k!r}" for k in VERDICT_FIELDS if k not in d]
    problems += [f"unknown field {k!r}" for k in d if k not in VERDICT_FIELDS]

    def check(name, ok, want):
        if name in d and not ok(d[name]):
            problems.append(f"{name} must be {want} (got {d[name]!r})")

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    for name in ("id", "claim", "test", "statistic", "threshold", "why"):
        check(name, lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
    check("value", lambda v: v is None or number(v), "a finite number or null")
    check("ci", lambda v: v is None or (isinstance(v, (list, tuple)) and len(v) == 2 and all(number(c) for c in v)
                                        and v[0] <= v[1]), "null or [low, high] with low <= high")
    check("verdict", lambda v: v in VERDICTS, "one of " + ", ".join(VERDICTS))
    check("n", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0")
    check("left_out", lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(c, int)
                                                            and not isinstance(c, bool) and c >= 0
                                                            for k, c in v.items()), "a dict of reason -> count")
    for name in ("model", "checkpoint"):
        check(name, lambda v: v is None or isinstance(v, str), "a string or null")
    check("evidence", lambda v: isinstance(v, dict), "a dict")
    if not problems:
        try:
            json.dumps(d, allow_nan=False)
        except (TypeError, ValueError) as exc:
            problems.append(f"not strict JSON ({exc})")
    if problems:
        raise ValueError("not a verdict: " + "; ".join(problems))
    return d


# --------------------------------------------------------------------------- helpers


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v) -> float:
    """A float, NaN for None, text or anything else that is not a finite number."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f if math.isfinite(f) else float("nan")


def _truth(v) -> bool:
    """A bool from a row's bool-ish field (numpy bools, 0/1, "true"/"false"); None or NaN is False."""
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return False
    return bool(v)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return round(float(v), 6) if math.isfinite(v) else None
    if v is None or isinstance(v, str):
        return v
    return str(v)


def _r(v, digits: int = 4):
    return round(float(v), digits) if _finite(v) else None


def _fmt(v, ci=None, signed: bool = False) -> str:
    """'−0.12 [−0.15, −0.09]' for a value and its interval."""
    if not _finite(v):
        return "n/a"
    f = "{:+.2f}" if signed else "{:.2f}"
    text = f.format(v)
    if ci is not None and all(_finite(c) for c in ci):
        text += f" [{f.format(ci[0])}, {f.format(ci[1])}]"
    return text


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
    if not _truth(row.get("converged")):
        return "borderline" if st == "borderline" else "not converged"
    if value_key and not _finite(_num(row.get(value_key))):
        return f"no {value_key}"
    return None


def _split(rows: Iterable[dict], value_key: str = "clarity") -> tuple[list[dict], Counter]:
    used, out = [], Counter()
    for r in rows:
        why = reason_out(r, value_key)
        if why is None:
            used.append(r)
        else:
            out[why] += 1
    return used, out


def _mean_ci(per_key: dict) -> tuple[float, tuple[float, float] | None]:
    """Mean over keys (images) and its bootstrap CI; values in key order, so row order never changes the CI."""
    vals = [float(per_key[k]) for k in sorted(per_key) if _finite(per_key[k])]
    if not vals:
        return float("nan"), None
    return float(np.mean(vals)), bootstrap_ci(vals, n_boot=N_BOOT, seed=SEED)


def _median_ci(per_key: dict) -> tuple[float, tuple[float, float] | None]:
    """Median over keys and a percentile bootstrap CI of the median (the same resampling as `bootstrap_ci`)."""
    v = np.asarray([float(per_key[k]) for k in sorted(per_key) if _finite(per_key[k])], dtype=float)
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


def _band(value, ci, holds, fails) -> str:
    """HOLDS if holds(value, lo, hi), FAILS if fails(...), else INCONCLUSIVE; inconclusive without a CI."""
    if ci is None or not _finite(value) or not all(_finite(c) for c in ci):
        return INCONCLUSIVE
    lo, hi = ci
    if holds(value, lo, hi):
        return HOLDS
    if fails(value, lo, hi):
        return FAILS
    return INCONCLUSIVE


def _combine(parts: Sequence[str]) -> str:
    """Holds if every part holds, does not hold if any part does not, else inconclusive."""
    if parts and all(p == HOLDS for p in parts):
        return HOLDS
    if any(p == FAILS for p in parts):
        return FAILS
    return INCONCLUSIVE


def _depth(row: dict) -> float:
    d = _num(row.get("depth"))
    return d if _finite(d) else _num(row.get("relative_depth"))


def _rel(row: dict) -> float:
    return _num(row.get("relative_depth"))


def _images(n: int, what: str = "image") -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _scope(rows: Iterable[dict], model: str | None, checkpoints: Sequence[str] | None) -> tuple[list[dict], str | None]:
    """The rows of one model (and the given checkpoints); raises ValueError when `model` is None but the rows hold
    several (a finding never pools models: their depths and images do not pair)."""
    rows = [r for r in rows if model is None or r.get("model") == model]
    models = sorted({str(r.get("model")) for r in rows if r.get("model") is not None})
    if model is None and len(models) > 1:
        raise ValueError(f"rows of several models ({', '.join(models)}): pass model=")
    if checkpoints is not None:
        rows = [r for r in rows if r.get("checkpoint") in checkpoints]
    return rows, model if model is not None else (models[0] if models else None)


def _one_checkpoint(rows: list[dict], checkpoint: str | None) -> tuple[list[dict], str | None]:
    if checkpoint is not None:
        return [r for r in rows if r.get("checkpoint") == checkpoint], checkpoint
    cks = sorted({str(r.get("checkpoint")) for r in rows})
    if len(cks) > 1:
        raise ValueError(f"rows of several checkpoints ({', '.join(cks)}): pass checkpoint=")
    return rows, cks[0] if cks else None


def _by_image_layer(rows: Iterable[dict], key: str = "clarity") -> dict:
    """{(image, layer): mean of `key`} (several rows of one cell, e.g. merged sweeps, are averaged)."""
    acc: dict = {}
    for r in rows:
        acc.setdefault((str(r.get("image")), str(r.get("layer"))), []).append(_num(r.get(key)))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _stops(rows: Iterable[dict]) -> list[dict]:
    """The distinct stops (layer, label, depth, relative depth, kind) of rows, in forward order."""
    seen: dict = {}
    for r in rows:
        layer = str(r.get("layer"))
        if layer not in seen:
            seen[layer] = {"layer": layer, "label": str(r.get("label") or layer), "depth": _depth(r),
                           "relative_depth": _rel(r), "kind": r.get("kind")}
    return sorted(seen.values(), key=lambda s: (s["depth"] if _finite(s["depth"]) else math.inf, s["layer"]))


def _verdict(fid: str, value, ci, verdict: str, why: str, n: int, left_out: Counter, model, checkpoint,
             evidence: dict) -> Verdict:
    return Verdict(fid, CLAIMS[fid], TESTS[fid], STATISTICS[fid], value if _finite(value) else None, ci,
                   THRESHOLDS[fid], verdict, why, int(n), dict(left_out), model, checkpoint, evidence)


# --------------------------------------------------------------------------- what kind of layer a stop is


def _text(stop: dict) -> tuple[str, str, str]:
    kind = stop.get("kind")
    kind = kind.strip().lower() if isinstance(kind, str) and kind.strip() else ""
    return kind, str(stop.get("label") or "").lower(), str(stop.get("layer") or "").lower()


GLOBAL_POOL_LAYERS = ("avgpool", "global_pool", "head.global_pool", "pool", "head.pool")


def is_pooling(stop: dict) -> bool:
    """A pooling or strided stop that loses resolution (max-pool, pool1, stride, downsample), not the global pool.

    `kind` decides when present ("MaxPool2d", "AvgPool2d", "strided ...", "downsample"; "Adaptive..."/"global"
    pools do not count). Without it, the label and layer name: "pool" (max-pool, maxpool1, pool2 ...), "stride",
    "downsample"; a label with "global"/"adaptive" or a layer named avgpool / global_pool is the global average
    pool before the logits, which is not where exactness is *first* lost.
    """
    kind, label, layer = _text(stop)
    if kind:
        return (("pool" in kind and not any(w in kind for w in ("adaptive", "global")))
                or "stride" in kind or "downsample" in kind)
    if any(w in label for w in ("global", "adaptive")) or layer in GLOBAL_POOL_LAYERS:
        return False
    return any(re.search(r"pool|stride|downsample", t) is not None for t in (label, layer))


def is_patch_embedding(stop: dict) -> bool:
    """A ViT patch embedding: kind or label "patch embedding", or a layer named conv_proj / patch_embed(.proj)."""
    kind, label, layer = _text(stop)
    if kind:
        return "patch" in kind and "embed" in kind
    return "patch embed" in label or layer in ("conv_proj", "patch_embed", "patch_embed.proj")


def is_first_conv(stop: dict) -> bool:
    """The first convolution's stop: kind "Conv2d"/"conv", else the label or layer name says conv1 / stem conv
    ("Conv1 (before batch-norm)", "conv1 + ReLU", "stem conv", conv_stem, features.0, Conv2d_1a_3x3). A pooling
    stop ("Conv1 + max-pool") and a patch embedding are never it. `finding_2` takes the first such stop in
    forward order, and only if it comes before the first pooling stop."""
    if is_pooling(stop) or is_patch_embedding(stop):
        return False
    kind, label, layer = _text(stop)
    if kind:
        return "conv" in kind
    return (re.search(r"\bconv_?1\b", label) is not None or "stem conv" in label
            or layer in ("conv1", "conv_stem", "features.0", "stem.conv", "stem.0") or layer.startswith("conv2d_1a"))


def is_block(stop: dict) -> bool:
    """An encoder block: kind "block"/"encoder", else "block" in the label or a layer like blocks.3,
    encoder.layers.encoder_layer_3 (the final layer-norm, the head and the logits are not blocks)."""
    kind, label, layer = _text(stop)
    if kind:
        return "block" in kind or "encoder" in kind
    return ("block" in label or "encoder_layer" in layer
            or re.search(r"(^|\.)(blocks|layers)\.\d+$", layer) is not None)


def is_vit(model: str | None, rows: Iterable[dict]) -> bool:
    """ViT-like: the name contains "vit" or "deit", or the stops show a patch embedding followed by encoder blocks."""
    if model and any(w in model.lower() for w in ("vit", "deit")):
        return True
    stops = _stops(rows)
    pe = [s["depth"] for s in stops if is_patch_embedding(s)]
    return bool(pe) and any(is_block(s) and s["depth"] > min(pe) for s in stops)


# --------------------------------------------------------------------------- the findings


def finding_1(rows: Iterable[dict], model: str | None = None, checkpoint: str = "untrained") -> Verdict:
    """Finding 1: before training, clarity falls with depth.

    Why this test: a rank correlation asks only "deeper -> less clear", not for a shape (a curve that falls in
    steps or saturates counts), and per image it pairs every stop with the same picture; the mean over images
    with its bootstrap interval says whether the trend is more than one image's luck. A constant curve has
    rho = 0 (no trend), so a flat curve does not hold.

    Args:
        rows: sweep rows (module docstring); only `model`'s rows at `checkpoint` are read.
        model: the model (None: the rows must hold one).
        checkpoint: the untrained checkpoint's name.

    Returns:
        The Verdict; evidence: rho per image, mean clarity per stop (converged rows), the stops.
    """
    rows, model = _scope(rows, model, [checkpoint])
    used, out = _split(rows)
    per_image: dict = {}
    for r in used:
        per_image.setdefault(str(r.get("image")), []).append(r)
    rho, counted = {}, []
    for img, rs in per_image.items():
        cells = _by_image_layer(rs)
        depth = {str(r.get("layer")): _depth(r) for r in rs}
        layers = [lay for (_, lay) in cells if _finite(depth[lay])]
        if len(layers) < MIN_STOPS:
            out[f"image with fewer than {MIN_STOPS} converged stops"] += len(rs)
            continue
        rho[img] = spearman([depth[lay] for lay in layers], [cells[(img, lay)] for lay in layers])
        counted += rs
    value, ci = _mean_ci(rho)
    layer_means = []
    for s in _stops(rows):
        vals = [_num(r["clarity"]) for r in used if str(r.get("layer")) == s["layer"]]
        layer_means.append({"layer": s["layer"], "label": s["label"], "depth": s["depth"],
                            "relative_depth": _r(s["relative_depth"]), "n": len(vals),
                            "clarity_mean": _r(np.mean(vals)) if vals else None})
    evidence = {"rho_per_image": {k: _r(v) for k, v in sorted(rho.items())}, "stops": layer_means}
    if len(rho) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {_images(len(rho))} converged at {MIN_STOPS} or more stops ({MIN_IMAGES} needed), so there "
               "is no interval over images")
    else:
        verdict = _band(value, ci, lambda v, lo, hi: hi < 0, lambda v, lo, hi: lo >= 0)
        text = f"mean rho {_fmt(value, ci, True)} over {_images(len(rho))}"
        why = {HOLDS: f"{text}: clarity falls with depth on every resample (CI below 0)",
               FAILS: f"{text}: the CI lies at or above 0, clarity does not fall with depth",
               INCONCLUSIVE: f"{text}: the CI straddles 0"}[verdict]
    return _verdict("1", value, ci, verdict, why, len(counted), out, model, checkpoint, evidence)


def finding_2(rows: Iterable[dict], model: str | None = None, checkpoint: str = "untrained") -> Verdict:
    """Finding 2: the first convolution is (almost) exact, the first pooling/strided stop is where exactness goes.

    Why this test: "almost perfectly" is read as clarity >= 0.9 (core.engine.verdict.KEEPS_CLARITY: nearly the
    image to the eye) with the whole interval there; "first lost at pooling" as a paired per-image drop from the
    first conv to the first pooling/strided stop with the interval below 0. Stops are told apart by `kind`, else
    by name (`is_first_conv`, `is_pooling`); the first conv must come before the first pooling stop.

    Args:
        rows: sweep rows; only `model`'s rows at `checkpoint` are read.
        model: the model (None: the rows must hold one).
        checkpoint: the untrained checkpoint's name.

    Returns:
        The Verdict (value: mean clarity at the first conv); evidence: "conv" and "pool", each with its stop,
        value, ci and verdict (pool: the paired difference pool - conv).
    """
    rows, model = _scope(rows, model, [checkpoint])
    stops = _stops(rows)
    pools = [s for s in stops if is_pooling(s)]
    pool = pools[0] if pools else None
    convs = [s for s in stops if is_first_conv(s) and (pool is None or s["depth"] < pool["depth"])]
    conv = convs[0] if convs else None
    used, out = _split(rows)
    evidence: dict = {"conv": {"stop": conv and conv["label"], "layer": conv and conv["layer"]},
                      "pool": {"stop": pool and pool["label"], "layer": pool and pool["layer"]}}
    if conv is None or pool is None:
        wants = (("a first-convolution stop", conv), ("a pooling/strided stop after it", pool))
        missing = " and ".join(w for w, s in wants if s is None)
        out["not the first conv or pooling stop"] += len(used)
        return _verdict("2", None, None, INCONCLUSIVE, f"the model's stops include no {missing.replace('a ', '', 1)}"
                        " (it may downsample inside blocks, which the test cannot place)", 0, out, model, checkpoint,
                        evidence)
    cells = _by_image_layer(used)
    images = sorted({img for img, _ in cells})
    at_conv = {i: cells[(i, conv["layer"])] for i in images if (i, conv["layer"]) in cells}
    diff = {i: cells[(i, pool["layer"])] - at_conv[i] for i in at_conv if (i, pool["layer"]) in cells}
    counted = [r for r in used if str(r.get("layer")) in (conv["layer"], pool["layer"])
               and (str(r.get("image")) in at_conv)]
    for r in used:
        if str(r.get("layer")) not in (conv["layer"], pool["layer"]):
            out["not the first conv or pooling stop"] += 1
        elif str(r.get("image")) not in at_conv:
            out["image without a converged first conv"] += 1
    v_conv, ci_conv = _mean_ci(at_conv)
    v_diff, ci_diff = _mean_ci(diff)
    a = _band(v_conv, ci_conv, lambda v, lo, hi: lo >= FIRST_CONV_CLARITY, lambda v, lo, hi: hi < FIRST_CONV_CLARITY)
    b = _band(v_diff, ci_diff, lambda v, lo, hi: hi < 0, lambda v, lo, hi: lo >= 0)
    if len(at_conv) < MIN_IMAGES:
        a = INCONCLUSIVE
    if len(diff) < MIN_IMAGES:
        b = INCONCLUSIVE
    evidence["conv"].update(value=_r(v_conv), ci=ci_conv, verdict=a, n_images=len(at_conv))
    evidence["pool"].update(value=_r(v_diff), ci=ci_diff, verdict=b, n_images=len(diff),
                            clarity=_r(np.mean([cells[(i, pool["layer"])] for i in diff])) if diff else None)
    verdict = _combine([a, b])
    conv_text = f"clarity at {conv['label']} is {_fmt(v_conv, ci_conv)} over {_images(len(at_conv))}"
    pool_text = f"{pool['label']} minus {conv['label']} is {_fmt(v_diff, ci_diff, True)} over {_images(len(diff))}"
    parts = []
    for name, res, text, few in (("first-conv part", a, conv_text, len(at_conv) < MIN_IMAGES),
                                 ("pooling part", b, pool_text, len(diff) < MIN_IMAGES)):
        if verdict == HOLDS or res == verdict:
            state = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "is inconclusive"}[res]
            note = f" (fewer than {MIN_IMAGES} images)" if few else (" (CI straddles the threshold)"
                                                                       if res == INCONCLUSIVE else "")
            parts.append(f"{name} {state}{note}: {text}")
    return _verdict("2", v_conv, ci_conv, verdict, "; ".join(parts), len(counted), out, model, checkpoint, evidence)


def finding_3(rows: Iterable[dict], model: str | None = None, checkpoint: str | None = None) -> Verdict:
    """Finding 3: deep reconstructions are poor because the layer is non-unique, not because the optimiser failed.

    Why this test: only converged runs (m_g <= m_r) can show non-uniqueness, so it first asks that most deep runs
    converged (otherwise the pictures are the optimiser's and the finding is untested). Then it reads
    core.engine.verdict's uniqueness band on m_i / ||a'-a||_2 at each image's deepest converged stop of the last
    third: >= 3 is "non-unique", <= 1.5 "keeps the image". A median, since a ratio is skewed by one wild image.

    Args:
        rows: sweep rows with `input_l2_mean`, `shift_input_l2` (missing: inconclusive) and `seed_spread_input`
            (optional, reported); only `model`'s rows at `checkpoint` are read.
        model: the model (None: the rows must hold one).
        checkpoint: the checkpoint (None: the rows must hold one).

    Returns:
        The Verdict; evidence: the fraction of deep runs that converged, per deep stop the median ratio and the
        median seed spread / ||a'-a||_2, the ratio per image.
    """
    rows, model = _scope(rows, model, None)
    rows, checkpoint = _one_checkpoint(rows, checkpoint)
    out = Counter()
    deep = []
    for r in rows:
        if _rel(r) >= LATE - EPS:
            deep.append(r)
        else:
            out["outside the last third of depth"] += 1
    used, bad = _split(deep)
    out.update(bad)
    tried = [r for r in deep if reason_out(r) not in ("error", "degenerate")]
    share = len(used) / len(tried) if tried else float("nan")
    with_shift = []
    for r in used:
        mi, shift = _num(r.get("input_l2_mean")), _num(r.get("shift_input_l2"))
        if not _finite(mi) or not _finite(shift):
            out["no m_i or ||a'-a||_2"] += 1
        elif shift <= 0:
            out["||a'-a||_2 = 0"] += 1
        else:
            with_shift.append((r, mi / shift))
    deepest: dict = {}
    for r, ratio in with_shift:
        img = str(r.get("image"))
        if img not in deepest or _depth(r) > _depth(deepest[img][0]):
            deepest[img] = (r, ratio)
    out["not the image's deepest converged deep stop"] += len(with_shift) - len(deepest)
    ratios = {img: ratio for img, (_, ratio) in deepest.items()}
    value, ci = _median_ci(ratios)
    per_stop = []
    for s in _stops(deep):
        rs = [(r, q) for r, q in with_shift if str(r.get("layer")) == s["layer"]]
        spread = [_num(r.get("seed_spread_input")) / _num(r.get("shift_input_l2")) for r, _ in rs
                  if _finite(_num(r.get("seed_spread_input")))]
        n_rows = sum(str(r.get("layer")) == s["layer"] for r in deep)
        n_conv = sum(str(r.get("layer")) == s["layer"] for r in used)
        per_stop.append({"layer": s["layer"], "label": s["label"], "relative_depth": _r(s["relative_depth"]),
                         "rows": n_rows, "converged": n_conv,
                         "median_ratio": _r(np.median([q for _, q in rs])) if rs else None,
                         "median_seed_spread_ratio": _r(np.median(spread)) if spread else None})
    evidence = {"deep_rows": len(deep), "deep_converged": len(used), "converged_fraction": _r(share),
                "stops": per_stop, "ratio_per_image": {k: _r(v) for k, v in sorted(ratios.items())}}
    if not deep:
        verdict, why = INCONCLUSIVE, "the rows have no stop in the last third of depth"
    elif not tried or share < CONVERGED_SHARE:
        verdict = INCONCLUSIVE
        why = (f"only {len(used)} of {len(tried)} deep runs converged (m_g <= m_r): the optimiser failed there, "
               "which is no evidence either way")
    elif len(ratios) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {_images(len(ratios))} with a converged deep stop and ||a'-a||_2 ({MIN_IMAGES} needed)"
               if used else "no converged deep run")
    else:
        verdict = _band(value, ci, lambda v, lo, hi: lo >= NON_UNIQUE, lambda v, lo, hi: hi < NEAR_COPY)
        text = (f"{len(used)} of {len(tried)} deep runs converged and the median m_i / ||a'-a||_2 is "
                f"{_fmt(value, ci)} over {_images(len(ratios))}")
        why = {HOLDS: f"{text}: the embedding is matched yet the images differ (non-unique, CI >= {NON_UNIQUE:g})",
               FAILS: f"{text}: the reconstructions are near copies (CI < {NEAR_COPY:g}), the layer keeps the image",
               INCONCLUSIVE: f"{text}: the CI is not wholly in the non-unique (>= {NON_UNIQUE:g}) or the near-copy "
                             f"(< {NEAR_COPY:g}) band"}[verdict]
    return _verdict("3", value, ci, verdict, why, len(deepest), out, model, checkpoint, evidence)


def finding_4(rows: Iterable[dict], model: str | None = None, untrained: str = "untrained",
              trained: str = "trained") -> Verdict:
    """Finding 4: training sharpens early layers' reconstructions and not late layers'.

    Why this test: trained and untrained runs of the same image and stop form pairs, so the image's own
    difficulty cancels. Early stops (relative depth <= 1/3) must get clearer (mean Delta's CI above 0); late stops
    (>= 2/3) must not (CI at or below 0: "abstract images" are no clearer than the untrained model's blur). Per
    image the Delta is averaged over the part's paired stops, then the interval is over images. The middle third
    is in neither part. The `why` names the stop that most contradicts a part that fails or is unsettled.

    Args:
        rows: sweep rows of one model at both checkpoints.
        model: the model (None: the rows must hold one).
        untrained, trained: the two checkpoints' names.

    Returns:
        The Verdict (value: the early part's mean Delta); evidence: "early" and "late" (value, ci, verdict,
        n_images) and "stops" (mean Delta per stop with its CI over images).
    """
    rows, model = _scope(rows, model, [untrained, trained])
    used, out = _split(rows)
    cells = {ck: _by_image_layer([r for r in used if r.get("checkpoint") == ck]) for ck in (untrained, trained)}
    paired = set(cells[untrained]) & set(cells[trained])
    stops = {s["layer"]: s for s in _stops(rows)}
    counted = []
    for r in used:
        key = (str(r.get("image")), str(r.get("layer")))
        rd = stops[key[1]]["relative_depth"]
        if key not in paired:
            out["no converged partner at the other checkpoint"] += 1
        elif not _finite(rd):
            out["no relative_depth"] += 1
        elif not (rd <= EARLY + EPS or rd >= LATE - EPS):
            out["middle third of depth"] += 1
        else:
            counted.append(r)
    per_stop = []
    for layer, s in stops.items():
        deltas = {img: cells[trained][(img, lay)] - cells[untrained][(img, lay)] for img, lay in paired
                  if lay == layer}
        v, ci = _mean_ci(deltas)
        per_stop.append({"layer": layer, "label": s["label"], "relative_depth": _r(s["relative_depth"]),
                         "n_images": len(deltas), "delta": _r(v), "ci": ci, "_v": v, "_ci": ci})
    parts, texts = {}, []
    for name, inside, holds, fails, worst in (
            ("early", lambda rd: rd <= EARLY + EPS, lambda v, lo, hi: lo > 0, lambda v, lo, hi: hi <= 0, min),
            ("late", lambda rd: rd >= LATE - EPS, lambda v, lo, hi: hi <= 0, lambda v, lo, hi: lo > 0, max)):
        layers = [p for p in per_stop if _finite(p["relative_depth"]) and inside(p["relative_depth"])
                  and p["n_images"]]
        per_image: dict = {}
        for img, lay in paired:
            if any(p["layer"] == lay for p in layers):
                per_image.setdefault(img, []).append(cells[trained][(img, lay)] - cells[untrained][(img, lay)])
        v, ci = _mean_ci({img: float(np.mean(d)) for img, d in per_image.items()})
        res = _band(v, ci, holds, fails) if len(per_image) >= MIN_IMAGES else INCONCLUSIVE
        parts[name] = {"value": _r(v), "ci": ci, "verdict": res, "n_images": len(per_image),
                       "stops": [p["label"] for p in layers], "_v": v, "_ci": ci}
        if res == HOLDS:
            texts.append((res, (f"{name} part holds: trained - untrained clarity at the {name} stops is "
                                f"{_fmt(v, ci, True)}")))
            continue
        if not layers or len(per_image) < MIN_IMAGES:
            texts.append((res, (f"{name} part is inconclusive: only {_images(len(per_image))} paired at a "
                                f"converged {name} stop ({MIN_IMAGES} needed)")))
            continue
        p = worst(layers, key=lambda q: q["_v"] if _finite(q["_v"]) else 0.0)
        at = f"at {p['label']} it is {_fmt(p['_v'], p['_ci'], True)}"
        state = "does not hold" if res == FAILS else "is inconclusive (CI straddles 0)"
        texts.append((res, (f"{name} part {state}: trained - untrained clarity at the {name} stops is "
                            f"{_fmt(v, ci, True)} ({at})")))
    verdict = _combine([parts["early"]["verdict"], parts["late"]["verdict"]])
    shown = [t for res, t in texts if verdict == HOLDS or res == verdict] or [t for _, t in texts]
    for d in list(parts.values()) + per_stop:
        d.pop("_v"), d.pop("_ci")
    evidence = {"early": parts["early"], "late": parts["late"], "stops": per_stop, "paired_images":
                len({img for img, _ in paired})}
    e = parts["early"]
    return _verdict("4", e["value"], e["ci"], verdict, "; ".join(shown), len(counted), out, model,
                    f"{trained} vs {untrained}", evidence)


def finding_5(rows: Iterable[dict], model: str | None = None) -> Verdict:
    """Finding 5: deep trained layers pull non-natural inputs toward natural-image statistics.

    Rows are the manifold study's, mapped by the caller: `input_kind` ("noise", "disc", ...; natural kinds
    such as "natural"/"photo" are left out: they are not arbitrary inputs), optional `input` (the input's name,
    else its kind identifies it), `checkpoint` ("untrained"/"trained"), `layer`, `naturalness` (higher = more
    natural), `converged`/`status` (the unconverged rule) and optional `relative_depth` (rows below 2/3 are
    left out; rows without it are kept: the caller chose the layers).

    Why this test: the same input at the same layer, reconstructed by both checkpoints, pairs out the input's own
    look; "toward the manifold" is "more natural after training", so the mean paired difference must be above 0
    with the interval over inputs.

    Args:
        rows: the rows above.
        model: keep only rows of this model (None: the rows must hold at most one).

    Returns:
        The Verdict (checkpoint "trained vs untrained"); evidence: the difference per input and per layer.
    """
    rows, model = _scope(rows, model, None)
    out = Counter()
    keep = []
    for r in rows:
        if str(r.get("input_kind") or "").lower() in NATURAL_KINDS:
            out["natural input"] += 1
        elif r.get("checkpoint") not in ("untrained", "trained"):
            out["other checkpoint"] += 1
        elif _finite(_rel(r)) and _rel(r) < LATE - EPS:
            out["not a deep layer"] += 1
        else:
            keep.append(r)
    used, bad = _split(keep, "naturalness")
    out.update(bad)
    cells: dict = {}
    for r in used:
        key = (str(r.get("input") or r.get("input_kind")), str(r.get("layer")))
        cells.setdefault(r["checkpoint"], {}).setdefault(key, []).append(_num(r["naturalness"]))
    u = {k: float(np.mean(v)) for k, v in cells.get("untrained", {}).items()}
    t = {k: float(np.mean(v)) for k, v in cells.get("trained", {}).items()}
    paired = set(u) & set(t)
    counted = [r for r in used if (str(r.get("input") or r.get("input_kind")), str(r.get("layer"))) in paired]
    out["no converged partner at the other checkpoint"] += len(used) - len(counted)
    per_input: dict = {}
    for inp, lay in paired:
        per_input.setdefault(inp, []).append(t[(inp, lay)] - u[(inp, lay)])
    deltas = {k: float(np.mean(v)) for k, v in per_input.items()}
    value, ci = _mean_ci(deltas)
    layers = sorted({lay for _, lay in paired})
    evidence = {"delta_per_input": {k: _r(v) for k, v in sorted(deltas.items())},
                "delta_per_layer": {lay: _r(np.mean([t[(i, lay)] - u[(i, lay)] for i, la in paired if la == lay]))
                                    for lay in layers},
                "layers_without_depth": sorted({str(r.get("layer")) for r in used if not _finite(_rel(r))})}
    if len(deltas) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {_images(len(deltas), 'input')} reconstructed by both checkpoints with both runs converged "
               f"({MIN_IMAGES} needed)" if rows else "no manifold rows")
    else:
        verdict = _band(value, ci, lambda v, lo, hi: lo > 0, lambda v, lo, hi: hi <= 0)
        text = f"trained - untrained naturalness is {_fmt(value, ci, True)} over {_images(len(deltas), 'input')}"
        why = {HOLDS: f"{text}: trained deep layers return more natural-looking images (CI above 0)",
               FAILS: f"{text}: the CI lies at or below 0, training does not make them more natural",
               INCONCLUSIVE: f"{text}: the CI straddles 0"}[verdict]
    return _verdict("5", value, ci, verdict, why, len(counted), out, model, "trained vs untrained", evidence)


def finding_6(rows: Iterable[dict], model: str | None = None) -> Verdict:
    """Finding 6: an MLP layer narrower than its input is never unique; ReLU needs about twice the width.

    Rows are the MLP lab's, mapped by the caller: `width_ratio` (hidden width / input width), `activation`
    ("relu", "linear", ...), `unique` (bool: the inversion recovered the input; missing: clarity >= 0.95),
    `converged`/`status` (the unconverged rule; a run that did not converge says nothing about uniqueness) and
    optional `rank_deficient` (bool: the network's Jacobian at the image has rank below the input's dimension).
    A rank-deficient row is not unique and counts whether or not its run converged: for a piecewise-linear
    network (linear, ReLU) the map is linear around the image, so a null direction of the Jacobian changes the
    input without changing the embedding at all, an exact proof that needs no optimiser.

    Why this test: below width 1 no map can be injective, so a single unique run there contradicts the claim; a
    ReLU layer zeroes about half its units, so below 1.5 x it keeps fewer than the input's dimensions and must not
    be unique either, while from 2 x on most runs should be. The lab's configurations are chosen, not sampled,
    so the parts are counts; the value's CI (over runs) is reported for scale.

    Args:
        rows: the rows above.
        model: keep only rows of this model (None: the rows must hold at most one).

    Returns:
        The Verdict; evidence: "narrow", "relu_narrow", "relu_wide" (runs, unique, verdict) and the unique
        fraction per (activation, width ratio).
    """
    rows, model = _scope(rows, model, None)
    out = Counter()
    keep = []
    for r in rows:
        if not _finite(_num(r.get("width_ratio"))):
            out["no width_ratio"] += 1
            continue
        why = None if _truth(r.get("rank_deficient")) else reason_out(r, "")
        if why is None and r.get("unique") is None and not _finite(_num(r.get("clarity"))) \
                and not _truth(r.get("rank_deficient")):
            why = "no unique or clarity"
        if why:
            out[why] += 1
        else:
            keep.append(r)

    def unique(r) -> bool:
        if _truth(r.get("rank_deficient")):
            return False
        return _truth(r["unique"]) if r.get("unique") is not None else _num(r.get("clarity")) >= UNIQUE_CLARITY

    def act(r) -> str:
        return str(r.get("activation") or "").strip().lower()

    groups = {"narrow": [r for r in keep if _num(r["width_ratio"]) < 1],
              "relu_narrow": [r for r in keep if act(r) == "relu" and _num(r["width_ratio"]) < RELU_NOT],
              "relu_wide": [r for r in keep if act(r) == "relu" and _num(r["width_ratio"]) >= RELU_WIDTH]}
    counted = [r for r in keep if any(r is g for rs in groups.values() for g in rs)]
    out["width outside the tested groups"] += len(keep) - len(counted)
    evidence, results = {}, {}
    for name, rs in groups.items():
        k = sum(unique(r) for r in rs)
        if not rs:
            res = INCONCLUSIVE
        elif name == "relu_wide":
            res = HOLDS if k / len(rs) >= 0.5 else FAILS
        else:
            res = HOLDS if k == 0 else FAILS
        results[name] = res
        evidence[name] = {"runs": len(rs), "unique": int(k), "verdict": res,
                          "rank_deficient": sum(_truth(r.get("rank_deficient")) for r in rs)}
    table: dict = {}
    for r in keep:
        table.setdefault((act(r), float(_num(r["width_ratio"]))), []).append(unique(r))
    evidence["unique_fraction"] = [{"activation": a, "width_ratio": w, "runs": len(v), "fraction": _r(np.mean(v))}
                                   for (a, w), v in sorted(table.items())]
    wide = groups["relu_wide"]
    value = float(np.mean([unique(r) for r in wide])) if wide else float("nan")
    ci = bootstrap_ci([float(unique(r)) for r in wide], n_boot=N_BOOT, seed=SEED) if wide else None
    verdict = _combine(list(results.values()))
    names = {"narrow": "runs at width ratio < 1 (any activation)", "relu_narrow": f"ReLU runs at width ratio < "
             f"{RELU_NOT:g}", "relu_wide": f"ReLU runs at width ratio >= {RELU_WIDTH:g}"}
    if verdict == INCONCLUSIVE:
        missing = [names[g] for g, res in results.items() if res == INCONCLUSIVE]
        why = "no converged " + " and no converged ".join(missing)
    else:
        bits = [f"{evidence[g]['unique']} of {evidence[g]['runs']} {names[g]} unique" for g in groups
                if verdict == HOLDS or results[g] == FAILS]
        why = ("as predicted: " if verdict == HOLDS else "against the prediction: ") + "; ".join(bits)
    return _verdict("6", value, ci, verdict, why, len(counted), out, model, None, evidence)


def finding_7(rows: Iterable[dict], model: str | None = None, checkpoint: str | None = None) -> Verdict:
    """Finding 7 (ViT): clarity nearly flat across the encoder blocks, the loss at the patch embedding.

    Why this test: two parts. Flat: per image converged at every encoder-block stop, the spread (max - min) of
    clarity over them; "nearly flat" = mean <= 0.1 with the CI's upper end <= 0.15, and it fails once the whole
    CI is above 0.1. Where: the patch embedding must carry at least half of the loss seen at the last block,
    d = (1 - c_pe) - 0.5 (1 - c_last) >= 0 per image (a difference, so a last block with no loss at all does not
    divide by zero), holds if the CI's lower end >= 0, fails if its upper end < 0.

    Args:
        rows: sweep rows of one ViT-like model (`is_vit`); only `checkpoint`'s rows are read.
        model: the model (None: the rows must hold one).
        checkpoint: the checkpoint (None: the rows must hold one).

    Returns:
        The Verdict (value: the mean spread); evidence: "flat" and "drop" (value, ci, verdict, n_images) and the
        mean clarity per block.
    """
    rows, model = _scope(rows, model, None)
    rows, checkpoint = _one_checkpoint(rows, checkpoint)
    stops = _stops(rows)
    pes = [s for s in stops if is_patch_embedding(s)]
    pe = pes[0] if pes else None
    blocks = [s for s in stops if pe is not None and s["depth"] > pe["depth"] and is_block(s)]
    used, out = _split(rows)
    evidence: dict = {"patch_embedding": pe and pe["label"], "blocks": [b["label"] for b in blocks]}
    if pe is None or len(blocks) < 2:
        out["not the patch embedding or a block"] += len(used)
        why = "the rows have no patch-embedding stop" if pe is None else \
            f"only {len(blocks)} encoder-block stop after the patch embedding (2 needed)"
        return _verdict("7", None, None, INCONCLUSIVE, why, 0, out, model, checkpoint, evidence)
    cells = _by_image_layer(used)
    images = sorted({img for img, _ in cells})
    names = [b["layer"] for b in blocks]
    spread, drop = {}, {}
    for img in images:
        vals = [cells.get((img, lay)) for lay in names]
        if all(v is not None for v in vals):
            spread[img] = max(vals) - min(vals)
        last, at_pe = cells.get((img, names[-1])), cells.get((img, pe["layer"]))
        if last is not None and at_pe is not None:
            drop[img] = (1 - at_pe) - PE_SHARE * (1 - last)
    layers_used = set()
    for r in used:
        img, lay = str(r.get("image")), str(r.get("layer"))
        in_flat = lay in names and img in spread
        in_drop = lay in (pe["layer"], names[-1]) and img in drop
        if in_flat or in_drop:
            layers_used.add((img, lay))
        elif lay in names or lay == pe["layer"]:
            out["image not converged at every block (or at the patch embedding)"] += 1
        else:
            out["not the patch embedding or a block"] += 1
    counted = [r for r in used if (str(r.get("image")), str(r.get("layer"))) in layers_used]
    v_flat, ci_flat = _mean_ci(spread)
    v_drop, ci_drop = _mean_ci(drop)
    flat = _band(v_flat, ci_flat, lambda v, lo, hi: v <= FLAT_SPREAD and hi <= FLAT_CI,
                 lambda v, lo, hi: lo > FLAT_SPREAD) if len(spread) >= MIN_IMAGES else INCONCLUSIVE
    where = _band(v_drop, ci_drop, lambda v, lo, hi: lo >= 0, lambda v, lo, hi: hi < 0) \
        if len(drop) >= MIN_IMAGES else INCONCLUSIVE
    evidence.update(
        flat={"value": _r(v_flat), "ci": ci_flat, "verdict": flat, "n_images": len(spread)},
        drop={"value": _r(v_drop), "ci": ci_drop, "verdict": where, "n_images": len(drop),
              "clarity_patch_embedding": _r(np.mean([cells[(i, pe["layer"])] for i in drop])) if drop else None,
              "clarity_last_block": _r(np.mean([cells[(i, names[-1])] for i in drop])) if drop else None},
        block_clarity={b["label"]: _r(np.mean(v)) if (v := [cells[(i, b["layer"])] for i in images
                                                            if (i, b["layer"]) in cells]) else None
                       for b in blocks})
    verdict = _combine([flat, where])
    texts = []
    for name, res, n_img, text in (
            ("flat part", flat, len(spread),
             f"the spread of clarity over {len(blocks)} blocks is {_fmt(v_flat, ci_flat)}"),
            ("patch-embedding part", where, len(drop),
             (f"(1 - clarity at {pe['label']}) - {PE_SHARE:g} x (1 - clarity at {blocks[-1]['label']}) is "
              f"{_fmt(v_drop, ci_drop, True)}"))):
        if verdict == HOLDS or res == verdict:
            if n_img < MIN_IMAGES:
                texts.append(f"{name} is inconclusive: only {_images(n_img)} converged at every stop it needs")
            else:
                state = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "is inconclusive"}[res]
                texts.append(f"{name} {state}: {text}")
    return _verdict("7", v_flat, ci_flat, verdict, "; ".join(texts), len(counted), out, model, checkpoint, evidence)


# --------------------------------------------------------------------------- every finding the rows allow


def _is_manifold(r: dict) -> bool:
    return "naturalness" in r and "input_kind" in r


def _is_lab(r: dict) -> bool:
    return "width_ratio" in r


def evaluate(rows: Iterable[dict], models: Sequence[str] | None = None, untrained: str = "untrained",
             trained: str = "trained") -> list[Verdict]:
    """Every finding the rows allow, per model.

    Sweep rows (those with model, layer and clarity): finding 1 and 2 on the untrained checkpoint (2 not for a
    ViT-like model: its first stop is the patch embedding, finding 7's), 3 on each checkpoint, 4 when both the
    untrained and the trained checkpoint are there, 7 on each checkpoint of a ViT-like model (`is_vit`).
    Manifold rows (naturalness and input_kind): finding 5 per model. Lab rows (width_ratio): finding 6 per model.

    Args:
        rows: the rows, of any of the three kinds.
        models: only these models (None: every model in the rows).
        untrained, trained: the checkpoint names of finding 1, 2 and 4.

    Returns:
        The verdicts, by model (sorted; findings 5 and 6 of rows without a model last), then finding id, then
        checkpoint.

    Raises:
        ValueError: a name in `models` that no row has.
    """
    rows = list(rows)
    manifold = [r for r in rows if _is_manifold(r)]
    lab = [r for r in rows if _is_lab(r) and not _is_manifold(r)]
    sweep = [r for r in rows if not _is_manifold(r) and not _is_lab(r) and "layer" in r and "clarity" in r]
    present = sorted({str(r.get("model")) for r in rows if r.get("model") is not None})
    if models is not None:
        unknown = [m for m in models if m not in present]
        if unknown:
            raise ValueError(f"no rows of {', '.join(unknown)} (the rows have {', '.join(present) or 'no model'})")
    wanted = set(models) if models is not None else None
    out: list[Verdict] = []
    for m in sorted({str(r.get("model")) for r in sweep}):
        if wanted is not None and m not in wanted:
            continue
        mrows = [r for r in sweep if str(r.get("model")) == m]
        cks = sorted({str(r.get("checkpoint")) for r in mrows})
        vit = is_vit(m, mrows)
        if untrained in cks:
            out.append(finding_1(mrows, m, untrained))
            if not vit:
                out.append(finding_2(mrows, m, untrained))
        out += [finding_3(mrows, m, ck) for ck in cks]
        if untrained in cks and trained in cks:
            out.append(finding_4(mrows, m, untrained, trained))
        if vit:
            out += [finding_7(mrows, m, ck) for ck in cks]
    for kind, fn in ((manifold, finding_5), (lab, finding_6)):
        if not kind:
            continue
        names = sorted({r.get("model") for r in kind if r.get("model") is not None})
        if not names:
            out.append(fn(kind))
        out += [fn(kind, name) for name in names if wanted is None or name in wanted]
    return sorted(out, key=lambda v: (v.model is None, v.model or "", int(v.id), v.checkpoint or ""))
