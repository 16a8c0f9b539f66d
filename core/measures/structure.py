"""Structure regardless of colour, brightness and contrast: do the edges sit where the image's edges sit?

A reconstruction from a trained deep layer often shows the object in wrong colours and a busy texture;
SSIM, dominated by local luminance and contrast, scores that below a blur. This measure looks only at
where luminance changes: the Pearson correlation between the two images' Sobel gradient-magnitude maps
(scikit-image), on luminance, at full and at half resolution (so a one-pixel shift costs little). A
uniform brightness shift leaves gradients unchanged, a contrast change scales them (the correlation
does not see a scale), a colour change keeps an edge an edge; noise, phase scrambling and shuffled
patches move or drown the edges and the correlation falls towards 0.
"""

from __future__ import annotations

import numpy as np
import torch

LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as skimage.color.rgb2gray's neighbours use


def luminance(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, H, W) in [0, 1] -> (H, W) float64 luminance."""
    a = img.detach().double().cpu().clamp(0, 1).numpy()
    return a[0] if a.shape[0] == 1 else np.tensordot(LUMA, a[:3], axes=1)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def edge_correlation(recon: torch.Tensor, original: torch.Tensor) -> float:
    """Mean over two scales of the correlation of the luminance gradient magnitudes, in [-1, 1] (1: the same
    edges, up to brightness, contrast and colour; about 0: unrelated)."""
    from skimage.filters import sobel  # loaded when a run is scored, not before its first step
    from skimage.transform import downscale_local_mean

    a, b = luminance(recon), luminance(original)
    scores = [_corr(sobel(a), sobel(b))]
    if min(a.shape) >= 16:
        scores.append(_corr(sobel(downscale_local_mean(a, (2, 2))), sobel(downscale_local_mean(b, (2, 2)))))
    return float(np.mean(scores))
