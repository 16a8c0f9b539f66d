"""Every finding the rows allow, per model: sorts mixed rows (sweep, manifold, lab) to their findings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.studies.verdicts.depth import finding_1, finding_2, finding_4
from core.studies.verdicts.measures import under_each
from core.studies.verdicts.natural import finding_5
from core.studies.verdicts.stops import is_vit
from core.studies.verdicts.uniqueness import finding_3, finding_6
from core.studies.verdicts.verdict import Verdict
from core.studies.verdicts.vit import finding_7


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
    Findings 1, 2, 4 and 7 are also stated under each measure (`under_each`). Manifold rows (naturalness and
    input_kind): finding 5 per model. Lab rows (width_ratio): finding 6 per model.

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
            out.append(under_each(finding_1, mrows, m, untrained))
            if not vit:
                out.append(under_each(finding_2, mrows, m, untrained))
        out += [finding_3(mrows, m, ck) for ck in cks]
        if untrained in cks and trained in cks:
            out.append(under_each(finding_4, mrows, m, untrained, trained))
        if vit:
            out += [under_each(finding_7, mrows, m, ck) for ck in cks]
    for kind, fn in ((manifold, finding_5), (lab, finding_6)):
        if not kind:
            continue
        names = sorted({r.get("model") for r in kind if r.get("model") is not None})
        if not names:
            out.append(fn(kind))
        out += [fn(kind, name) for name in names if wanted is None or name in wanted]
    return sorted(out, key=lambda v: (v.model is None, v.model or "", int(v.id), v.checkpoint or ""))
