"""The curated architectures: twelve classifiers with hand-picked depth stops and labels, registered on import.

Builders (`torchvision_builder`, `timm_builder`) and adapters (`vit_position_embeddings`) are the
mechanism an entry refers to; the entries themselves are data.
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from core.models.registry import BASE_SIZE, HALF, Architecture, Stop, register
from core.models.weights import (
    lite0_package_weights,
    lite_package_weights,
    torchvision_weights,
)


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


# the ResNets' study defaults: the first losses of rank (conv1, maxpool) and two later stages for Jacobians
_RESNET_DEFAULTS = {"jacobian_stops": ("conv1", "maxpool", "layer2", "layer4")}

for _arch in [
    torchvision_model("resnet18", "ResNet-18", 16, stops_of=_resnet_stops, **_RESNET_DEFAULTS,
                      cpu_stops=("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")),
    torchvision_model("resnet50", "ResNet-50", 16, stops_of=_resnet_stops, **_RESNET_DEFAULTS),
    torchvision_model("resnet152", "ResNet-152", 16, stops_of=_resnet_stops, **_RESNET_DEFAULTS),
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
                 feature_extraction="timm", stops_of=_efficientnet_stops,
                 cpu_stops=("conv_stem", "blocks.1.1", "blocks.3.0", "blocks.5.0", "conv_head")),
    # Lite1/Lite2: stages of 1, 3, 3, 4, 4, 5, 1 blocks; the stops sit where Lite0's do (end of stage 2,
    # first blocks of stages 4 and 6). Their bundled weights were trained at 240 / 260 px, mean/std 0.5.
    Architecture("efficientnet_lite1", "timm", "EfficientNet-Lite1", 16, mean=HALF, std=HALF,
                 build=timm_builder("efficientnet_lite1"), weights=lite_package_weights(1),
                 feature_extraction="timm", stops_of=_efficientnet_stops,
                 cpu_stops=("conv_stem", "blocks.1.2", "blocks.3.0", "blocks.5.0", "conv_head")),
    Architecture("efficientnet_lite2", "timm", "EfficientNet-Lite2", 16, mean=HALF, std=HALF,
                 build=timm_builder("efficientnet_lite2"), weights=lite_package_weights(2),
                 feature_extraction="timm", stops_of=_efficientnet_stops,
                 cpu_stops=("conv_stem", "blocks.1.2", "blocks.3.0", "blocks.5.0", "conv_head")),
]:
    register(_arch)


del _arch
