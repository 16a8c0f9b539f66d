"""Finding 7, the author's ViT follow-up: clarity nearly flat over the encoder blocks, the loss at the patch
embedding."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.studies.verdicts.claims import (
    FAILS,
    FLAT_CI,
    FLAT_SPREAD,
    HOLDS,
    INCONCLUSIVE,
    MIN_IMAGES,
    PE_SHARE,
    measure_word,
)
from core.studies.verdicts.rows import (
    band,
    by_image_layer,
    combine_parts,
    count_text,
    fmt,
    mean_ci,
    one_checkpoint,
    rounded,
    scope,
    split_rows,
    stops_of,
)
from core.studies.verdicts.stops import is_block, is_patch_embedding
from core.studies.verdicts.verdict import Verdict, make_verdict


def finding_7(rows: Iterable[dict], model_name: str | None = None, checkpoint: str | None = None,
              measure: str = "clarity") -> Verdict:
    """Finding 7 (ViT): clarity nearly flat across the encoder blocks, the loss at the patch embedding.

    Why this test: two parts. Flat: per image converged at every encoder-block stop, the spread (max - min) of
    clarity over them; "nearly flat" = mean <= 0.1 with the CI's upper end <= 0.15, and it fails once the whole
    CI is above 0.1. Where: the patch embedding must carry at least half of the loss seen at the last block,
    d = (1 - c_pe) - 0.5 (1 - c_last) >= 0 per image (a difference, so a last block with no loss at all does not
    divide by zero), holds if the CI's lower end >= 0, fails if its upper end < 0.

    Args:
        rows: sweep rows of one ViT-like model (`is_vit`); only `checkpoint`'s rows are read.
        model_name: the model's name (None: the rows must hold one).
        checkpoint: the checkpoint (None: the rows must hold one).
        measure: the row's number the test reads ("clarity", "fidelity", "structure").

    Returns:
        The Verdict (value: the mean spread); evidence: "flat" and "drop" (value, ci, verdict, n_images) and the
        mean clarity per block.
    """
    rows, model_name = scope(rows, model_name, None)
    rows, checkpoint = one_checkpoint(rows, checkpoint)
    stops = stops_of(rows)
    pes = [s for s in stops if is_patch_embedding(s)]
    pe = pes[0] if pes else None
    blocks = [s for s in stops if pe is not None and s["depth"] > pe["depth"] and is_block(s)]
    word = measure_word(measure)
    used, out = split_rows(rows, measure)
    evidence: dict = {"patch_embedding": pe and pe["label"], "blocks": [b["label"] for b in blocks]}
    if pe is None or len(blocks) < 2:
        out["not the patch embedding or a block"] += len(used)
        why = "the rows have no patch-embedding stop" if pe is None else \
            f"only {len(blocks)} encoder-block stop after the patch embedding (2 needed)"
        return make_verdict("7", None, None, INCONCLUSIVE, why, 0, out, model_name, checkpoint, evidence)
    cells = by_image_layer(used, measure)
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
    v_flat, ci_flat = mean_ci(spread)
    v_drop, ci_drop = mean_ci(drop)
    flat = band(v_flat, ci_flat, lambda v, lo, hi: v <= FLAT_SPREAD and hi <= FLAT_CI,
                 lambda v, lo, hi: lo > FLAT_SPREAD) if len(spread) >= MIN_IMAGES else INCONCLUSIVE
    where = band(v_drop, ci_drop, lambda v, lo, hi: lo >= 0, lambda v, lo, hi: hi < 0) \
        if len(drop) >= MIN_IMAGES else INCONCLUSIVE
    evidence.update(
        flat={"value": rounded(v_flat), "ci": ci_flat, "verdict": flat, "n_images": len(spread)},
        drop={"value": rounded(v_drop), "ci": ci_drop, "verdict": where, "n_images": len(drop),
              "clarity_patch_embedding": rounded(np.mean([cells[(i, pe["layer"])] for i in drop])) if drop else None,
              "clarity_last_block": rounded(np.mean([cells[(i, names[-1])] for i in drop])) if drop else None},
        block_clarity={b["label"]: rounded(np.mean(v)) if (v := [cells[(i, b["layer"])] for i in images
                                                            if (i, b["layer"]) in cells]) else None
                       for b in blocks})
    verdict = combine_parts([flat, where])
    texts = []
    for name, res, n_img, text in (
            ("flat part", flat, len(spread),
             f"the spread of {word} over {len(blocks)} blocks is {fmt(v_flat, ci_flat)}"),
            ("patch-embedding part", where, len(drop),
             (f"(1 - {word} at {pe['label']}) - {PE_SHARE:g} x (1 - {word} at {blocks[-1]['label']}) is "
              f"{fmt(v_drop, ci_drop, True)}"))):
        if verdict == HOLDS or res == verdict:
            if n_img < MIN_IMAGES:
                texts.append(f"{name} is inconclusive: only {count_text(n_img)} converged at every stop it needs")
            else:
                state = {HOLDS: "holds", FAILS: "does not hold", INCONCLUSIVE: "is inconclusive"}[res]
                texts.append(f"{name} {state}: {text}")
    return make_verdict("7", v_flat, ci_flat, verdict, "; ".join(texts), len(counted), out, model_name, checkpoint, evidence)
