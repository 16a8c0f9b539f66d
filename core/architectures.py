"""The supported architectures: how to build each, where a user may cut it, how to feed it.

A depth stop is a graph node name that torchvision's feature extraction accepts (a module
name returns that module's last output), with a human label. Stops are listed in forward
order; any other node of the traced graph is accepted by name too (see `core.encoder`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
MAX_SIZE = 1024  # px; larger inputs only cost memory and time, the findings show at 64-299 px


@dataclass(frozen=True)
class Stop:
    node: str
    label: str


@dataclass(frozen=True)
class Architecture:
    name: str
    source: str  # "torchvision" or "timm"
    title: str
    min_size: int
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    size_multiple: int = 1
    size_note: str = ""
    build_kwargs: dict = field(default_factory=dict)
    stops_of: Callable[[nn.Module], list[Stop]] | None = None

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


_INCEPTION_KW = {"aux_logits": True, "init_weights": True, "transform_input": False}

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture("resnet18", "torchvision", "ResNet-18", 16, stops_of=_resnet_stops),
        Architecture("resnet50", "torchvision", "ResNet-50", 16, stops_of=_resnet_stops),
        Architecture("resnet152", "torchvision", "ResNet-152", 16, stops_of=_resnet_stops),
        Architecture("googlenet", "torchvision", "GoogLeNet (Inception v1)", 16, build_kwargs=_INCEPTION_KW,
                     stops_of=_googlenet_stops),
        Architecture("inception_v3", "torchvision", "Inception v3", 75, build_kwargs=_INCEPTION_KW,
                     stops_of=_inception_stops),
        Architecture("vgg16", "torchvision", "VGG-16", 32, stops_of=_sequential_stops),
        Architecture("alexnet", "torchvision", "AlexNet", 63, stops_of=_sequential_stops),
        Architecture("vit_b_16", "torchvision", "ViT-B/16", 32, size_multiple=16,
                     size_note="any multiple of 16: position embeddings are interpolated from the 224 px grid",
                     stops_of=_vit_stops),
        Architecture("convnext_tiny", "torchvision", "ConvNeXt-Tiny", 32, stops_of=_convnext_stops),
        Architecture("efficientnet_lite0", "timm", "EfficientNet-Lite0", 16, mean=HALF, std=HALF,
                     stops_of=_efficientnet_stops),
    ]
}


def get_architecture(name: str) -> Architecture:
    from core.errors import UserError

    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}: choose one of {', '.join(ARCHITECTURES)}") from None
