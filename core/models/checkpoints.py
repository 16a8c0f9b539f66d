"""Build a frozen model with untrained, trained or user-supplied weights.

Checkpoint files are untrusted: they are read with `torch.load(weights_only=True)` or
safetensors, never unpickled into arbitrary objects. Trained torchvision weights come only
from torchvision's own cache (`torch.hub.get_dir()/checkpoints`); finding them never touches
the network, and downloading them is a separate, explicit call.

Nothing here depends on a model's name: how to build it, how to carry weights to another input
size and which trained weights it has (with the normalisation they expect) are data on its
`core.models.registry.Architecture` entry.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from core.errors import UserError, WeightsNotCached
from core.models.registry import BASE_SIZE, Architecture, get_architecture

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")
# Seeding and building use the process's one CPU generator: two sessions building at once would draw from each
# other's seeds (an "init seed 0" network that is not seed 0's, cached under its key). One build at a time.
BUILD_LOCK = threading.RLock()


@dataclass
class LoadedModel:
    """A frozen, eval-mode classifier plus what is needed to feed it and read its output."""

    arch: Architecture
    module: nn.Module
    checkpoint: str  # "untrained", "trained" or the file's path
    mean: tuple
    std: tuple
    image_size: int
    init_seed: int
    source: str  # where the weights came from, for reports
    categories: list[str] | None  # ImageNet class names when the weights are trained ones

    @property
    def name(self) -> str:
        return self.arch.name


def short_checkpoint(ck: str) -> str:
    """A checkpoint as reports name it: "untrained", "trained", or a file's name without its folder."""
    return ck if ck in ("untrained", "trained") else Path(str(ck)).name


# --------------------------------------------------------------------------- building


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# --------------------------------------------------------------------------- trained weights
# What the trained weights are, where they live and how to fetch them is data on the architecture
# (`Architecture.trained`, a `core.models.weights.WeightSource`); these functions keep the
# name-based API that the CLI and the app call.


def trained_status(arch_name: str) -> dict:
    """Whether trained weights are on disk, where, and how big the download is. No network. A model without
    trained weights says so (`"exists": False`)."""
    arch = get_architecture(arch_name)
    if not arch.has_trained:
        return {"cached": False, "exists": False, "path": None, "url": None, "size_mb": None, "bundled": False,
                "weights": None}
    src = arch.trained
    path = src.path()
    return {"cached": path.exists(), "exists": True, "path": str(path), "url": src.url, "size_mb": src.size_mb,
            "bundled": src.bundled, "weights": src.describe}


def download_trained(arch_name: str, progress: Callable[[int, int], None] | None = None,
                     timeout: float = 30.0) -> Path:
    """Fetch the trained weights into their cache, checking the hash in the file name.

    `progress(done_bytes, total_bytes)` is called as data arrives. Written to a temporary
    file and renamed, so an interrupted download never leaves a half file in the cache.
    Bundled weights are only located.
    """
    return get_architecture(arch_name).trained.download(progress, timeout)


def _map_by_order(source: dict, target: dict) -> dict | None:
    """Rename `source` onto `target`'s keys when they agree one to one in order and shape."""
    if len(source) != len(target):
        return None
    if any(tuple(a.shape) != tuple(b.shape) for a, b in zip(source.values(), target.values())):
        return None
    return dict(zip(target.keys(), source.values()))


