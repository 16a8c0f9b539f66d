"""Image priors applied between steps: the Gaussian blur `B_n`, and the schedules that drive them."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_kernel(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """A normalised (size x size) Gaussian, shaped for a depthwise conv over 3 channels."""
    r = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).expand(3, 1, size, size).contiguous()


def blur(x: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Blur each channel with reflect padding (no dark border); identity when sigma or size is trivial."""
    if size <= 1 or sigma <= 0:
        return x
    pad = size // 2
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect") if min(x.shape[-2:]) > pad else x
    out = F.conv2d(xp, gaussian_kernel(size, sigma, x.device, x.dtype), groups=3)
    return out if xp is not x else F.interpolate(out, size=x.shape[-2:])


def lerp(start: float, end: float, step: int, total: int) -> float:
    """The paper's linear schedule: start*(total-step)/total + end*step/total, held at `end` after `total`."""
    if total <= 0 or step >= total:
        return end
    return start * (total - step) / total + end * step / total
