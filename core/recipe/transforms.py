"""Per-step transforms: changes to the images around each optimiser step.

Two places a transform can act:
- `forward(image, step)`: on the image fed to the encoder this step only (jitter); the image the
  parameterisation holds, and every metric, are untouched;
- `post(pixels, step, total)`: in place on the pixels after the step (the paper's blur `B_n`,
  the [0, 1] clamp). These need the `pixels` parameterisation.
Schedules run over the run's budget (`total` steps) and hold their end value after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.priors import blur, lerp
from core.recipe.components import Component, register


class Transform(Component):
    on_pixels = False  # True: acts in place on the pixels after each step

    def forward(self, image: torch.Tensor, step: int) -> torch.Tensor:
        return image

    def post(self, pixels: torch.Tensor, step: int, total: int) -> None:
        pass


@register("transform", "blur")
@dataclass(frozen=True)
class Blur(Transform):
    """Gaussian blur after every step, sigma moving linearly from `sigma_start` to `sigma_end` (the paper's B_n)."""

    kernel: int = 3
    sigma_start: float = 2.4
    sigma_end: float = 0.4
    on_pixels = True

    def check(self):
        out = [] if self.kernel >= 1 and self.kernel % 2 else [f"kernel must be an odd positive integer (got {self.kernel!r})"]
        if self.sigma_start < 0 or self.sigma_end < 0:
            out.append("sigma_start and sigma_end must be >= 0")
        return out

    def sigma(self, step: int, total: int) -> float:
        return lerp(self.sigma_start, self.sigma_end, step, total)

    def post(self, pixels, step, total):
        pixels.copy_(blur(pixels, self.kernel, self.sigma(step, total)))


@register("transform", "clamp")
@dataclass(frozen=True)
class Clamp(Transform):
    """Keep the pixels in [low, high] after every step."""

    low: float = 0.0
    high: float = 1.0
    on_pixels = True

    def check(self):
        return [] if self.low < self.high else [f"low must be below high (got {self.low!r}, {self.high!r})"]

    def post(self, pixels, step, total):
        pixels.clamp_(self.low, self.high)


JITTER_SEED = 1913


def jitter_offsets(step: int, pixels: int) -> tuple[int, int]:
    """The (dy, dx) roll of `step`: a function of the step alone, so a seed gets the same shifts
    alone or in any batch, and a continued run the same as one longer run."""
    g = torch.Generator().manual_seed(JITTER_SEED * 1_000_003 + step)
    dy, dx = torch.randint(-pixels, pixels + 1, (2,), generator=g).tolist()
    return dy, dx


@register("transform", "jitter")
@dataclass(frozen=True)
class Jitter(Transform):
    """Roll the encoder's input by up to `pixels` in each direction every step (Lucid's jitter)."""

    pixels: int = 2

    def check(self):
        return [] if 0 <= self.pixels <= 64 else [f"pixels must be 0-64 (got {self.pixels!r})"]

    def forward(self, image, step):
        if not self.pixels:
            return image
        dy, dx = jitter_offsets(step, self.pixels)
        return torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
