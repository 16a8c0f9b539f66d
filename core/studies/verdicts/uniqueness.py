"""The findings about uniqueness: 3 (deep layers are non-unique, not a failed optimiser) and 6 (an MLP layer narrower
than its input is not unique; ReLU needs about twice the width)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from core.engine.run_reading import NEAR_COPY, NON_UNIQUE
from core.studies.stats import bootstrap_ci
from core.studies.verdicts.claims import (
    CONVERGED_SHARE,
    EPS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    LATE,
    MIN_IMAGES,
    N_BOOT,
    RELU_NOT,
    RELU_WIDTH,
    SEED,
    UNIQUE_CLARITY,
)
from core.studies.verdicts.rows import (
    band,
    combine_parts,
    count_text,
    depth_of,
    finite,
    fmt,
    median_ci,
    num,
    one_checkpoint,
    reason_out,
    rel_depth,
    rounded,
    scope,
    split_rows,
    stops_of,
    truth,
)
from core.studies.verdicts.verdict import Verdict, make_verdict


def finding_3(rows: Iterable[dict], model_name: str | None = None, checkpoint: str | None = None) -> Verdict:
    """Finding 3: deep reconstructions are poor because the layer is non-unique, not because the optimiser failed.

    Why this test: only converged runs (m_g <= m_r) can show non-uniqueness, so it first asks that most deep runs
    converged (otherwise the pictures are the optimiser's and the finding is untested). Then it reads
    core.engine.run_reading's uniqueness band on m_i / ||a'-a||_2 at each image's deepest converged stop of the last
    third: >= 3 is "non-unique", <= 1.5 "keeps the image". A median, since a ratio is skewed by one wild image.

    Args:
        rows: sweep rows with `input_l2_mean`, `shift_input_l2` (missing: inconclusive) and `seed_spread_input`
            (optional, reported); only `model_name`'s rows at `checkpoint` are read.
        model_name: the model's name (None: the rows must hold one).
        checkpoint: the checkpoint (None: the rows must hold one).

    Returns:
        The Verdict; evidence: the fraction of deep runs that converged, per deep stop the median ratio and the
        median seed spread / ||a'-a||_2, the ratio per image.
    """
    rows, model_name = scope(rows, model_name, None)
    rows, checkpoint = one_checkpoint(rows, checkpoint)
    out = Counter()
    deep = []
    for r in rows:
        if rel_depth(r) >= LATE - EPS:
            deep.append(r)
        else:
            out["outside the last third of depth"] += 1
    used, bad = split_rows(deep)
    out.update(bad)
    tried = [r for r in deep if reason_out(r) not in ("error", "degenerate")]
    share = len(used) / len(tried) if tried else float("nan")
    with_shift = []
    for r in used:
        mi, shift = num(r.get("input_l2_mean")), num(r.get("shift_input_l2"))
        if not finite(mi) or not finite(shift):
            out["no m_i or ||a'-a||_2"] += 1
        elif shift <= 0:
            out["||a'-a||_2 = 0"] += 1
        else:
            with_shift.append((r, mi / shift))
    deepest: dict = {}
    for r, ratio in with_shift:
        img = str(r.get("image"))
        if img not in deepest or depth_of(r) > depth_of(deepest[img][0]):
            deepest[img] = (r, ratio)
    out["not the image's deepest converged deep stop"] += len(with_shift) - len(deepest)
    ratios = {img: ratio for img, (_, ratio) in deepest.items()}
    value, ci = median_ci(ratios)
    per_stop = []
    for s in stops_of(deep):
        rs = [(r, q) for r, q in with_shift if str(r.get("layer")) == s["layer"]]
        spread = [num(r.get("seed_spread_input")) / num(r.get("shift_input_l2")) for r, _ in rs
                  if finite(num(r.get("seed_spread_input")))]
        n_rows = sum(str(r.get("layer")) == s["layer"] for r in deep)
        n_conv = sum(str(r.get("layer")) == s["layer"] for r in used)
        per_stop.append({"layer": s["layer"], "label": s["label"], "relative_depth": rounded(s["relative_depth"]),
                         "rows": n_rows, "converged": n_conv,
                         "median_ratio": rounded(np.median([q for _, q in rs])) if rs else None,
                         "median_seed_spread_ratio": rounded(np.median(spread)) if spread else None})
    evidence = {"deep_rows": len(deep), "deep_converged": len(used), "converged_fraction": rounded(share),
                "stops": per_stop, "ratio_per_image": {k: rounded(v) for k, v in sorted(ratios.items())}}
    if not deep:
        verdict, why = INCONCLUSIVE, "the rows have no stop in the last third of depth"
    elif not tried or share < CONVERGED_SHARE:
        verdict = INCONCLUSIVE
        why = (f"only {len(used)} of {len(tried)} deep runs converged (m_g <= m_r): the optimiser failed there, "
               "which is no evidence either way")
    elif len(ratios) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {count_text(len(ratios))} with a converged deep stop and ||a'-a||_2 ({MIN_IMAGES} needed)"
               if used else "no converged deep run")
    else:
        verdict = band(value, ci, lambda v, lo, hi: lo >= NON_UNIQUE, lambda v, lo, hi: hi < NEAR_COPY)
        text = (f"{len(used)} of {len(tried)} deep runs converged and the median m_i / ||a'-a||_2 is "
                f"{fmt(value, ci)} over {count_text(len(ratios))}")
        why = {HOLDS: f"{text}: the embedding is matched yet the images differ (non-unique, CI >= {NON_UNIQUE:g})",
               FAILS: f"{text}: the reconstructions are near copies (CI < {NEAR_COPY:g}), the layer keeps the image",
               INCONCLUSIVE: f"{text}: the CI is not wholly in the non-unique (>= {NON_UNIQUE:g}) or the near-copy "
                             f"(< {NEAR_COPY:g}) band"}[verdict]
    return make_verdict("3", value, ci, verdict, why, len(deepest), out, model_name, checkpoint, evidence)



def finding_6(rows: Iterable[dict], model_name: str | None = None) -> Verdict:
    """Finding 6: an MLP layer narrower than its input is never unique; ReLU needs about twice the width.

    Rows are the MLP lab's, mapped by the caller: `width_ratio` (hidden width / input width), `activation`
    ("relu", "linear", ...), `unique` (bool: the inversion recovered the input; missing: clarity >= 0.95),
    `converged`/`status` (the unconverged rule; a run that did not converge says nothing about uniqueness) and
    optional `rank_deficient` (bool: the network's Jacobian at the image has rank below the input's dimension).
    A rank-deficient row is not unique, and in the narrow groups (width < 1, ReLU < 1.5 x) it counts whether or
    not its run converged: for a piecewise-linear network (linear, ReLU) the map is linear around the image, so a
    null direction of the Jacobian changes the input without changing the embedding at all, an exact proof that
    needs no optimiser. In the wide group only converged runs count, so the exception cannot tilt the verdict.

    Why this test: below width 1 no map can be injective, so a single unique run there contradicts the claim; a
    ReLU layer zeroes about half its units, so below 1.5 x it keeps fewer than the input's dimensions and must not
    be unique either, while from 2 x on most runs should be. The lab's configurations are chosen, not sampled,
    so the parts are counts; the value's CI (over runs) is reported for scale.

    Args:
        rows: the rows above.
        model_name: keep only rows of this model (None: the rows must hold at most one).

    Returns:
        The Verdict; evidence: "narrow", "relu_narrow", "relu_wide" (runs, unique, verdict) and the unique
        fraction per (activation, width ratio).
    """
    rows, model_name = scope(rows, model_name, None)
    out = Counter()
    keep, proof_only = [], []  # converged rows; unconverged rows kept only for their rank-deficient Jacobian
    for r in rows:
        if not finite(num(r.get("width_ratio"))):
            out["no width_ratio"] += 1
            continue
        why = reason_out(r, "")
        if why is None and r.get("unique") is None and not finite(num(r.get("clarity"))) \
                and not truth(r.get("rank_deficient")):
            why = "no unique or clarity"
        if why is None:
            keep.append(r)
        elif truth(r.get("rank_deficient")) and num(r["width_ratio"]) < RELU_NOT:
            proof_only.append((r, why))
        else:
            out[why] += 1

    def unique(r) -> bool:
        if truth(r.get("rank_deficient")):
            return False
        return truth(r["unique"]) if r.get("unique") is not None else num(r.get("clarity")) >= UNIQUE_CLARITY

    def act(r) -> str:
        return str(r.get("activation") or "").strip().lower()

    # The rank proof counts only in the narrow groups, whose test is "none unique". The wide group's test is a
    # fraction: adding proven non-unique runs there while unconverged full-rank ones stay out would tilt it.
    proof_narrow = []
    for r, why in proof_only:
        if num(r["width_ratio"]) < 1 or act(r) == "relu":
            proof_narrow.append(r)
        else:
            out[why] += 1
    narrow_pool = keep + proof_narrow
    groups = {"narrow": [r for r in narrow_pool if num(r["width_ratio"]) < 1],
              "relu_narrow": [r for r in narrow_pool if act(r) == "relu" and num(r["width_ratio"]) < RELU_NOT],
              "relu_wide": [r for r in keep if act(r) == "relu" and num(r["width_ratio"]) >= RELU_WIDTH]}
    counted = [r for r in narrow_pool if any(r is g for rs in groups.values() for g in rs)]
    if len(narrow_pool) > len(counted):
        out["width outside the tested groups"] += len(narrow_pool) - len(counted)
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
                          "rank_deficient": sum(truth(r.get("rank_deficient")) for r in rs)}
    table: dict = {}
    for r in counted:
        table.setdefault((act(r), float(num(r["width_ratio"]))), []).append(unique(r))
    evidence["unique_fraction"] = [{"activation": a, "width_ratio": w, "runs": len(v), "fraction": rounded(np.mean(v))}
                                   for (a, w), v in sorted(table.items())]
    wide = groups["relu_wide"]
    value = float(np.mean([unique(r) for r in wide])) if wide else float("nan")
    ci = bootstrap_ci([float(unique(r)) for r in wide], n_boot=N_BOOT, seed=SEED) if wide else None
    verdict = combine_parts(list(results.values()))
    names = {"narrow": "runs at width ratio < 1 (any activation)", "relu_narrow": f"ReLU runs at width ratio < "
             f"{RELU_NOT:g}", "relu_wide": f"ReLU runs at width ratio >= {RELU_WIDTH:g}"}
    if verdict == INCONCLUSIVE:
        missing = [names[g] for g, res in results.items() if res == INCONCLUSIVE]
        why = "no converged " + " and no converged ".join(missing)
    else:
        bits = [f"{evidence[g]['unique']} of {evidence[g]['runs']} {names[g]} unique" for g in groups
                if verdict == HOLDS or results[g] == FAILS]
        why = ("as predicted: " if verdict == HOLDS else "against the prediction: ") + "; ".join(bits)
    return make_verdict("6", value, ci, verdict, why, len(counted), out, model_name, None, evidence)
