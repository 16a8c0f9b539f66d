"""The settings of a run, declared once: type, default, limits and help of each (`SETTINGS`), and the
`RunSettings` they make up, which builds the run's `Preset` and `RunSpec`.

The command line's options (`core.cli.args`) and the app's URL fields and widgets (`ui.state`) are built
from this table, so every front end accepts the same values and says the same thing about a bad one.
Per-architecture defaults (a curve's CPU stops, the deep layers a study shows) are data of the
`Architecture` entries (`core.models.registry`), not of a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from core.engine.loop import MAX_SEEDS, check_seeds
from core.errors import UserError
from core.jobs.spec import RunSpec
from core.models.registry import MAX_SIZE
from core.recipe.presets import PRESETS, Preset, get_preset

MIN_SIZE = 16  # px: no model here gives more than a few pixels to invert below this
MAX_ITERS = 100_000  # a step budget beyond this is a typo, not a run
MAX_INIT_SEED = 2**31 - 1
MAX_LR = 1e4


@dataclass(frozen=True)
class Setting:
    """One setting: its name (the URL's query parameter, the `RunSettings` field), type, default and limits.

    `parse` reads the text of a URL or a command line; `check` a value from anywhere. Both raise
    ValueError with a sentence that says what is accepted.
    """

    name: str
    kind: type
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: Callable[[], Sequence[str]] | None = None
    help: str = ""

    def check(self, value: Any) -> Any:
        """`value` as this setting's type, if it is within the limits.

        Raises:
            ValueError: the wrong type, outside [lo, hi], or not one of the choices.
        """
        if value is None and self.default is None:
            return None
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ValueError(f"{self.name} must be a whole number (got {value!r})")
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} must be a number (got {value!r})")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{self.name} must be a finite number (got {value})")
        if self.kind is bool and not isinstance(value, bool):
            raise ValueError(f"{self.name} must be true or false (got {value!r})")
        if self.kind is str and not isinstance(value, str):
            raise ValueError(f"{self.name} must be text (got {value!r})")
        if self.lo is not None and self.hi is not None and not self.lo <= value <= self.hi:
            raise ValueError(f"{self.name} must be {self.range_text()} (got {value:g})")
        if self.choices is not None and value not in self.choices():
            raise ValueError(f"{self.name} must be one of {', '.join(self.choices())} (got {value!r})")
        return value

    def parse(self, raw: str) -> Any:
        """The value written as `raw` (a query parameter, a command-line option's text)."""
        raw = str(raw).strip()
        if self.kind is bool:
            low = raw.lower()
            if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(f"{self.name} must be 1 or 0 (got {raw!r})")
            return self.check(low in ("1", "true", "yes", "on"))
        if self.kind in (int, float):
            try:
                value = self.kind(raw)
            except ValueError:
                what = "a whole number" if self.kind is int else "a number"
                raise ValueError(f"{self.name} must be {what} (got {raw!r})") from None
            return self.check(value)
        return self.check(raw)

    def dump(self, value: Any) -> str:
        """The text `parse` reads back as `value` (for links)."""
        if self.kind is bool:
            return "1" if value else "0"
        if self.kind is float:
            return f"{float(value):g}"
        return str(value)

    def range_text(self) -> str:
        lo = f"{self.lo:g}" if isinstance(self.lo, float) else str(self.lo)
        hi = f"{self.hi:g}" if isinstance(self.hi, float) else str(self.hi)
        return f"{lo}–{hi}"


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("seeds", int, 2, 1, MAX_SEEDS, help="how many random starts to descend (seeds 0 … n−1)"),
    Setting("iters", int, None, 1, MAX_ITERS, help="the step budget (default: the preset's); the default preset "
                                                    "stops sooner once every seed has converged"),
    Setting("size", int, 64, MIN_SIZE, MAX_SIZE, help="square input size in px"),
    Setting("preset", str, "default", choices=lambda: list(PRESETS), help="the decoder's recipe (see `presets`)"),
    Setting("lr", float, None, 0.0, MAX_LR, help="starting learning rate (0 or none: the preset's); lr_end keeps "
                                                  "the preset's ratio"),
    Setting("init_seed", int, 0, 0, MAX_INIT_SEED, help="the seed of the untrained network's random weights"),
    Setting("device", str, "auto", help="auto, cpu, cuda, cuda:N or mps"),
    Setting("early_stop", bool, True, help="stop once every seed has converged (else run the whole budget)"),
)}


def setting(name: str) -> Setting:
    """The declared setting `name` (KeyError names the ones there are)."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"no setting {name!r}: settings are {', '.join(SETTINGS)}") from None


@dataclass(frozen=True)
class RunSettings:
    """What a person chooses for a run, checked against `SETTINGS` when made.

    Args:
        model: architecture name.
        checkpoint: "untrained", "trained", a state-dict path or "upload:<sha256>".
        layer: a depth stop or graph node (None: chosen by the caller, e.g. the curve's stops).
        size: image side, px (16–1024; the architecture may ask for more or a multiple).
        seeds: the seeds, distinct, non-negative, at most 64 (a count `n` from a front end means 0 … n−1).
        preset: a preset name.
        iters: the step budget (None: the preset's).
        lr: the starting learning rate (None or 0: the preset's).
        early_stop: the preset's convergence rule on or off.
        init_seed: the untrained initialisation's seed.
        device: "auto", "cpu", "cuda[:N]" or "mps".

    Raises:
        UserError: a value outside its setting's limits, said in one sentence.
    """

    model: str = "resnet18"
    checkpoint: str = "untrained"
    layer: str | None = None
    size: int = SETTINGS["size"].default
    seeds: tuple[int, ...] = (0, 1)
    preset: str = SETTINGS["preset"].default
    iters: int | None = None
    lr: float | None = None
    early_stop: bool = True
    init_seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        try:
            for name in ("size", "preset", "iters", "lr", "init_seed", "device", "early_stop"):
                object.__setattr__(self, name, SETTINGS[name].check(getattr(self, name)))
            SETTINGS["seeds"].check(len(self.seeds) or 0)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        object.__setattr__(self, "seeds", tuple(check_seeds(list(self.seeds))))
        if self.lr == 0:
            object.__setattr__(self, "lr", None)

    def recipe(self) -> Preset:
        """The run's preset: the named one with this budget, convergence rule and starting learning rate."""
        preset = get_preset(self.preset, iters=self.iters)
        if not self.early_stop:
            preset = preset.replace(early_stop=False)
        return preset.with_lr(self.lr) if self.lr else preset

    def spec(self, model, image: torch.Tensor, layer: str | None = None, checkpoint: str | None = None):
        """The `RunSpec` of these settings on a loaded `model` and an `image`.

        Args:
            model: the `LoadedModel` of `self.model` / `self.checkpoint` (its weights hash goes into the key).
            image: (3, N, N) in [0, 1], N = `self.size`.
            layer: the stop, if not `self.layer`.
            checkpoint: the id to record instead of the model's own (an upload's "upload:<sha256>").

        Returns:
            The RunSpec (`core.jobs.spec`).
        """
        node = layer or self.layer
        if node is None:
            raise UserError("a run needs a layer: choose a depth stop or a graph node")
        return RunSpec.of(model, node, image, self.seeds, self.recipe(), self.device, checkpoint=checkpoint)
