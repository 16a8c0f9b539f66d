"""What finding 4 claims at one stop, and whether one pair of runs (trained and untrained, one image) agrees.

The Invert page's side-by-side pair and the clarity curve show trained against untrained; a visitor should read,
beside the numbers, what the paper says at that depth and whether this pair sides with it. One image at one stop
is an example, not a test: the sentence says so and points to the Findings page, whose `finding_4` tests the
claim over images with intervals. The rule here is `finding_4`'s, applied to one pair: early stops (relative
depth <= `EARLY`) must be clearer trained; late ones (>= `LATE`) must be no closer in pixels trained while the
content is kept (clarity no lower than untrained by more than `ABSTRACT_MARGIN`). Unconverged runs say nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.studies.verdicts.claims import ABSTRACT_MARGIN, EARLY, EPS, LATE, measure_word


@dataclass(frozen=True)
class PairClaim:
    """The paper's claim at a stop, and this pair's side."""

    part: str | None  # "early", "late", or None (the middle third, or a depth not known)
    claim: str  # what the paper says there, in one clause ("" in the middle third)
    agrees: bool | None  # None: this pair cannot say (middle third, unknown depth, a run not converged)
    text: str  # one or two sentences for the page


def pair_claim(untrained: dict, trained: dict, relative_depth: float | None) -> PairClaim:
    """Finding 4 at one stop, read on one pair of runs of the same image.

    Args:
        untrained, trained: each run's "clarity" and "fidelity" (means over seeds) and "converged" (all seeds).
        relative_depth: the stop's place between the input (0) and the logits (1), or None when not known.

    Returns:
        The `PairClaim`; its `text` names the measure and says "agrees" or "disagrees" only when it can.
    """
    word = measure_word("clarity")
    if relative_depth is None:
        return PairClaim(None, "", None, "Finding 4 speaks of early and late layers; this layer's depth among the "
                                         "model's stops is not known, so it is in neither.")
    where = f"this stop ({relative_depth:.2f} of the way to the logits)"
    if relative_depth <= EARLY + EPS:
        part, claim = "early", "training makes early layers' reconstructions clearer"
    elif relative_depth >= LATE - EPS:
        part, claim = "late", ("late layers' reconstructions become abstract images: trained no closer to the image "
                               "in pixels than untrained, with the content kept")
    else:
        return PairClaim(None, "", None, f"Finding 4 speaks of early layers (the first third of the depth) and late "
                                         f"ones (the last third); {where} is in neither.")
    head = f"The paper claims (finding 4) that {claim}."
    lame = [name for name, r in (("untrained", untrained), ("trained", trained)) if not r.get("converged")]
    if lame:
        return PairClaim(part, claim, None, f"{head} This pair cannot say: the {' and '.join(lame)} run did not "
                                            "converge (m_g above m_r), so its picture is not what the layer keeps.")
    dc = float(trained["clarity"]) - float(untrained["clarity"])
    clarity = f"{word} {float(trained['clarity']):.2f} trained against {float(untrained['clarity']):.2f} untrained"
    if part == "early":
        agrees = dc > 0
        said = clarity
    elif trained.get("fidelity") is None or untrained.get("fidelity") is None:
        return PairClaim(part, claim, None, f"{head} This pair cannot say: a run has no pixel fidelity (stored "
                                            "before the measure existed); run it again.")
    else:
        df = float(trained["fidelity"]) - float(untrained["fidelity"])
        agrees = df <= 0 and dc >= -ABSTRACT_MARGIN
        said = (f"{measure_word('fidelity')} {float(trained['fidelity']):.2f} trained against "
                f"{float(untrained['fidelity']):.2f} untrained, {clarity}")
    side = "agrees" if agrees else "disagrees"
    return PairClaim(part, claim, agrees, f"{head} At {where}, this image {side}: {said}.")


def curve_claim(pairs: list[tuple[float | None, dict, dict]]) -> str | None:
    """Finding 4 read on one image's clarity curve: how many of its early and late stops side with the paper.

    Args:
        pairs: per stop that both checkpoints ran, (relative depth, untrained run, trained run), each run as for
            `pair_claim`.

    Returns:
        One or two sentences, or None when no stop is early or late.
    """
    said = [pair_claim(u, t, rd) for rd, u, t in pairs]
    parts = []
    for part, claim in (("early", "training makes early layers' reconstructions clearer"),
                        ("late", "late layers' reconstructions become abstract images (no closer in pixels, the "
                                 "content kept)")):
        mine = [c for c in said if c.part == part]
        if not mine:
            continue
        known = [c for c in mine if c.agrees is not None]
        agree = sum(bool(c.agrees) for c in known)
        side = ("agrees" if agree == len(known) else "disagrees" if agree == 0 else "is split") if known else \
            "cannot say"
        open_ = f"; {len(mine) - len(known)} not converged" if len(known) < len(mine) else ""
        parts.append(f"{claim}: this image {side} ({agree} of {len(known)} {part} stops{open_})")
    if not parts:
        return None
    return (f"The paper claims (finding 4) that {parts[0]}" + (f", and that {parts[1]}" if len(parts) > 1 else "")
            + f". Measured by {measure_word('clarity')} and, late, {measure_word('fidelity')}.")
