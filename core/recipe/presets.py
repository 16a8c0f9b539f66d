"""Recipes ("presets") as data: how the decoder runs, built from registered components.

A preset fixes the start, the optimiser and its schedule, the objective terms, the image
parameterisation, the per-step transforms, whether the input is normalised the way the model
was trained, and when to stop. It is a frozen dataclass that validates itself, round-trips
through JSON (`to_dict` / `Preset(**d)`) and is part of the run cache's key. Override any field
with `preset.replace(iters=100)`; it is validated again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.errors import UserError
from core.recipe.components import build, spec
from core.recipe.objectives import check_objective


@dataclass(frozen=True)
class Preset:
    name: str
    iters: int  # the budget; a run may stop sooner (early_stop)
    optimizer: str  # "sgd": a_{n+1} = a_n - lr * grad (the paper); "adam": Adam on the parameters
    lr_start: float
    lr_end: float  # the learning rate moves linearly from lr_start to lr_end over the schedule (the paper's rule)
    normalize: bool  # feed the model its training normalisation (ImageNet mean/std...) or raw [0, 1] pixels
    objective: tuple = ()  # objective terms (core.recipe.objectives), summed with their weights
    param: Any = "pixels"  # image parameterisation (core.recipe.params)
    transforms: tuple = ()  # per-step transforms (core.recipe.transforms), in order
    init_mean: float = 0.7  # a_0 ~ N(init_mean, init_std), per pixel and channel
    init_std: float = 1 / 20
    schedule_steps: int = 0  # length of the lr and blur schedules (then held at their end values); 0 or more
    # than the budget = the budget
    early_stop: bool = True  # stop once every seed has m_g <= m_r and its SSIM to the image has settled
    stop_window: int = 20  # steps between two checks of the convergence rule
    stop_tol: float = 0.005  # "settled": SSIM changed by at most this over one window
    note: str = field(default="", compare=False)

    def __post_init__(self):
        problems = []
        if not isinstance(self.iters, int) or isinstance(self.iters, bool) or self.iters < 1:
            problems.append(f"iters must be a positive integer (got {self.iters!r})")
        for name in ("lr_start", "lr_end", "init_std", "stop_tol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                problems.append(f"{name} must be a finite number >= 0 (got {value!r})")
            elif name.startswith("lr") and value > 1e4:
                problems.append(f"{name} {value!r} is absurdly large (max 1e4)")
        if isinstance(self.init_mean, bool) or not isinstance(self.init_mean, (int, float)) or not math.isfinite(self.init_mean):
            problems.append(f"init_mean must be finite (got {self.init_mean!r})")
        if self.optimizer not in ("sgd", "adam"):
            problems.append(f"optimizer must be 'sgd' or 'adam' (got {self.optimizer!r})")
        for name in ("normalize", "early_stop"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false (got {getattr(self, name)!r})")
        if not isinstance(self.schedule_steps, int) or isinstance(self.schedule_steps, bool) or self.schedule_steps < 0:
            problems.append(f"schedule_steps must be an integer >= 0 (got {self.schedule_steps!r})")
        if not isinstance(self.stop_window, int) or isinstance(self.stop_window, bool) or self.stop_window < 1:
            problems.append(f"stop_window must be a positive integer (got {self.stop_window!r})")
        if problems:
            raise UserError("invalid preset: " + "; ".join(problems))
        # components: built from their specs (dicts from JSON) into validated dataclasses
        if isinstance(self.objective, (dict, str)) or not isinstance(self.objective, (list, tuple)):
            raise UserError("invalid preset: objective must be a list of terms")
        if isinstance(self.transforms, (dict, str)) or not isinstance(self.transforms, (list, tuple)):
            raise UserError("invalid preset: transforms must be a list")
        object.__setattr__(self, "objective", check_objective(self.objective))
        object.__setattr__(self, "param", build("param", self.param))
        object.__setattr__(self, "transforms", tuple(build("transform", t) for t in self.transforms))
        pixel_ops = [t.name for t in self.transforms if t.on_pixels]
        if pixel_ops and not getattr(self.param, "has_pixels", False):
            raise UserError(f"invalid preset: {', '.join(pixel_ops)} act on pixels; with the {self.param.name!r} "
                            "parameterisation use the objective's priors instead")

    def replace(self, **changes) -> "Preset":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise UserError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    @property
    def horizon(self) -> int:
        """Steps over which the schedules run: `schedule_steps` (never beyond the budget), or the budget when 0.
        A budget shorter than the schedule compresses it, so the blur has faded by the run's last step."""
        return min(self.schedule_steps, self.iters) if self.schedule_steps else self.iters

    def with_lr(self, lr: float) -> "Preset":
        """`lr` as the starting learning rate; the end keeps the preset's end/start ratio."""
        ratio = self.lr_end / self.lr_start if self.lr_start else 1.0
        return self.replace(lr_start=lr, lr_end=lr * ratio)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["objective"] = [spec(t) for t in self.objective]
        d["param"] = spec(self.param)
        d["transforms"] = [spec(t) for t in self.transforms]
        return d

    def describe(self) -> str:
        """One line: optimiser, objective, parameterisation, transforms."""
        terms = " + ".join(f"{t.weight:g}·{t.name}" for t in self.objective)
        tr = ", ".join(t.name for t in self.transforms) or "none"
        norm = "normalised input" if self.normalize else "raw [0, 1] input"
        return (f"{self.optimizer} lr {self.lr_start:g}→{self.lr_end:g}, {terms}, {self.param.name}, "
                f"transforms: {tr}, {norm}, budget {self.iters}" + (", early stop" if self.early_stop else ""))


