"""Optimisation presets as data: the paper's plain steps and a default that converges everywhere.

A preset fixes how the decoder runs (start, loss, step, prior, length); override any field
with `preset.replace(iters=100)` and it is validated again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from core.errors import UserError


@dataclass(frozen=True)
class Preset:
    name: str
    iters: int
    optimizer: str  # "sgd": a_{n+1} = a_n - lr * grad (the paper); "adam": Adam on the pixels
    lr_start: float
    lr_end: float  # the learning rate moves linearly from lr_start to lr_end over the run
    loss: str  # "l1_sum": scale * sum|y - O(a)| (the paper); "l1_relative": sum|y - O(a)| / sum|y|
    loss_scale: float
    init_mean: float  # a_0 ~ N(init_mean, init_std), per pixel and channel
    init_std: float
    blur_kernel: int  # Gaussian blur B_n after every step; kernel size (odd), 1 = no blur
    blur_sigma_start: float
    blur_sigma_end: float  # sigma moves linearly; 0 means no blur at that point
    clamp: bool  # keep the image in [0, 1] after every step

    def __post_init__(self):
        problems = []
        if not isinstance(self.iters, int) or self.iters < 1:
            problems.append(f"iters must be a positive integer (got {self.iters!r})")
        for name in ("lr_start", "lr_end", "loss_scale", "init_std", "blur_sigma_start", "blur_sigma_end"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be a finite number >= 0 (got {value!r})")
        for name in ("lr_start", "lr_end"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and math.isfinite(value) and value > 1e4:
                problems.append(f"{name} {value!r} is absurdly large (max 1e4)")
        if not isinstance(self.init_mean, (int, float)) or not math.isfinite(self.init_mean):
            problems.append(f"init_mean must be finite (got {self.init_mean!r})")
        if self.optimizer not in ("sgd", "adam"):
            problems.append(f"optimizer must be 'sgd' or 'adam' (got {self.optimizer!r})")
        if self.loss not in ("l1_sum", "l1_relative"):
            problems.append(f"loss must be 'l1_sum' or 'l1_relative' (got {self.loss!r})")
        if not isinstance(self.blur_kernel, int) or self.blur_kernel < 1 or self.blur_kernel % 2 == 0:
            problems.append(f"blur_kernel must be an odd positive integer (got {self.blur_kernel!r})")
        if problems:
            raise UserError("invalid preset: " + "; ".join(problems))

    def replace(self, **changes) -> "Preset":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise UserError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def with_lr(self, lr: float) -> "Preset":
        """`lr` as the starting learning rate; the end keeps the preset's end/start ratio."""
        ratio = self.lr_end / self.lr_start if self.lr_start else 1.0
        return self.replace(lr_start=lr, lr_end=lr * ratio)

    def to_dict(self) -> dict:
        return asdict(self)


PAPER = Preset(
    name="paper", iters=500, optimizer="sgd", lr_start=0.1, lr_end=0.025, loss="l1_sum", loss_scale=0.1,
    init_mean=0.7, init_std=1 / 20, blur_kernel=3, blur_sigma_start=2.4, blur_sigma_end=0.4, clamp=False,
)

DEFAULT = Preset(
    name="default", iters=200, optimizer="adam", lr_start=0.1, lr_end=0.01, loss="l1_relative",
    loss_scale=1.0, init_mean=0.7, init_std=1 / 20, blur_kernel=3, blur_sigma_start=1.0, blur_sigma_end=0.0,
    clamp=True,
)

PRESETS = {p.name: p for p in (DEFAULT, PAPER)}


def get_preset(name: str, **overrides) -> Preset:
    try:
        base = PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})
