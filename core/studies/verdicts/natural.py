"""Finding 5: deep trained layers pull non-natural inputs toward natural-image statistics (the manifold's rows)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from core.studies.verdicts.claims import (
    EPS,
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    LATE,
    MIN_IMAGES,
    NATURAL_KINDS,
)
from core.studies.verdicts.rows import (
    band,
    count_text,
    finite,
    fmt,
    mean_ci,
    num,
    rel_depth,
    rounded,
    scope,
    split_rows,
)
from core.studies.verdicts.verdict import Verdict, make_verdict


def finding_5(rows: Iterable[dict], model_name: str | None = None) -> Verdict:
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
        model_name: keep only rows of this model (None: the rows must hold at most one).

    Returns:
        The Verdict (checkpoint "trained vs untrained"); evidence: the difference per input and per layer.
    """
    rows, model_name = scope(rows, model_name, None)
    out = Counter()
    keep = []
    for r in rows:
        if str(r.get("input_kind") or "").lower() in NATURAL_KINDS:
            out["natural input"] += 1
        elif r.get("checkpoint") not in ("untrained", "trained"):
            out["other checkpoint"] += 1
        elif finite(rel_depth(r)) and rel_depth(r) < LATE - EPS:
            out["not a deep layer"] += 1
        else:
            keep.append(r)
    used, bad = split_rows(keep, "naturalness")
    out.update(bad)
    cells: dict = {}
    for r in used:
        key = (str(r.get("input") or r.get("input_kind")), str(r.get("layer")))
        cells.setdefault(r["checkpoint"], {}).setdefault(key, []).append(num(r["naturalness"]))
    u = {k: float(np.mean(v)) for k, v in cells.get("untrained", {}).items()}
    t = {k: float(np.mean(v)) for k, v in cells.get("trained", {}).items()}
    paired = set(u) & set(t)
    counted = [r for r in used if (str(r.get("input") or r.get("input_kind")), str(r.get("layer"))) in paired]
    out["no converged partner at the other checkpoint"] += len(used) - len(counted)
    per_input: dict = {}
    for inp, lay in paired:
        per_input.setdefault(inp, []).append(t[(inp, lay)] - u[(inp, lay)])
    deltas = {k: float(np.mean(v)) for k, v in per_input.items()}
    value, ci = mean_ci(deltas)
    layers = sorted({lay for _, lay in paired})
    evidence = {"delta_per_input": {k: rounded(v) for k, v in sorted(deltas.items())},
                "delta_per_layer": {lay: rounded(np.mean([t[(i, lay)] - u[(i, lay)] for i, la in paired if la == lay]))
                                    for lay in layers},
                "layers_without_depth": sorted({str(r.get("layer")) for r in used if not finite(rel_depth(r))})}
    if len(deltas) < MIN_IMAGES:
        verdict = INCONCLUSIVE
        why = (f"only {count_text(len(deltas), 'input')} reconstructed by both checkpoints with both runs converged "
               f"({MIN_IMAGES} needed)" if rows else "no manifold rows")
    else:
        verdict = band(value, ci, lambda v, lo, hi: lo > 0, lambda v, lo, hi: hi <= 0)
        text = f"trained - untrained naturalness is {fmt(value, ci, True)} over {count_text(len(deltas), 'input')}"
        why = {HOLDS: f"{text}: trained deep layers return more natural-looking images (CI above 0)",
               FAILS: f"{text}: the CI lies at or below 0, training does not make them more natural",
               INCONCLUSIVE: f"{text}: the CI straddles 0"}[verdict]
    return make_verdict("5", value, ci, verdict, why, len(counted), out, model_name, "trained vs untrained", evidence)
