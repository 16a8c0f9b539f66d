"""Trained weights of any library model through the library's own mechanism and cache.

torchvision: the model's `Weights` enum (its DEFAULT entry) says the URL, size, normalisation (`transforms()`)
and class names; the file goes to `torch.hub`'s cache, where torchvision itself looks. timm: the model's
pretrained config says its Hugging Face hub repository, normalisation and label set; the file goes to the hub's
cache (`huggingface_hub`), where `timm.create_model(pretrained=True)` looks. Finding a file never touches the
network; `download` is the one call that may, and without a network its message says what to do.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.errors import UserError
from core.models.registry import Architecture
from core.models.weights import WeightSource

HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm's hub repositories hold, in timm's order


def torchvision_default_weights(name: str, mean: tuple | None = None, std: tuple | None = None
                                ) -> Callable[[Architecture], WeightSource]:
    """A `weights` factory for torchvision model `name`: its Weights enum's DEFAULT, in torch.hub's cache; `mean`,
    `std` override its transforms' normalisation (weights torchvision feeds through `transform_input`)."""

    def make(arch: Architecture) -> WeightSource:
        import torch.hub
        from torchvision.models import get_model_weights

        try:
            w = get_model_weights(name).DEFAULT
        except (ValueError, KeyError, AttributeError):
            raise UserError(f"{arch.name} has no trained weights in torchvision") from None
        url = w.url
        tf = w.transforms()
        return WeightSource(
            arch=arch.name, name=str(w), describe=f"torchvision {w}",
            path=lambda: Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url),
            url=url, size_mb=w.meta.get("_file_size"), bundled=False,
            mean=tuple(mean or getattr(tf, "mean", arch.mean)), std=tuple(std or getattr(tf, "std", arch.std)),
            categories=lambda: list(w.meta.get("categories") or []),
        )

    return make


@dataclass(frozen=True)
class HubWeightSource(WeightSource):
    """A timm model's pretrained weights in the Hugging Face hub cache (`repo`: its `hf_hub_id`)."""

    repo: str = ""
    model_name: str = ""  # timm's name, whose module's `checkpoint_filter_fn` maps other layouts

    def download(self, progress: Callable[[int, int], None] | None = None, timeout: float = 30.0) -> Path:
        if self.cached():
            return self.path()
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

        last = None
        for filename in HUB_FILES:
            try:
                return Path(hf_hub_download(self.repo, filename, etag_timeout=timeout,
                                            tqdm_class=_progress_class(progress)))
            except EntryNotFoundError as exc:
                if isinstance(exc, LocalEntryNotFoundError):  # the hub could not be reached (or is switched off)
                    raise UserError(self._offline(exc)) from None
                last = exc
                continue
            except Exception as exc:  # noqa: BLE001 - no network, a proxy, a missing repo: one line that says what
                raise UserError(f"could not download {self.arch}'s weights from the Hugging Face hub ({self.repo}: "
                                f"{_short(exc)}); without a network, run `python -m core download {self.arch}` on a "
                                f"machine with one and copy its hub cache ({_hub_dir()})") from None
        raise UserError(f"{self.repo} holds none of {', '.join(HUB_FILES)} ({_short(last)})")

    def _offline(self, exc) -> str:
        return (f"could not download {self.arch}'s weights from the Hugging Face hub ({self.repo}: the hub cannot be "
                f"reached{' (HF_HUB_OFFLINE is set)' if os.environ.get('HF_HUB_OFFLINE') else ''}); without a network, "
                f"run `python -m core download {self.arch}` on a machine with one and copy its hub cache "
                f"({_hub_dir()})")

    def prepare(self, state: dict, module) -> dict:
        """The state dict in the model's own layout: timm's hub files mostly are; where not, the family's
        `checkpoint_filter_fn` (what `timm.create_model(pretrained=True)` applies) maps it."""
        own = module.state_dict()
        if set(state) == set(own):
            return state
        fn = getattr(sys.modules.get(type(module).__module__), "checkpoint_filter_fn", None)
        if fn is None:
            return state
        try:
            return fn(state, module)
        except Exception:  # noqa: BLE001 - the strict load that follows names what does not fit
            return state


def _hub_dir() -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return str(HF_HUB_CACHE)


def _short(exc, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _progress_class(progress):
    """A tqdm class for `hf_hub_download` that reports (done, total) bytes to `progress` (None: silent)."""
    from tqdm.auto import tqdm

    class Report(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # the caller draws its own bar (the CLI's, the app's)
            super().__init__(*args, **kwargs)
            self._done = 0

        def update(self, n=1):
            self._done += n or 0
            if progress is not None:
                progress(self._done, int(self.total or 0))
            return super().update(n)

    return Report


def _cached_file(repo: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    for filename in HUB_FILES:
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def timm_hub_weights(name: str) -> Callable[[Architecture], WeightSource]:
    """A `weights` factory for timm model `name`: its default pretrained config's hub file, normalisation and
    label set (`timm.data.ImageNetInfo`)."""

    def make(arch: Architecture) -> WeightSource:
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(name)
        repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
        if not repo:
            raise UserError(f"{arch.name} has no trained weights on the Hugging Face hub")
        expected = Path(_hub_dir()) / f"models--{repo.replace('/', '--')}" / HUB_FILES[0]

        def path() -> Path:
            return _cached_file(repo) or expected

        def categories() -> list[str]:
            from timm.data import ImageNetInfo, infer_imagenet_subset

            subset = infer_imagenet_subset(cfg)
            if subset:
                return list(ImageNetInfo(subset).label_descriptions())
            return [f"class {i}" for i in range(int(getattr(cfg, "num_classes", 0) or 0))]

        return HubWeightSource(
            arch=arch.name, name=f"timm/{repo.split('/', 1)[-1]}", describe=f"timm pretrained {repo} (Hugging Face hub)",
            path=path, url=f"https://huggingface.co/{repo}", size_mb=None, bundled=False,
            mean=tuple(cfg.mean or arch.mean), std=tuple(cfg.std or arch.std), categories=categories,
            repo=repo, model_name=name)

    return make
