"""The distances of docs/method.md (m_g, m_i, m_r) and the pixel scores (SSIM, PSNR).

What a reconstruction keeps, on the 0 (the run's start) to 1 (the image) scale, is `core.measures`'
panel; SSIM here is its pixel fidelity. The raw pixel distance `m_i` stays available as `input_l2`; it
ranks a blurred silhouette below coloured noise, which the eye does not (measured in BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
import torch

REFERENCE_NOISE_STD = 1 / 25  # a' = a + N(0, 1/25): the barely visible shift of docs/method.md
REFERENCE_NOISE_SEED = 2022


def l2_per_item(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """‖a_i - b_i‖₂ for every item of a batch (b may broadcast)."""
    return (a - b).flatten(1).norm(dim=1)


def perturbed(image: torch.Tensor, seed: int = REFERENCE_NOISE_SEED) -> torch.Tensor:
    """a' = a + N(0, 1/25) from a fixed CPU generator, so m_r is the same on every device."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(image.shape, generator=g, dtype=torch.float32) * REFERENCE_NOISE_STD
    return image + noise.to(image.device, image.dtype)


def pairwise(x: torch.Tensor) -> list[list[float]]:
    """Matrix of L2 distances between the items of a batch (each flattened)."""
    flat = x.detach().double().flatten(1).cpu()
    return torch.cdist(flat, flat).tolist()


def mean_pairwise(x: torch.Tensor) -> float | None:
    """Mean L2 distance over all pairs of batch items; None for a single item (undefined)."""
    if x.shape[0] < 2:
        return None
    return float(torch.pdist(x.flatten(1).double()).mean())


def _hwc(img: torch.Tensor) -> np.ndarray:
    return img.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


def ssim(recon: torch.Tensor, original: torch.Tensor) -> float:
    """SSIM (scikit-image) of two (3, H, W) images in [0, 1]."""
    from skimage.metrics import structural_similarity  # scikit-image and SciPy load when a run is scored, not before its first step

    a, b = _hwc(recon), _hwc(original)
    side = min(a.shape[:2])
    win = min(7, side if side % 2 else side - 1)
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=-1, win_size=max(win, 3)))


def psnr(recon: torch.Tensor, original: torch.Tensor) -> float:
    """PSNR in dB (scikit-image); capped at 100 dB for identical images."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _hwc(recon), _hwc(original)
    if np.array_equal(a, b):
        return 100.0
    return float(min(peak_signal_noise_ratio(b, a, data_range=1.0), 100.0))
