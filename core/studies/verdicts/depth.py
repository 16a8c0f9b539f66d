"""The findings read off the clarity curve: 1 (untrained clarity falls with depth), 2 (the first convolution is
exact, the first pooling loses it) and 4 (training sharpens early layers, not late ones)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.studies.verdicts.claims import (
    EARLY,
    EPS,
    FAILS,
    FIRST_CONV_CLARITY,
    HOLDS,
    INCONCLUSIVE,
    LATE,
    MIN_IMAGES,
    MIN_STOPS,
)
from core.studies.verdicts.rows import (
    band,
    by_image_layer,
    combine_parts,
    count_text,
    depth_of,
    finite,
    fmt,
    mean_ci,
    num,
    rounded,
    scope,
    spearman,
    split_rows,
    stops_of,
)
from core.studies.verdicts.stops import is_first_conv, is_pooling
from core.studies.verdicts.verdict import Verdict, make_verdict


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
    rows, model = scope(rows, model, [checkpoint])
    used, out = split_rows(rows)
    per_image: dict = {}
    for r in used:
        per_image.setdefault(str(r.get("image")), []).append(r)
    rho, counted = {}, []
    for img, rs in per_image.items():
        cells = by_image_layer(rs)
        depth = {str(r.get("layer")): depth_of(r) for r in rs}
        layers = [lay for (_, lay) in cells if finite(depth[lay])]
        if len(layers) < MIN_STOPS:
            out[f"image with fewer than {MIN_STOPS} converged stops"] += len(rs)
            continue
        rho[img] = spearman([depth[lay] for lay in layers], [cells[(img, lay)] for lay in layers])
        counted += rs
    value, ci = mean_ci(rho)
    layer_means = []
    for s in stops_of(rows):
        vals = [num(r["clarity"]) for r in used if str(r.get("layer")) == s["layer"]]
        layer_means.append({"layer": s["layer"], "label": s["label"], "depth": s["depth"],
                            "relative_depth": rounded(s["relative_depth"]), "n": len(vals),
                            "clarity_mean": rounded(np.mean(vals)) if vals else None})
    evidence = {"rho_per_image": {k: rounded(v) for k, v in sorted(rho.items())}, "stops": layer_means}
    if len(rho) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {count_text(len(rho))} converged at {MIN_STOPS} or more stops ({MIN_IMAGES} needed), so there "
               "is no interval over images")
    else:
        verdict = band(value, ci, lambda v, lo, hi: hi < 0, lambda v, lo, hi: lo >= 0)
        text = f"mean rho {fmt(value, ci, True)} over {count_text(len(rho))}"
        why = {HOLDS: f"{text}: clarity falls with depth on every resample (CI below 0)",
               FAILS: f"{text}: the CI lies at or above 0, clarity does not fall with depth",
               INCONCLUSIVE: f"{text}: the CI straddles 0"}[verdict]
    return make_verdict("1", value, ci, verdict, why, len(counted), out, model, checkpoint, evidence)


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
    rows, model = scope(rows, model, [checkpoint])
    stops = stops_of(rows)
    pools = [s for s in stops if is_pooling(s)]
    pool = pools[0] if pools else None
    convs = [s for s in stops if is_first_conv(s) and (pool is None or s["depth"] < pool["depth"])]
    conv = convs[0] if convs else None
    used, out = split_rows(rows)
    evidence: dict = {"conv": {"stop": conv and conv["label"], "layer": conv and conv["layer"]},
                      "pool": {"stop": pool and pool["label"], "layer": pool and pool["layer"]}}
    if conv is None or pool is None:
        wants = (("a first-convolution stop", conv), ("a pooling/strided stop after it", pool))
        missing = " and ".join(w for w, s in wants if s is None)
        out["not the first conv or pooling stop"] += len(used)
        return make_verdict("2", None, None, INCONCLUSIVE, f"the model's stops include no {missing.replace('a ', '', 1)}"
                        " (it may downsample inside blocks, which the test cannot place)", 0, out, model, checkpoint,
                        evidence)
    cells = by_image_layer(used)
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
    v_conv, ci_conv = mean_ci(at_conv)
    v_diff, ci_diff = mean_ci(diff)
    a = band(v_conv, ci_conv, lambda v, lo, hi: lo >= FIRST_CONV_CLARITY, lambda v, lo, hi: hi < FIRST_CONV_CLARITY)
    b = band(v_diff, ci_diff, lambda v, lo, hi: hi < 0, lambda v, lo, hi: lo >= 0)
    if len(at_conv) < MIN_IMAGES:
        a = INCONCLUSIVE
    if len(diff) < MIN_IMAGES:
        b = INCONCLUSIVE
    evidence["conv"].update(value=rounded(v_conv), ci=ci_conv, verdict=a, n_images=len(at_conv))
    evidence["pool"].update(value=rounded(v_diff), ci=ci_diff, verdict=b, n_images=len(diff),
                            clarity=rounded(np.mean([cells[(i, pool["layer"])] for i in diff])) if diff else None)
    verdict = combine_parts([a, b])
    conv_text = f"clarity at {conv['label']} is {fmt(v_conv, ci_conv)} over {count_text(len(at_conv))}"
    pool_text = f"{pool['label']} minus {conv['label']} is {fmt(v_diff, ci_diff, True)} over {count_text(len(diff))}"
    parts = []
    for name, res, text, few in (("first-conv part", a, conv_text, len(at_conv) < MIN_IMAGES),
                                 ("pooling part", b, pool_text, len(diff) < MIN_IMAGES)):
        if verdict == HOLDS or res == verdict:
            state = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "is inconclusive"}[res]
            note = f" (fewer than {MIN_IMAGES} images)" if few else (" (CI straddles the threshold)"
                                                                       if res == INCONCLUSIVE else "")
            parts.append(f"{name} {state}{note}: {text}")
    return make_verdict("2", v_conv, ci_conv, verdict, "; ".join(parts), len(counted), out, model, checkpoint, evidence)



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
    rows, model = scope(rows, model, [untrained, trained])
    used, out = split_rows(rows)
    cells = {ck: by_image_layer([r for r in used if r.get("checkpoint") == ck]) for ck in (untrained, trained)}
    paired = set(cells[untrained]) & set(cells[trained])
    stops = {s["layer"]: s for s in stops_of(rows)}
    counted = []
    for r in used:
        key = (str(r.get("image")), str(r.get("layer")))
        rd = stops[key[1]]["relative_depth"]
        if key not in paired:
            out["no converged partner at the other checkpoint"] += 1
        elif not finite(rd):
            out["no relative_depth"] += 1
        elif not (rd <= EARLY + EPS or rd >= LATE - EPS):
            out["middle third of depth"] += 1
        else:
            counted.append(r)
    per_stop = []
    for layer, s in stops.items():
        deltas = {img: cells[trained][(img, lay)] - cells[untrained][(img, lay)] for img, lay in paired
                  if lay == layer}
        v, ci = mean_ci(deltas)
        per_stop.append({"layer": layer, "label": s["label"], "relative_depth": rounded(s["relative_depth"]),
                         "n_images": len(deltas), "delta": rounded(v), "ci": ci, "_v": v, "_ci": ci})
    parts, texts = {}, []
    for name, inside, holds, fails, worst in (
            ("early", lambda rd: rd <= EARLY + EPS, lambda v, lo, hi: lo > 0, lambda v, lo, hi: hi <= 0, min),
            ("late", lambda rd: rd >= LATE - EPS, lambda v, lo, hi: hi <= 0, lambda v, lo, hi: lo > 0, max)):
        layers = [p for p in per_stop if finite(p["relative_depth"]) and inside(p["relative_depth"])
                  and p["n_images"]]
        per_image: dict = {}
        for img, lay in paired:
            if any(p["layer"] == lay for p in layers):
                per_image.setdefault(img, []).append(cells[trained][(img, lay)] - cells[untrained][(img, lay)])
        v, ci = mean_ci({img: float(np.mean(d)) for img, d in per_image.items()})
        res = band(v, ci, holds, fails) if len(per_image) >= MIN_IMAGES else INCONCLUSIVE
        parts[name] = {"value": rounded(v), "ci": ci, "verdict": res, "n_images": len(per_image),
                       "stops": [p["label"] for p in layers], "_v": v, "_ci": ci}
        if res == HOLDS:
            texts.append((res, (f"{name} part holds: trained - untrained clarity at the {name} stops is "
                                f"{fmt(v, ci, True)}")))
            continue
        if not layers or len(per_image) < MIN_IMAGES:
            texts.append((res, (f"{name} part is inconclusive: only {count_text(len(per_image))} paired at a "
                                f"converged {name} stop ({MIN_IMAGES} needed)")))
            continue
        p = worst(layers, key=lambda q: q["_v"] if finite(q["_v"]) else 0.0)
        at = f"at {p['label']} it is {fmt(p['_v'], p['_ci'], True)}"
        state = "does not hold" if res == FAILS else "is inconclusive (CI straddles 0)"
        texts.append((res, (f"{name} part {state}: trained - untrained clarity at the {name} stops is "
                            f"{fmt(v, ci, True)} ({at})")))
    verdict = combine_parts([parts["early"]["verdict"], parts["late"]["verdict"]])
    shown = [t for res, t in texts if verdict == HOLDS or res == verdict] or [t for _, t in texts]
    if texts[0][1] not in shown:  # the early part's value is the verdict's headline number: say what it is
        shown.append(texts[0][1])
    for d in list(parts.values()) + per_stop:
        d.pop("_v"), d.pop("_ci")
    evidence = {"early": parts["early"], "late": parts["late"], "stops": per_stop, "paired_images":
                len({img for img, _ in paired})}
    e = parts["early"]
    return make_verdict("4", e["value"], e["ci"], verdict, "; ".join(shown), len(counted), out, model,
                    f"{trained} vs {untrained}", evidence)
