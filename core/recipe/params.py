"""Image parameterisations: what the optimiser actually moves, and how it becomes an image.

Every parameterisation starts from the seed's start image `a_0` exactly (so all recipes begin
at the same picture, and clarity's zero point means the same thing for all of them) and
produces images of shape (K, 3, H, W). Metrics are always taken on the image it produces.

- `pixels`: the pixels themselves (the paper).
- `fourier`: Lucid's 1/f-scaled spectrum with colour decorrelation and a sigmoid, which favours
  natural-image statistics.
- `coarse_to_fine`: a Laplacian-style pyramid whose finer levels start moving later, so the
  low-resolution picture settles first.
- `grey`: one grey value per pixel (the invertibility lab's MLPs read a grey image), shown as
  three identical channels.

A parameterisation whose state exposes `pixels` (in [0, 1] image space) declares `has_pixels`, so
the in-place pixel transforms (blur, clamp) may act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from core.recipe.components import Component, register


class ParamState:
    """The optimised tensors of one run (seed dimension first) and the image they make."""

    tensors: list[torch.Tensor]
    pixels: torch.Tensor | None = None  # set when in-place pixel transforms (blur, clamp) apply

    def image(self) -> torch.Tensor:
        raise NotImplementedError

    def before_step(self, step: int) -> None:
        """Called after backward, before the optimiser step (e.g. to hold some tensors still)."""


class Param(Component):
    has_pixels: ClassVar[bool] = False  # True: its state's `pixels` are the image (blur and clamp act on them)

    def create(self, start: torch.Tensor) -> ParamState:
        raise NotImplementedError


# --------------------------------------------------------------------------- pixels


class _PixelState(ParamState):
    def __init__(self, start: torch.Tensor):
        self.pixels = start.detach().clone().requires_grad_(True)
        self.tensors = [self.pixels]

    def image(self):
        return self.pixels


@register("param", "pixels")
@dataclass(frozen=True)
class Pixels(Param):
    """Optimise the pixels directly."""

    has_pixels = True

    def create(self, start):
        return _PixelState(start)


# --------------------------------------------------------------------------- grey


class _GreyState(ParamState):
    """One free grey value per pixel, started from the channel mean of a_0.

    `pixels` holds it as three tied copies, (K, 3, H, W), because the shared blur is a depthwise
    conv over three channels (`core.priors.blur`): every channel gets the same gradient, the same
    Adam update, the same blur and clamp, so the copies stay identical and the image is their
    mean, broadcast to three identical channels."""

    def __init__(self, start: torch.Tensor):
        grey = start.detach().mean(dim=1, keepdim=True)
        self.pixels = grey.expand(-1, 3, -1, -1).clone().requires_grad_(True)
        self.tensors = [self.pixels]

    def image(self):
        return self.pixels.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)


@register("param", "grey")
@dataclass(frozen=True)
class Grey(Param):
    """Optimise a grey image: one value per pixel, the same in all three channels (the invertibility lab)."""

    has_pixels = True

    def create(self, start):
        return _GreyState(start)


# --------------------------------------------------------------------------- fourier (Lucid)

# Lucid's colour correlation (square root of the ImageNet colour covariance), columns normalised
_COLOR = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=torch.float64)
_COLOR = _COLOR / _COLOR.norm(dim=0).max()
_MAGIC = 4.0  # Lucid divides the inverse FFT by 4 so that the sigmoid starts in its linear part


def _freq_scale(h: int, w: int, decay: float, device) -> torch.Tensor:
    fy = torch.fft.fftfreq(h, device=device)[:, None]
    fx = torch.fft.rfftfreq(w, device=device)[None, :]
    f = (fx * fx + fy * fy).sqrt()
    return (1.0 / f.clamp_min(1.0 / max(h, w)) ** decay) * (h * w) ** 0.5


class _FourierState(ParamState):
    def __init__(self, start: torch.Tensor, decay: float, decorrelate: bool):
        k, c, h, w = start.shape
        dev = start.device
        self.h, self.w = h, w
        self.scale = _freq_scale(h, w, decay, dev).float()
        color = _COLOR if decorrelate else torch.eye(3, dtype=torch.float64)
        self.color = color.float().to(dev)
        inv = torch.linalg.inv(color).float().to(dev)
        logits = torch.logit(start.detach().float().clamp(1e-4, 1 - 1e-4))  # undo the sigmoid
        lin = torch.einsum("cd,kdhw->kchw", inv, logits) * _MAGIC  # undo the colour mix
        spectrum = torch.fft.rfft2(lin) / self.scale
        self.spectrum = torch.view_as_real(spectrum).contiguous().requires_grad_(True)
        self.tensors = [self.spectrum]

    def image(self):
        spec = torch.view_as_complex(self.spectrum) * self.scale
        lin = torch.fft.irfft2(spec, s=(self.h, self.w)) / _MAGIC
        return torch.sigmoid(torch.einsum("cd,kdhw->kchw", self.color, lin))


@register("param", "fourier")
@dataclass(frozen=True)
class Fourier(Param):
    """Lucid's spectrum parameterisation: 1/f^decay scaling, colour decorrelation, sigmoid to [0, 1]."""

    decay: float = 1.0
    decorrelate: bool = True

    def check(self):
        return [] if 0 <= self.decay <= 3 else [f"decay must be in [0, 3] (got {self.decay!r})"]

    def create(self, start):
        return _FourierState(start, self.decay, self.decorrelate)


# --------------------------------------------------------------------------- coarse to fine


class _PyramidState(ParamState):
    def __init__(self, start: torch.Tensor, levels: int, level_steps: int):
        k, c, h, w = start.shape
        sizes = []
        for i in range(levels):
            s = (max(4, h >> i), max(4, w >> i))
            if s not in sizes:
                sizes.append(s)
        sizes.reverse()  # coarsest first
        self.h, self.w, self.level_steps = h, w, level_steps
        self.levels = [torch.zeros(k, c, *s, device=start.device, dtype=start.dtype) for s in sizes[:-1]]
        self.levels.append(start.detach().clone())  # the finest level holds a_0, so the image starts at a_0
        for t in self.levels:
            t.requires_grad_(True)
        self.tensors = list(self.levels)

    def image(self):
        out = self.levels[-1]
        for t in self.levels[:-1]:
            out = out + F.interpolate(t, size=(self.h, self.w), mode="bilinear", align_corners=False)
        return out

    def before_step(self, step):
        for i, t in enumerate(self.levels):
            if step < i * self.level_steps and t.grad is not None:
                t.grad.zero_()


@register("param", "coarse_to_fine")
@dataclass(frozen=True)
class CoarseToFine(Param):
    """A pyramid of `levels` images (each half the size of the next); level i moves from step i*level_steps."""

    levels: int = 4
    level_steps: int = 40

    def check(self):
        out = [] if 1 <= self.levels <= 8 else [f"levels must be 1-8 (got {self.levels!r})"]
        return out + ([] if self.level_steps >= 0 else [f"level_steps must be >= 0 (got {self.level_steps!r})"])

    def create(self, start):
        return _PyramidState(start, self.levels, self.level_steps)
