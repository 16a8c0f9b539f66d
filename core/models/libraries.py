"""Every torchvision and timm classifier by name: `torchvision:NAME` and `timm:NAME` become registry entries.

The ten curated entries (`core.models.zoo`) carry hand-picked stops and labels; any other classifier of the two
libraries is made into an `Architecture` on first use, from what the library knows about it:

* `build(size)`: `torchvision.models.get_model(NAME, weights=None)` or `timm.create_model(NAME)`;
* depth stops: derived from the module and its traced graph (`core.models.autostops.derive_stops`);
* the input size it takes: from the model and its config (`autostops.input_size_constraint`: a fixed-size ViT,
  MaxViT's partitions);
* trained weights through the library's own mechanism and cache: torchvision's `Weights` enum (DEFAULT) in
  `torch.hub`'s cache, timm's pretrained config through the Hugging Face hub cache; their normalisation and
  class names come from those configs (`core.models.weights`).

Before anything is built for real, the network is made on PyTorch's meta device (no memory) to count its
parameters: a model over `max_params()` (or over a quarter of this machine's free memory) is refused with a
message, so picking `timm:vit_giant_patch14_224` cannot take a server down.
"""

from __future__ import annotations

import difflib
import os
import threading
from functools import lru_cache

import torch
import torch.nn as nn

from core.errors import UserError
from core.models.registry import IMAGENET_MEAN, IMAGENET_STD, RESOLVERS, Architecture

LIBRARIES = ("torchvision", "timm")
MIN_SIZE = 16  # px: the smallest input offered for a model that says it takes any size
DEFAULT_MAX_PARAMS = 350_000_000  # ViT-L/16 (304 M) fits; ViT-H (632 M) and the giants are refused
_LOCK = threading.Lock()
_RESOLVED: dict[str, Architecture] = {}
_NAME_LOCKS: dict[str, threading.Lock] = {}


def split_name(name: str) -> tuple[str, str] | None:
    """("timm", "resnet26d") for "timm:resnet26d"; None for a name without a library prefix."""
    lib, sep, rest = str(name).partition(":")
    return (lib, rest) if sep and lib in LIBRARIES else None


@lru_cache(maxsize=None)
def names(library: str) -> tuple[str, ...]:
    """Every classifier name the library can build (sorted): torchvision's `list_models(module=torchvision.models)`
    (its classification builders), timm's `list_models()`."""
    if library == "torchvision":
        import torchvision

        return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))
    if library == "timm":
        import timm

        return tuple(sorted(timm.list_models()))
    raise UserError(f"unknown model library {library!r}: use one of {', '.join(LIBRARIES)}")


def all_names() -> list[str]:
    """Every prefixed name this machine can build: "torchvision:…" then "timm:…"."""
    return [f"{lib}:{n}" for lib in LIBRARIES for n in names(lib)]


def max_params() -> int:
    """The largest model (in parameters) a library name may build: `$INVERSION_MAX_PARAMS`, else 350 M."""
    raw = os.environ.get("INVERSION_MAX_PARAMS")
    try:
        return int(float(raw)) if raw else DEFAULT_MAX_PARAMS
    except ValueError:
        raise UserError(f"INVERSION_MAX_PARAMS={raw!r} is not a number of parameters") from None


def _free_bytes() -> int | None:
    """The memory this machine has available now (Linux's MemAvailable), or None where it cannot tell."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _builder(library: str, name: str):
    def build(size: int) -> nn.Module:
        if library == "torchvision":
            from torchvision.models import get_model

            return get_model(name, weights=None)
        import timm

        return timm.create_model(name, pretrained=False)

    return build


def count_params(library: str, name: str) -> int:
    """Parameters of the model without building it for real: torchvision's weights metadata (`num_params`) where
    it has it, else the model made on the meta device (nothing allocated). A builder that cannot run on the meta
    device (an initialiser that reads values) is built for real once, on the CPU."""
    if library == "torchvision":
        try:
            from torchvision.models import get_model_weights

            n = get_model_weights(name).DEFAULT.meta.get("num_params")
            if n:
                return int(n)
        except (ValueError, KeyError, AttributeError):
            pass
    from core.models.checkpoints import BUILD_LOCK

    try:
        with BUILD_LOCK, torch.random.fork_rng(devices=[]), torch.device("meta"):
            module = _builder(library, name)(224)
    except Exception:  # noqa: BLE001 - e.g. "Cannot copy out of meta tensor": count it on the CPU
        try:
            with BUILD_LOCK, torch.random.fork_rng(devices=[]):
                module = _builder(library, name)(224)
        except Exception as exc:  # noqa: BLE001 - the library's own error, in one line
            raise UserError(f"{library}:{name} could not be built ({_short(exc)})") from None
    return sum(p.numel() for p in module.parameters())


def check_size(library: str, name: str) -> int:
    """Refuse a model too large for this machine before it is built; returns its parameter count."""
    n = count_params(library, name)
    cap = max_params()
    if n > cap:
        raise UserError(f"{library}:{name} has {n / 1e6:.0f} M parameters, more than this server allows "
                        f"({cap / 1e6:.0f} M, INVERSION_MAX_PARAMS): pick a smaller variant")
    free = _free_bytes()
    if free is not None and n * 4 * 4 > free:  # weights, a trained copy, the graph cut and activations
        raise UserError(f"{library}:{name} has {n / 1e6:.0f} M parameters ({n * 4 / 2**30:.1f} GB of weights): "
                        f"too large for the {free / 2**30:.1f} GB this machine has free; pick a smaller variant")
    return n


def _short(exc: Exception, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolver(name: str) -> Architecture | None:
    """`core.models.registry.RESOLVERS`' hook: the entry of a library name, None for any other name."""
    return resolve(name) if split_name(name) is not None else None


