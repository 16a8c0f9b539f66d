"""Objective terms: what the decoder minimises, per seed, as a weighted sum.

Embedding terms compare the layer's output for the current images with the target embedding
`y`; image priors look at the images alone. Every term returns one value per seed (shape (K,)),
so summing over seeds keeps each seed's gradient its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from core.errors import UserError
from core.recipe.components import Component, build, register


@dataclass
class Target:
    """The embedding to match, with the norms that relative terms divide by (computed once)."""

    y: torch.Tensor  # (1, ...) the layer's output for the image
    l1: torch.Tensor  # sum |y|
    l2: torch.Tensor  # ||y||_2

    @classmethod
    def of(cls, y: torch.Tensor) -> "Target":
        y = y.detach().float()
        return cls(y, y.abs().sum().clamp_min(1e-12), y.norm().clamp_min(1e-12))


class Term(Component):
    weight: float

    def __call__(self, out: torch.Tensor, target: Target, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check(self) -> list[str]:
        return [] if self.weight >= 0 else [f"weight must be >= 0 (got {self.weight!r})"]


@register("objective", "l1")
@dataclass(frozen=True)
class L1(Term):
    """sum |O(x) - y| (the paper's loss), divided by sum |y| when `relative` (scale-free across layers)."""

    weight: float = 1.0
    relative: bool = False

    def __call__(self, out, target, image):
        d = (out - target.y).abs().flatten(1).sum(1)
        return d / target.l1 if self.relative else d


@register("objective", "l2")
@dataclass(frozen=True)
class L2(Term):
    """||O(x) - y||_2 (squared when `squared`), over ||y||_2 (squared) when `relative` (Mahendran & Vedaldi)."""

    weight: float = 1.0
    relative: bool = True
    squared: bool = True

    def __call__(self, out, target, image):
        d = (out - target.y).flatten(1).norm(dim=1)
        if self.relative:
            d = d / target.l2
        return d * d if self.squared else d


@register("objective", "cosine")
@dataclass(frozen=True)
class Cosine(Term):
    """1 - cos(O(x), y): matches the embedding's direction, not its scale."""

    weight: float = 1.0

    def __call__(self, out, target, image):
        return 1 - torch.nn.functional.cosine_similarity(out.flatten(1), target.y.flatten(1), dim=1, eps=1e-12)


@register("objective", "tv")
@dataclass(frozen=True)
class TotalVariation(Term):
    """Mean over pixels of (dx^2 + dy^2)^(beta/2): a smoothness prior (beta = 2 is the squared gradient)."""

    weight: float = 1.0
    beta: float = 2.0

    def check(self):
        return super().check() + ([] if self.beta > 0 else [f"beta must be > 0 (got {self.beta!r})"])

    def __call__(self, out, target, image):
        dx = image[..., :-1, 1:] - image[..., :-1, :-1]
        dy = image[..., 1:, :-1] - image[..., :-1, :-1]
        g = dx * dx + dy * dy
        g = g if self.beta == 2 else (g + 1e-8) ** (self.beta / 2)
        return g.flatten(1).mean(1)


@register("objective", "alpha_norm")
@dataclass(frozen=True)
class AlphaNorm(Term):
    """Mean over pixels of |(x - 0.5) / 0.5|^alpha: with a large alpha, a soft bound on the [0, 1] range."""

    weight: float = 1.0
    alpha: float = 6.0

    def check(self):
        return super().check() + ([] if self.alpha >= 1 else [f"alpha must be >= 1 (got {self.alpha!r})"])

    def __call__(self, out, target, image):
        return ((image - 0.5).abs() * 2).pow(self.alpha).flatten(1).mean(1)


@register("objective", "pixel_l2")
@dataclass(frozen=True)
class PixelL2(Term):
    """Mean over pixels of (x - 0.5)^2: pulls unexplained pixels towards grey (weight decay)."""

    weight: float = 1.0

    def __call__(self, out, target, image):
        return ((image - 0.5) ** 2).flatten(1).mean(1)


EMBEDDING_TERMS = ("l1", "l2", "cosine")


def check_objective(terms: Sequence) -> tuple[Term, ...]:
    """Build and validate an objective: at least one embedding term (else nothing ties x to y)."""
    built = tuple(build("objective", t) for t in terms)
    if not any(t.name in EMBEDDING_TERMS and t.weight > 0 for t in built):
        raise UserError("an objective needs an embedding term with a positive weight (l1, l2 or cosine)")
    return built


def total(terms: Sequence[Term], out: torch.Tensor, target: Target, image: torch.Tensor) -> torch.Tensor:
    """The weighted sum of the terms, per seed (K,)."""
    loss = None
    for t in terms:
        if t.weight:
            v = t.weight * t(out, target, image)
            loss = v if loss is None else loss + v
    return loss
