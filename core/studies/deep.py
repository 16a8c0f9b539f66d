"""A model's deep stops, defined once: the layers finding 5 tests and the Manifold page and command invert by
default, so the page shows what the finding reads."""

from __future__ import annotations

from core.models.encoder import depth_stops
from core.studies.curve import relative_depth
from core.studies.verdicts.claims import LATE

FIVE_LAYERS = 2  # deep stops per model: the first and the last of the body's stops in the last third
HEAD_WORDS = ("pool", "classifier", "fc", "head.", "logits")  # the head's stops are not "body" stops


def deep_stops(model, n: int = FIVE_LAYERS) -> list[str]:
    """The first and last body stops at relative depth >= 2/3 (finding 5's layers), the model's head left out.

    Args:
        model: a `LoadedModel`.
        n: how many (1: the deepest body stop only).

    Returns:
        Node names in forward order (the last stops when the model has no body stop that deep).
    """
    stops = depth_stops(model)
    deep = [s.node for i, s in enumerate(stops) if relative_depth(i, len(stops)) >= LATE - 1e-9]
    body = [s for s in deep if not any(w in s.lower() for w in HEAD_WORDS)] or deep
    if len(body) <= n:
        return body
    picks = [body[round(k * (len(body) - 1) / (n - 1))] for k in range(n)] if n > 1 else [body[-1]]
    return list(dict.fromkeys(picks))
