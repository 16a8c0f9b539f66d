"""The findings read off the clarity curve: 1 (untrained clarity falls with depth), 2 (the first convolution is
exact, the first pooling loses it) and 4 (training sharpens early layers, not late ones)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.studies.verdicts.claims import (
    ABSTRACT_MARGIN,
    EARLY,
    EPS,
    FAILS,
    FIRST_CONV_CLARITY,
    HOLDS,
    INCONCLUSIVE,
    LATE,
    MIN_IMAGES,
    MIN_STOPS,
    measure_word,
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


def finding_1(rows: Iterable[dict], model_name: str | None = None, checkpoint: str = "untrained",
              measure: str = "clarity") -> Verdict:
    """Finding 1: before training, clarity falls with depth.

    Why this test: a rank correlation asks only "deeper -> less clear", not for a shape (a curve that falls in
    steps or saturates counts), and per image it pairs every stop with the same picture; the mean over images
    with its bootstrap interval says whether the trend is more than one image's luck. A constant curve has
    rho = 0 (no trend), so a flat curve does not hold.

    Args:
        rows: sweep rows (module docstring); only `model_name`'s rows at `checkpoint` are read.
        model_name: the model's name (None: the rows must hold one).
        checkpoint: the untrained checkpoint's name.
        measure: the row's number the test reads: "clarity", or a measure of the panel ("fidelity", "structure").

    Returns:
        The Verdict; evidence: rho per image, the measure's mean per stop (converged rows), the stops.
    """
    rows, model_name = scope(rows, model_name, [checkpoint])
    word = measure_word(measure)
    used, out = split_rows(rows, measure)
    per_image: dict = {}
    for r in used:
        per_image.setdefault(str(r.get("image")), []).append(r)
    rho, counted = {}, []
    for img, rs in per_image.items():
        cells = by_image_layer(rs, measure)
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
        vals = [num(r[measure]) for r in used if str(r.get("layer")) == s["layer"]]
        layer_means.append({"layer": s["layer"], "label": s["label"], "depth": s["depth"],
                            "relative_depth": rounded(s["relative_depth"]), "n": len(vals),
                            f"{measure}_mean": rounded(np.mean(vals)) if vals else None})
    evidence = {"rho_per_image": {k: rounded(v) for k, v in sorted(rho.items())}, "stops": layer_means}
    if len(rho) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {count_text(len(rho))} converged at {MIN_STOPS} or more stops ({MIN_IMAGES} needed), so there "
               "is no interval over images")
    else:
        verdict = band(value, ci, lambda v, lo, hi: hi < 0, lambda v, lo, hi: lo >= 0)
        text = f"mean rho {fmt(value, ci, True)} over {count_text(len(rho))}"
        why = {HOLDS: f"{text}: {word} falls with depth on every resample (CI below 0)",
               FAILS: f"{text}: the CI lies at or above 0, {word} does not fall with depth",
               INCONCLUSIVE: f"{text}: the CI straddles 0"}[verdict]
    return make_verdict("1", value, ci, verdict, why, len(counted), out, model_name, checkpoint, evidence)


def finding_2(rows: Iterable[dict], model_name: str | None = None, checkpoint: str = "untrained",
              measure: str = "clarity") -> Verdict:
    """Finding 2: the first convolution is (almost) exact, the first pooling/strided stop is where exactness goes.

    Why this test: "almost perfectly" is read as the measure >= 0.9 (core.engine.run_reading.KEEPS_FIDELITY: nearly
    the image) with the whole interval there; "first lost at pooling" as a paired per-image drop from the
    first conv to the first pooling/strided stop with the interval below 0. Stops are told apart by `kind`, else
    by name (`is_first_conv`, `is_pooling`); the first conv must come before the first pooling stop.

    Args:
        rows: sweep rows; only `model_name`'s rows at `checkpoint` are read.
        model_name: the model's name (None: the rows must hold one).
        checkpoint: the untrained checkpoint's name.
        measure: the row's number the test reads ("clarity", "fidelity", "structure").

    Returns:
        The Verdict (value: the measure's mean at the first conv); evidence: "conv" and "pool", each with its stop,
        value, ci and verdict (pool: the paired difference pool - conv).
    """
    rows, model_name = scope(rows, model_name, [checkpoint])
    stops = stops_of(rows)
    pools = [s for s in stops if is_pooling(s)]
    pool = pools[0] if pools else None
    convs = [s for s in stops if is_first_conv(s) and (pool is None or s["depth"] < pool["depth"])]
    conv = convs[0] if convs else None
    word = measure_word(measure)
    used, out = split_rows(rows, measure)
    evidence: dict = {"conv": {"stop": conv and conv["label"], "layer": conv and conv["layer"]},
                      "pool": {"stop": pool and pool["label"], "layer": pool and pool["layer"]}}
    if conv is None or pool is None:
        wants = (("a first-convolution stop", conv), ("a pooling/strided stop after it", pool))
        missing = " and ".join(w for w, s in wants if s is None)
        out["not the first conv or pooling stop"] += len(used)
        return make_verdict("2", None, None, INCONCLUSIVE, f"the model's stops include no {missing.replace('a ', '', 1)}"
                        " (it may downsample inside blocks, which the test cannot place)", 0, out, model_name, checkpoint,
                        evidence)
    cells = by_image_layer(used, measure)
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
                            **{measure: rounded(np.mean([cells[(i, pool["layer"])] for i in diff])) if diff else None})
    verdict = combine_parts([a, b])
    conv_text = f"{word} at {conv['label']} is {fmt(v_conv, ci_conv)} over {count_text(len(at_conv))}"
    pool_text = f"{pool['label']} minus {conv['label']} is {fmt(v_diff, ci_diff, True)} over {count_text(len(diff))}"
    parts = []
    for name, res, text, few in (("first-conv part", a, conv_text, len(at_conv) < MIN_IMAGES),
                                 ("pooling part", b, pool_text, len(diff) < MIN_IMAGES)):
        if verdict == HOLDS or res == verdict:
            state = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "is inconclusive"}[res]
            note = f" (fewer than {MIN_IMAGES} images)" if few else (" (CI straddles the threshold)"
                                                                       if res == INCONCLUSIVE else "")
            parts.append(f"{name} {state}{note}: {text}")
    return make_verdict("2", v_conv, ci_conv, verdict, "; ".join(parts), len(counted), out, model_name, checkpoint, evidence)



def _late_deltas(paired, cells, trained, untrained, layers) -> dict:
    """{image: mean over its paired late stops of trained - untrained} for one measure's cells."""
    per_image: dict = {}
    for img, lay in paired:
        if lay in layers:
            per_image.setdefault(img, []).append(cells[trained][(img, lay)] - cells[untrained][(img, lay)])
    return {img: float(np.mean(d)) for img, d in per_image.items()}


def finding_4(rows: Iterable[dict], model_name: str | None = None, untrained: str = "untrained",
              trained: str = "trained", measure: str = "clarity") -> Verdict:
    """Finding 4: training sharpens early layers' reconstructions; late layers' become abstract images.

    Why this test: trained and untrained runs of the same image and stop form pairs, so the image's own
    difficulty cancels. Early stops (relative depth <= 1/3) must keep more (mean Delta of the measure, CI above
    0). Late stops (>= 2/3) must show abstract images, defined so that it can be measured: pixel fidelity no
    higher than the untrained model's (Delta fidelity's CI at or below 0) while what the measure sees is kept or
    gained (Delta's CI above -ABSTRACT_MARGIN). A trained late layer whose pictures are simply clearer in pixels
    fails; one whose pictures lost the content too fails. Per image the Delta is averaged over the part's paired
    stops, then the interval is over images. The middle third is in neither part. The `why` names the stop that
    most contradicts an early part that fails or is unsettled.

    Args:
        rows: sweep rows of one model at both checkpoints.
        model_name: the model's name (None: the rows must hold one).
        untrained, trained: the two checkpoints' names.
        measure: the row's number the test reads ("clarity", "fidelity", "structure"); the late part also reads
            "fidelity".

    Returns:
        The Verdict (value: the early part's mean Delta); evidence: "early" and "late" (value, ci, verdict,
        n_images; late also "pixel" and "kept", its two halves) and "stops" (mean Delta per stop with its CI).
    """
    rows, model_name = scope(rows, model_name, [untrained, trained])
    word = measure_word(measure)
    used, out = split_rows(rows, measure)
    cells = {ck: by_image_layer([r for r in used if r.get("checkpoint") == ck], measure) for ck in (untrained, trained)}
    with_pixels = [r for r in used if finite(num(r.get("fidelity")))]
    pixels = {ck: by_image_layer([r for r in with_pixels if r.get("checkpoint") == ck], "fidelity")
              for ck in (untrained, trained)}
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

    def part_layers(inside):
        return [p for p in per_stop if finite(p["relative_depth"]) and inside(p["relative_depth"]) and p["n_images"]]

    texts = []
    # early: the measure's Delta above 0
    early_layers = part_layers(lambda rd: rd <= EARLY + EPS)
    per_image = _late_deltas(paired, cells, trained, untrained, {p["layer"] for p in early_layers})
    v, ci = mean_ci(per_image)
    res = band(v, ci, lambda v, lo, hi: lo > 0, lambda v, lo, hi: hi <= 0) if len(per_image) >= MIN_IMAGES \
        else INCONCLUSIVE
    early = {"value": rounded(v), "ci": ci, "verdict": res, "n_images": len(per_image),
             "stops": [p["label"] for p in early_layers]}
    if res == HOLDS:
        texts.append((res, f"early part holds: trained - untrained {word} at the early stops is {fmt(v, ci, True)}"))
    elif not early_layers or len(per_image) < MIN_IMAGES:
        texts.append((res, (f"early part is inconclusive: only {count_text(len(per_image))} paired at a converged "
                            f"early stop ({MIN_IMAGES} needed)")))
    else:
        p = min(early_layers, key=lambda q: q["_v"] if finite(q["_v"]) else 0.0)
        state = "does not hold" if res == FAILS else "is inconclusive (CI straddles 0)"
        texts.append((res, (f"early part {state}: trained - untrained {word} at the early stops is "
                            f"{fmt(v, ci, True)} (at {p['label']} it is {fmt(p['_v'], p['_ci'], True)})")))
    # late: abstract images = pixel fidelity not above untrained, the measure kept or gained
    late_layers = {p["layer"] for p in part_layers(lambda rd: rd >= LATE - EPS)}
    kept_d = _late_deltas(paired, cells, trained, untrained, late_layers)
    pix_d = _late_deltas(set(pixels[untrained]) & set(pixels[trained]) & paired, pixels, trained, untrained,
                         late_layers)
    v_k, ci_k = mean_ci(kept_d)
    v_p, ci_p = mean_ci(pix_d)
    pixel = band(v_p, ci_p, lambda v, lo, hi: hi <= 0, lambda v, lo, hi: lo > 0) if len(pix_d) >= MIN_IMAGES \
        else INCONCLUSIVE
    kept = band(v_k, ci_k, lambda v, lo, hi: lo >= -ABSTRACT_MARGIN, lambda v, lo, hi: hi < -ABSTRACT_MARGIN) \
        if len(kept_d) >= MIN_IMAGES else INCONCLUSIVE
    late_res = combine_parts([pixel, kept])
    late = {"value": rounded(v_k), "ci": ci_k, "verdict": late_res, "n_images": len(kept_d),
            "stops": [stops[lay]["label"] for lay in stops if lay in late_layers],
            "pixel": {"value": rounded(v_p), "ci": ci_p, "verdict": pixel, "n_images": len(pix_d)},
            "kept": {"value": rounded(v_k), "ci": ci_k, "verdict": kept, "n_images": len(kept_d)}}
    if len(kept_d) < MIN_IMAGES or len(pix_d) < MIN_IMAGES:
        texts.append((late_res, (f"late part (abstract images) is inconclusive: only {count_text(min(len(kept_d), len(pix_d)))} "
                                 f"paired at a converged late stop with pixel fidelity ({MIN_IMAGES} needed)")))
    else:
        state = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "is inconclusive"}[late_res]
        texts.append((late_res, (f"late part (abstract images) {state}: at the late stops trained - untrained pixel "
                                 f"fidelity is {fmt(v_p, ci_p, True)} ({'not above 0' if pixel == HOLDS else 'above 0' if pixel == FAILS else 'CI straddles 0'}) "
                                 f"and {word} {fmt(v_k, ci_k, True)} ({'kept or gained' if kept == HOLDS else 'lost' if kept == FAILS else 'CI straddles the margin'}, "
                                 f"margin -{ABSTRACT_MARGIN:g})")))
    verdict = combine_parts([early["verdict"], late_res])
    shown = [t for res, t in texts if verdict == HOLDS or res == verdict] or [t for _, t in texts]
    if texts[0][1] not in shown:  # the early part's value is the verdict's headline number: say what it is
        shown.append(texts[0][1])
    for d in per_stop:
        d.pop("_v"), d.pop("_ci")
    evidence = {"early": early, "late": late, "stops": per_stop, "paired_images": len({img for img, _ in paired})}
    return make_verdict("4", early["value"], early["ci"], verdict, "; ".join(shown), len(counted), out, model_name,
                        f"{trained} vs {untrained}", evidence)
