"""Findings 1, 2, 4 and 7 under every measure: the headline verdict reads clarity, the others say where it holds.

A finding on the clarity curve asks what a layer keeps, and the measures answer differently at depth (pixel
fidelity punishes the abstract, false-coloured pictures of trained deep layers; recognisable content does not).
So each such finding runs its stated test once per measure, unchanged, and its verdict says under which
measures it holds; the headline number and verdict stay clarity's.
"""

from __future__ import annotations

from collections.abc import Callable

from core.measures import CLARITY, MEASURES
from core.studies.verdicts.claims import FAILS, HOLDS, INCONCLUSIVE, measure_word
from core.studies.verdicts.verdict import Verdict

# clarity first, then every other measure of the panel (clarity's own measure is clarity)
STATED = ("clarity", *(m for m in MEASURES if m != CLARITY))


def under_each(finding: Callable[..., Verdict], *args, **kwargs) -> Verdict:
    """Run `finding` under every measure (`STATED`); clarity's Verdict, with `evidence["by_measure"]` holding each
    measure's value, CI, verdict and why, and its `why` ending in where it holds.

    Args:
        finding: finding_1, finding_2, finding_4 or finding_7 (each takes `measure=`).
        args, kwargs: its arguments.

    Returns:
        The Verdict under clarity, restated per measure.
    """
    runs = {m: finding(*args, measure=m, **kwargs) for m in STATED}
    head = runs["clarity"]
    head.evidence["by_measure"] = {m: {"value": v.value, "ci": list(v.ci) if v.ci else None, "verdict": v.verdict,
                                       "why": v.why, "n": v.n} for m, v in runs.items()}
    head.why = f"{head.why}. {where_it_holds({m: v.verdict for m, v in runs.items()})}"
    return head


def where_it_holds(verdicts: dict[str, str]) -> str:
    """"Under each measure: holds under clarity (recognisable content) and structure; does not hold under pixel
    fidelity." from {measure: verdict}."""
    parts = []
    for state in (HOLDS, FAILS, INCONCLUSIVE):
        names = [measure_word(m) for m, v in verdicts.items() if v == state]
        if names:
            parts.append(f"{state} under {' and '.join(names) if len(names) < 3 else ', '.join(names[:-1]) + ' and ' + names[-1]}")
    return "Under each measure: " + "; ".join(parts) + "."
