"""Signal health of a layer for one image: is the signal alive when it reaches the stop?

An untrained network can shrink the signal to almost nothing, or push most units onto a flat
part of their non-linearity (ReLU at 0, ReLU6 at 0 or 6), where no gradient passes. Then
inversion is hard for a reason that says nothing about what the layer could represent, and a
user must see that before reading a poor reconstruction as a finding.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from core.models.lock import MODEL_LOCK


# activation modules with flat regions: (lower flat value or None, upper flat value or None)
def _flat_bounds(m: nn.Module) -> tuple[float | None, float | None] | None:
    if isinstance(m, nn.ReLU6):
        return 0.0, 6.0
    if isinstance(m, nn.Hardtanh):
        return m.min_val, m.max_val
    if isinstance(m, nn.ReLU):
        return 0.0, None
    return None


def signal_health(encoder: nn.Module, image: torch.Tensor) -> dict:
    """Scale of the stop's output and the fraction of units stuck on a flat part of their activation.

    Args:
        encoder: a `core.models.encoder.Encoder` (its traced body's activation modules are hooked).
        image: (1, 3, H, W) on the encoder's device, in [0, 1].

    Returns:
        {"rms": RMS of the stop's output, "input_rms": RMS of the encoder's (normalised) input,
         "flat_fraction": over every flat-capable activation up to the stop, the fraction of
         outputs on a flat part, "last_flat_fraction": the same for the last such activation
         (None if there is none), "saturated_fraction": the part of flat_fraction at an upper
         bound (ReLU6 at 6), "activations": how many activation calls were counted}.
    """
    body = getattr(encoder, "body", encoder)
    counts = {"flat": 0, "upper": 0, "total": 0, "calls": 0, "last": None}
    handles = []

    def hook(m, _inp, out):
        lo, hi = _flat_bounds(m)
        o = out.detach()
        flat_lo = (o <= lo) if lo is not None else torch.zeros_like(o, dtype=torch.bool)
        flat_hi = (o >= hi) if hi is not None else torch.zeros_like(o, dtype=torch.bool)
        n, f, u = o.numel(), int((flat_lo | flat_hi).sum()), int(flat_hi.sum())
        counts["flat"] += f
        counts["upper"] += u
        counts["total"] += n
        counts["calls"] += 1
        counts["last"] = f / max(1, n)

    for m in body.modules():
        if _flat_bounds(m) is not None:
            handles.append(m.register_forward_hook(hook))
    try:
        # exclusive: the hooked modules are shared with other encoders of this model
        with torch.no_grad(), MODEL_LOCK.exclusive():
            x = encoder.prepare(image) if hasattr(encoder, "prepare") else image
            y = encoder(image)
    finally:
        for h in handles:
            h.remove()
    y = y.float()
    return {
        "rms": float(y.pow(2).mean().sqrt()),
        "input_rms": float(x.float().pow(2).mean().sqrt()),
        "flat_fraction": counts["flat"] / counts["total"] if counts["total"] else None,
        "saturated_fraction": counts["upper"] / counts["total"] if counts["total"] else None,
        "last_flat_fraction": counts["last"],
        "activations": counts["calls"],
    }
