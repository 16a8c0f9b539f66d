"""The model registry: each `Architecture` entry says how to build a model, where a user may cut it,
how to feed it and where its trained weights come from.

Nothing here branches on a model's name. What differs between models is data on its entry, in the spirit
of timm's `_registry` (`@register_model` with pretrained configs) and torchvision's `Weights` enums:

* `build(size)` makes the network with random weights, at `build_size(image_size)` px;
* `adapt_state(state, image_size)` carries a 224 px state dict to a model built for another input size
  (ViT position embeddings); None for models that take any size as built;
* `weights` makes the `core.models.weights.WeightSource`: where the trained file lives, how to download
  it, the input normalisation it expects and its class names;
* `feature_extraction` names the graph-cutting flavour `core.models.encoder` uses;
* the per-architecture defaults of the studies (`cpu_stops`, `jacobian_stops`; the deep stops are derived: `core.studies.deep`) are data
  here too.

The curated entries live in `core.models.zoo`; adding a model is one `register(Architecture(...))` call
(or `@register_model(...)` on a builder).

A depth stop is a graph node name that torchvision's feature extraction accepts (a module name returns that
module's last output), with a human label. Stops are listed in forward order; any other node of the traced
graph is accepted by name too (see `core.models.encoder`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable

import torch.nn as nn

from core.errors import UserError

if TYPE_CHECKING:  # hints only: the weight sources import this module's constants
    from core.models.weights import WeightSource


IMAGENET_MEAN = (0.485, 0.456, 0.406)


IMAGENET_STD = (0.229, 0.224, 0.225)


HALF = (0.5, 0.5, 0.5)


MAX_SIZE = 1024  # px; larger inputs only cost memory and time, the findings show at 64-299 px


BASE_SIZE = 224  # px; every model is first built (and seeded, and given its weights) at this size


FEATURE_EXTRACTION = ("torchvision", "timm")


@dataclass(frozen=True)
class Stop:
    node: str
    label: str


@dataclass(frozen=True)
class Architecture:
    """One registry entry. Everything model-specific that the rest of the code needs is here."""

    name: str
    source: str  # who publishes the model, for reports: "torchvision", "timm", ...
    title: str
    min_size: int
    mean: tuple = IMAGENET_MEAN  # the input normalisation of the model family (untrained and file weights)
    std: tuple = IMAGENET_STD
    size_multiple: int = 1
    size_note: str = ""
    stops_of: Callable[[nn.Module], list[Stop]] | None = None  # None: derived (core.models.autostops)
    build: Callable[[int], nn.Module] | None = None  # random-weights network for an input size; required
    adapt_state: Callable[[dict, int], dict] | None = None  # set for models built per input size (ViT)
    weights: Callable[[Architecture], WeightSource] | None = None  # makes `trained`; None: no trained weights
    feature_extraction: str = "torchvision"  # which graph cutter `core.models.encoder` uses: "torchvision" or "timm"
    # Study defaults, data like the rest of the entry (empty: the study spreads its own over the stops)
    cpu_stops: tuple[str, ...] = ()  # a clarity curve's stops on a CPU: few enough to finish in minutes
    jacobian_stops: tuple[str, ...] = ()  # the lab's first Jacobians: where rank is lost first, and later
    fixed_size: int | None = None  # the one input size the model takes (a timm ViT built for 224 px), if any
    per_size: bool = False  # built for each input size by `build(size)` itself (a --model-file function taking it)
    params: int | None = None  # its parameter count, where known before building (library names count it)

    def __post_init__(self):
        if self.build is None:
            raise TypeError(f"architecture {self.name!r} needs a build(size) callable")
        if self.feature_extraction not in FEATURE_EXTRACTION:
            raise TypeError(f"architecture {self.name!r}: feature_extraction must be one of {FEATURE_EXTRACTION}")

    def build_size(self, image_size: int) -> int:
        """The input size the network is built for: its fixed size if it has one, `image_size` for models whose
        state depends on it (ViTs, with `adapt_state`) or that are built per size, `BASE_SIZE` (224) for every
        model that takes any size as built."""
        if self.fixed_size:
            return self.fixed_size
        return image_size if self.adapt_state is not None or self.per_size else BASE_SIZE

    @cached_property
    def trained(self) -> WeightSource:
        """The architecture's trained weights (resolved on first use, so importing this module
        stays light). Raises UserError for an architecture that has none."""
        if self.weights is None:
            raise UserError(f"{self.name} has no trained weights: use 'untrained' or a state-dict file")
        return self.weights(self)

    @property
    def has_trained(self) -> bool:
        return self.weights is not None

    def check_size(self, size: int) -> None:
        if not isinstance(size, int) or isinstance(size, bool):
            raise UserError(f"size must be an integer number of pixels (got {size!r})")
        if size > MAX_SIZE:
            raise UserError(f"--size {size} is too large: use at most {MAX_SIZE} px")
        if self.fixed_size and size != self.fixed_size:
            raise UserError(f"--size {size} does not fit {self.name}: it takes {self.fixed_size} px inputs only")
        if size < self.min_size:
            raise UserError(f"--size {size} is too small for {self.name}: use at least {self.min_size} px")
        if size % self.size_multiple:
            lo = max(self.min_size, size - size % self.size_multiple)
            raise UserError(
                f"--size {size} does not fit {self.name}: use a multiple of {self.size_multiple} (e.g. {lo})"
            )


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture, replace: bool = False) -> Architecture:
    """Add `arch` to `ARCHITECTURES` (in listing order) and return it."""
    if arch.name in ARCHITECTURES and not replace:
        raise ValueError(f"architecture {arch.name!r} is already registered")
    ARCHITECTURES[arch.name] = arch
    return arch


def unregister(name: str) -> Architecture | None:
    """Remove an architecture from the registry (tests, plug-ins); returns what was removed."""
    return ARCHITECTURES.pop(name, None)


def register_model(**fields) -> Callable[[Callable[[int], nn.Module]], Callable[[int], nn.Module]]:
    """Decorator, like timm's `@register_model`: the function `name(size) -> nn.Module` becomes the
    `build` of an architecture of the same name; `fields` are the other `Architecture` fields.

        @register_model(source="mine", title="Tiny net", min_size=8)   # stops_of=...: hand-picked, else derived
        def tinynet(size: int) -> nn.Module: ...
    """

    def wrap(fn: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
        defaults = {"source": "yours", "title": fn.__name__, "min_size": 16}  # stops: derived when not given
        register(Architecture(**{"name": fn.__name__, **defaults, **fields, "build": fn}))
        return fn

    return wrap


# Functions that make an entry for a name the registry does not hold (`core.models.libraries` adds one for
# "torchvision:NAME" and "timm:NAME"): each returns an Architecture, or None for a name that is not its kind.
RESOLVERS: list[Callable[[str], Architecture | None]] = []


def get_architecture(name) -> Architecture:
    """The entry of `name`: a registered one (curated, an operator's, a user's module), else one a resolver makes
    ("timm:resnet26d"); an `Architecture` is returned as it is.

    Raises:
        UserError: no entry and no resolver knows the name (or the resolver refuses it: too large, untraceable).
    """
    if isinstance(name, Architecture):
        return name
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    for resolve in RESOLVERS:
        arch = resolve(name)
        if arch is not None:
            return arch
    raise UserError(f"unknown model {name!r}: choose one of {', '.join(ARCHITECTURES)}, or torchvision:NAME / "
                    "timm:NAME (`python -m core models --all` lists them)")