def resolve(name: str) -> Architecture:
    """The registry entry of a "torchvision:NAME" or "timm:NAME" (made once per process, then kept).

    Raises:
        UserError: an unknown library or name, a model too large for this machine, or one whose graph cannot be
            traced (the message names the model and why).
    """
    parsed = split_name(name)
    if parsed is None:
        raise UserError(f"{name!r} is not a library model name: use torchvision:NAME or timm:NAME")
    library, short = parsed
    with _LOCK:
        if name in _RESOLVED:
            return _RESOLVED[name]
        lock = _NAME_LOCKS.setdefault(name, threading.Lock())
    with lock:  # two sessions picking the same model: one checks and builds it, the other waits for the entry
        with _LOCK:
            if name in _RESOLVED:
                return _RESOLVED[name]
        return _resolve(name, library, short)


def _resolve(name: str, library: str, short: str) -> Architecture:
    if short not in names(library):
        near = [n for n in names(library) if short.lower() in n.lower()][:8] or \
            difflib.get_close_matches(short, names(library), n=8, cutoff=0.6)
        hint = f"; similar: {', '.join(near)}" if near else "; `python -m core models --all` lists them"
        raise UserError(f"unknown {library} model {short!r}{hint}")
    n_params = check_size(library, short)
    arch = _entry(library, short, n_params)
    with _LOCK:
        return _RESOLVED.setdefault(name, arch)


def _entry(library: str, short: str, n_params: int) -> Architecture:
    from core.models.autostops import input_size_constraint
    from core.models.checkpoints import BUILD_LOCK
    from core.models.hub import timm_hub_weights, torchvision_default_weights
    from core.models.registry import HALF

    build = _builder(library, short)
    with BUILD_LOCK, torch.random.fork_rng(devices=[]):
        probe = build(224)  # once, to read its input constraint and config (random weights, freed after)
    size = input_size_constraint(probe, library)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    weights = None
    if library == "torchvision":
        # torchvision feeds its GoogLeNet / Inception v3 weights through `transform_input`, which it turns on only
        # when it loads them itself: built without it here, those weights expect a 0.5 / 0.5 normalisation
        half = getattr(probe, "transform_input", None) is not None
        weights = torchvision_default_weights(short, *((HALF, HALF) if half else ()))
    else:
        cfg = getattr(probe, "pretrained_cfg", None) or {}
        mean, std = tuple(cfg.get("mean") or mean), tuple(cfg.get("std") or std)
        if cfg.get("hf_hub_id"):
            weights = timm_hub_weights(short)
    del probe
    fixed = size.get("fixed")
    note = (f"fixed input of {fixed} px (the model's own)" if fixed else
            f"any multiple of {size.get('multiple', 1)} px" if size.get("multiple", 1) > 1 else "")
    multiple = max(1, int(size.get("multiple") or 1))
    low = max(MIN_SIZE, int(size.get("min_size") or 1))  # "any size" still means a few pixels after the stem
    low += -low % multiple
    return Architecture(
        f"{library}:{short}", library, f"{short} ({library}, {n_params / 1e6:.1f} M)",
        int(fixed or low), mean=mean, std=std, size_multiple=multiple,
        size_note=note, fixed_size=fixed, build=build,
        weights=weights, feature_extraction=library, params=n_params)


RESOLVERS.append(resolver)
