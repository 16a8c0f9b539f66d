"""When a seed counts as converged, and when a layer is degenerate (docs/method.md's `m_g <= m_r`).

Shared by the loop's convergence rule, the result's metrics and the verdict, so all three agree.
"""

from __future__ import annotations

import torch

DEGENERATE = 1e-6  # m_r below this fraction of ||y||: the layer barely moves for a near-copy (e.g. a pooled


# output at a tiny size), so m_g / m_r means nothing; such a run counts as converged when m_g <= this * ||y||
BORDERLINE = 1.25  # m_g / m_r in (1, BORDERLINE]: "borderline", neither converged nor clearly not


def converged_mask(m_g: torch.Tensor, m_r: float, y_norm: float) -> torch.Tensor:
    """Per seed: m_g <= m_r, or for a degenerate layer (m_r about 0) m_g <= DEGENERATE * ||y||."""
    if is_degenerate(m_r, y_norm):
        return m_g <= DEGENERATE * max(y_norm, 1e-12)
    return m_g <= m_r


def is_degenerate(m_r: float, y_norm: float) -> bool:
    return m_r <= DEGENERATE * max(y_norm, 1e-12)