PAPER = Preset(
    name="paper", iters=500, optimizer="sgd", lr_start=0.1, lr_end=0.1, normalize=False,
    objective=({"name": "l1", "weight": 0.15},), param="pixels",
    transforms=({"name": "blur", "kernel": 3, "sigma_start": 2.4, "sigma_end": 0.4},),
    early_stop=False,
    note="the paper's public script exactly: raw pixels, 0.15 x summed L1, constant step 0.1, 3x3 blur 2.4->0.4, "
         "500 steps",
)

MV = Preset(
    name="mv", iters=400, optimizer="adam", lr_start=0.05, lr_end=0.005, normalize=False,
    objective=({"name": "l2", "relative": True, "squared": True}, {"name": "tv", "weight": 0.5, "beta": 2.0},
               {"name": "alpha_norm", "weight": 1e-3, "alpha": 6.0}),
    param="pixels", transforms=({"name": "clamp"},),
    note="Mahendran & Vedaldi (2015): relative squared L2 + total variation + alpha-norm (raw pixels, like every "
         "recipe here: ImageNet normalisation cut ResNet-18 layer2 SSIM from 0.30 to 0.09 in our measurements)",
)

NATURAL = Preset(
    name="natural", iters=400, optimizer="adam", lr_start=0.05, lr_end=0.005, normalize=False,
    objective=({"name": "l1", "relative": True},), param={"name": "fourier", "decay": 1.0, "decorrelate": True},
    transforms=({"name": "jitter", "pixels": 2},),
    note="Lucid-style: Fourier 1/f parameterisation with colour decorrelation, jitter",
)

DEFAULT = Preset(
    name="default", iters=400, schedule_steps=200, optimizer="adam", lr_start=0.2, lr_end=0.01, normalize=False,
    objective=({"name": "l1", "relative": True},), param="pixels",
    transforms=({"name": "blur", "kernel": 3, "sigma_start": 2.4, "sigma_end": 0.0}, {"name": "clamp"}),
    note="chosen by `python -m benchmarks quality`: Adam on raw pixels, scale-free L1, the paper's blur fading "
         "to none over 200 steps, clamp, early stop",
)

PRESETS = {p.name: p for p in (DEFAULT, PAPER, MV, NATURAL)}

# The invertibility lab's recipe (core/studies/lab.py): the default one on a grey image (one value per pixel), without
# its blur, with a 2000-step budget (the convergence rule may end it sooner). Without a prior, what a network leaves
# undetermined stays undetermined: the blur fills a narrow network's null space with smooth content (a 0.5x linear
# MLP on a 16 px image: clarity 0.85 with the blur, 0.15 without), which would hide finding 6. `core.studies.lab.lab_preset`
# puts the blur back on request. Not in PRESETS: it only suits the lab's grey-input networks.
LAB = DEFAULT.replace(
    name="lab", param="grey", iters=2000, transforms=({"name": "clamp"},),
    note="the invertibility lab: the default recipe (Adam, scale-free L1, clamp, early stop) on one grey value per "
         "pixel, no blur prior, budget 2000 steps",
)


def get_preset(name: str, **overrides) -> Preset:
    try:
        base = PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}") from None
    return base.replace(**{k: v for k, v in overrides.items() if v is not None})
