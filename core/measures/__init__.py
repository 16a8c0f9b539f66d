"""Measures of what a reconstruction keeps of the image: pixel fidelity, structure, recognisable content.

    from core.measures import baseline, measure
    base = baseline(image, starts, "efficientnet_lite0")   # once per run: the image and the seeds' starts
    m = measure(reconstructions, base)                     # {"clarity", "fidelity", "structure", "content", ...}
"""

from core.measures.judge import get_judge, judge_for
from core.measures.panel import CLARITY, MEASURES, against_starts, baseline, measure, normalise, restore, score

__all__ = [
    "against_starts", "baseline", "CLARITY", "get_judge", "judge_for", "measure", "MEASURES", "normalise",
    "restore", "score",
]