# --------------------------------------------------------------------------- state-dict files


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read tensors from a .pth/.pt/.bin (weights_only) or .safetensors file, never running code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found: give 'untrained', 'trained' or a path to a state dict")
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise UserError(f"checkpoint {path.name!r}: expected a {', '.join(CHECKPOINT_SUFFIXES)} file")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise UserError(f"checkpoint {path.name!r} is not a valid safetensors file ({_short(exc)})") from None
    else:
        import pickle

        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # torch wraps the unpickler's reason in advice about weights_only=False; keep the reason only
            reason = str(exc).split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
            if "GLOBAL" in reason or "allowlisted" in reason:  # a well-formed pickle naming code or classes
                raise UserError(
                    f"checkpoint {path.name!r} refused: it holds objects other than tensors, which could run code "
                    f"when loaded ({_short(reason)}); save a plain state_dict or use safetensors"
                ) from None
            raise UserError(f"checkpoint {path.name!r} is unreadable: not a readable PyTorch file, damaged or "
                            f"not a checkpoint ({_short(reason)})") from None
        except (EOFError, ValueError, AttributeError, KeyError, IndexError):
            # the unpickler's own words ("pop from empty list", "index out of range") mean nothing to a user
            raise UserError(f"checkpoint {path.name!r} is unreadable: not a readable PyTorch file, damaged or "
                            "truncated (it does not hold a saved state dict)") from None
        except (RuntimeError, OSError) as exc:
            why = "its zip archive is incomplete" if "PytorchStreamReader" in str(exc) else _short(exc)
            raise UserError(f"checkpoint {path.name!r} is unreadable: not a readable PyTorch file, damaged or "
                            f"truncated ({why})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"checkpoint {path.name!r} is not a state dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _short(exc: Exception | str, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _apply_state(module: nn.Module, state: dict, arch: Architecture, what: str) -> None:
    """Load strictly, with an error that names missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    if set(state) != set(own):
        mapped = _map_by_order(state, own)
        if mapped is not None:
            state = mapped
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{title}: {', '.join(keys[:5])}{more}")
        raise UserError(f"{what} does not fit {arch.name}: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------- weight-file identity

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, memoised per (resolved path, size, mtime): cheap to call again."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        if key in _HASH_CACHE:
            return _HASH_CACHE[key]
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    digest = sha.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = digest
    return digest


def checkpoint_hash(model: LoadedModel) -> str | None:
    """SHA-256 hex of the file `model`'s weights came from: the trained weights file for
    "trained", the state-dict file for a path, None for "untrained" (its weights are fixed by
    the architecture and `init_seed`). Memoised per (path, size, mtime)."""
    if model.checkpoint == "untrained":
        return None
    path = model.arch.trained.path() if model.checkpoint == "trained" else Path(model.checkpoint)
    return file_sha256(path)


# --------------------------------------------------------------------------- the one entry point


def load_model(arch_name: str | nn.Module | Architecture, checkpoint: str = "untrained", image_size: int = 224,
               init_seed: int = 0) -> LoadedModel:
    """Build a frozen, eval-mode model of a registered architecture with the chosen weights.

    Untrained weights are the architecture's own initialisation under `init_seed`, so the
    same seed always gives the same network. Every model is first built at 224 px; models
    built per input size (ViTs: `Architecture.build_size`) are then rebuilt at `image_size`
    and given the 224 px weights through `Architecture.adapt_state` (position embeddings are
    interpolated). Every other model accepts any size from its minimum as built.

    Args:
        arch_name: a key of `core.models.registry.ARCHITECTURES`, e.g. "resnet18"; any torchvision or timm
            classifier as "torchvision:NAME" / "timm:NAME" (`core.models.libraries`); or your own `nn.Module`
            (`core.models.custom`: its weights used as given for "untrained", its stops derived).
        checkpoint: "untrained" (random initialisation), "trained" (the architecture's
            `WeightSource`, which must already be on disk: see `download_trained`), or the path
            of a state-dict file (.pth/.pt/.bin read with `weights_only=True`, or .safetensors;
            a `state_dict`/`model` wrapper and `module.` prefixes are accepted).
        image_size: the square input size in px the model will be fed; checked against the
            architecture's minimum, multiple and `MAX_SIZE`.
        init_seed: seed of the random initialisation (also the starting point that a
            checkpoint overwrites); the global RNG is left untouched.

    Returns:
        A `LoadedModel`: the frozen module with the input normalisation its weights expect
        (`mean`, `std`: the trained source's for "trained", e.g. 0.5/0.5 for Inception-family
        trained weights, otherwise the architecture's), a `source` text for reports, and the
        ImageNet class names (`categories`) for trained weights, None otherwise.

    Raises:
        UserError: unknown architecture, unsupported size, an unreadable or unsafe checkpoint
            file, or one whose keys or shapes do not fit the architecture.
        WeightsNotCached: "trained" was asked for and the weights are not on disk.

    Example:
        >>> from core.models.checkpoints import load_model
        >>> model = load_model("resnet18", "untrained", image_size=64, init_seed=0)
        >>> model.module(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 1000])
        >>> model.source, model.categories
        ('random initialisation, init seed 0', None)
        >>> vit = load_model("vit_b_16", "untrained", image_size=64)  # built for a 4x4 patch grid
    """
    if isinstance(arch_name, nn.Module):
        from core.models.custom import module_architecture

        arch_name = module_architecture(arch_name)
    arch = get_architecture(arch_name)
    arch.check_size(image_size)
    grid = arch.build_size(image_size)
    first = BASE_SIZE if arch.adapt_state is not None else grid  # trained weights are made for 224 px
    with BUILD_LOCK, torch.random.fork_rng(devices=[]):  # the global RNG: one seeded build at a time
        torch.manual_seed(init_seed)
        base = arch.build(first)
    mean, std, categories = arch.mean, arch.std, None
    if checkpoint == "untrained":
        state, source = None, ("the weights it was given" if arch.name.startswith("module:") else
                               f"random initialisation, init seed {init_seed}")
    elif checkpoint == "trained":
        weights = arch.trained
        path = weights.path()
        if not path.exists():
            raise WeightsNotCached(arch.name, str(path), weights.url, weights.size_mb)
        state = read_state_dict(path)
        state = weights.prepare(state, base)  # a hub file in another layout (core.models.hub)
        source = weights.describe
        categories = weights.categories()
        mean, std = weights.mean, weights.std  # the input these weights were trained on
    else:
        state, source = read_state_dict(checkpoint), f"file {checkpoint}"
    if state is not None:
        _apply_state(base, state, arch, f"checkpoint {Path(checkpoint).name!r}" if checkpoint != "trained"
                     else f"{arch.name} trained weights")
    module = base
    if grid != first:
        with BUILD_LOCK, torch.random.fork_rng(devices=[]):  # its init is overwritten; keep the global RNG untouched
            module = arch.build(grid)
        module.load_state_dict(arch.adapt_state(base.state_dict(), grid))
    return LoadedModel(arch, _freeze(module), checkpoint, mean, std, image_size, init_seed, source, categories)
