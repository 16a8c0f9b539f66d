"""Depth stops derived for any torchvision / timm classifier (`core.models.autostops`).

Untrained models only (no downloads), each built once per module and run at a small input size (the few
fixed-size ones at their size), so the file stays within a few minutes on a 2-core CPU.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import pytest
import torch
import torch.nn as nn

from core.errors import UserError
from core.models.autostops import (
    UntraceableModel,
    check_stops,
    derive_stops,
    input_size_constraint,
)
from core.models.registry import Stop

pytest.importorskip("timm")

# (library, name, build keyword arguments). ViTs whose position embeddings are built per size are built small.
ARCHITECTURES = [
    ("torchvision", "resnet18", {}),
    ("torchvision", "regnet_y_400mf", {}),
    ("torchvision", "densenet121", {}),
    ("torchvision", "mobilenet_v3_small", {}),
    ("torchvision", "efficientnet_b0", {}),
    ("torchvision", "convnext_tiny", {}),
    ("torchvision", "vit_b_16", {"image_size": 32}),
    ("torchvision", "swin_t", {}),
    ("torchvision", "maxvit_t", {}),
    ("torchvision", "shufflenet_v2_x0_5", {}),
    ("torchvision", "squeezenet1_0", {}),
    ("torchvision", "mnasnet0_5", {}),
    ("torchvision", "googlenet", {"aux_logits": False, "init_weights": False}),
    ("timm", "resnet26d", {}),
    ("timm", "regnetx_002", {}),
    ("timm", "mobilenetv3_small_050", {}),
    ("timm", "efficientnet_b0", {}),
    ("timm", "convnext_atto", {}),
    ("timm", "vit_tiny_patch16_224", {}),
    ("timm", "deit_tiny_patch16_224", {"img_size": 32}),
    ("timm", "swin_tiny_patch4_window7_224", {}),
    ("timm", "mobilevit_xxs", {}),
    ("timm", "levit_128s", {}),
    ("timm", "resnest14d", {}),
    ("timm", "ghostnet_100", {}),
    ("timm", "cspresnet50", {}),
    ("timm", "dla34", {}),
    ("timm", "xception41", {}),
    ("timm", "convmixer_768_32", {}),
]

IDS = [f"{lib}-{name}" for lib, name, _ in ARCHITECTURES]


@cache
def _model(library: str, name: str) -> nn.Module:
    kwargs = dict(next(kw for lib, n, kw in ARCHITECTURES if (lib, n) == (library, name)))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if library == "torchvision":
            from torchvision.models import get_model

            return get_model(name, weights=None, **kwargs).eval()
        import timm

        return timm.create_model(name, pretrained=False, **kwargs).eval()


def _size(library: str, name: str) -> int:
    c = input_size_constraint(_model(library, name), library)
    if c["fixed"]:
        return c["fixed"]
    return math.ceil(max(c["min_size"], 32) / c["multiple"]) * c["multiple"]


@cache
def _stops(library: str, name: str) -> tuple[Stop, ...]:
    return tuple(derive_stops(_model(library, name), library, size=_size(library, name)))


def _positions(module: nn.Module, library: str, nodes: list[str]) -> list[int]:
    """Forward positions, independently of the module under test: a node's index in the eval-mode node
    list of the library's tracer, a module counting as its last node."""
    if library == "timm":
        from timm.models._features_fx import get_graph_node_names
    else:
        from torchvision.models.feature_extraction import get_graph_node_names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, order = get_graph_node_names(module)
    pos = []
    for name in nodes:
        hits = [i for i, n in enumerate(order) if n == name or n.startswith(name + ".")]
        assert hits, f"{name!r} is not in the traced graph"
        pos.append(hits[-1])
    return pos


@pytest.mark.parametrize("library,name,kwargs", ARCHITECTURES, ids=IDS)
def test_derived_stops_are_ordered_labelled_valid_cuts(library, name, kwargs):
    module = _model(library, name)
    stops = list(_stops(library, name))
    nodes = [s.node for s in stops]
    assert 3 <= len(stops) <= 40, nodes
    assert all(isinstance(s, Stop) for s in stops)
    assert len(set(nodes)) == len(nodes), "duplicate nodes"
    assert "x" not in nodes
    labels = [s.label for s in stops]
    assert all(label.strip() for label in labels)
    assert len(set(labels)) == len(labels), "duplicate labels"
    pos = _positions(module, library, nodes)
    assert pos == sorted(pos) and len(set(pos)) == len(pos), "not in strictly increasing forward order"
    assert stops[-1].label.startswith("logits")
    shapes = check_stops(module, library, stops, _size(library, name))
    assert list(shapes) == nodes
    assert all(isinstance(s, tuple) and len(s) >= 1 for s in shapes.values())
    assert shapes[nodes[-1]][-1] == 1000 or 1000 in shapes[nodes[-1]]  # the logits


def test_resnet26d_stem_stages_and_head():
    stops = _stops("timm", "resnet26d")
    by_node = {s.node: s.label for s in stops}
    assert stops[0] == Stop("conv1", "stem conv1 (Sequential)")
    assert by_node["layer1"] == "stage 1 block 2 (Bottleneck)"
    assert by_node["layer4.0"] == "stage 4 block 1 (Bottleneck)"
    assert by_node["global_pool"].startswith("global pool")
    assert stops[-1] == Stop("fc", "logits (Linear)")


def test_swin_and_vit_stops_name_downsampling_and_final_norm():
    swin = {s.node: s.label for s in _stops("torchvision", "swin_t")}
    assert swin["features.0"] == "stem (Sequential)"
    assert swin["features.2"] == "downsample 1->2 (PatchMerging)"
    assert swin["norm"] == "final norm (LayerNorm)" and swin["head"] == "logits (Linear)"
    vit = _stops("timm", "vit_tiny_patch16_224")
    assert [s.node for s in vit][:2] == ["patch_embed", "blocks.0"]
    assert Stop("norm", "final norm (LayerNorm)") in vit and vit[-1] == Stop("head", "logits (Linear)")
    tv_vit = {s.node: s.label for s in _stops("torchvision", "vit_b_16")}
    assert tv_vit["encoder.ln"] == "final norm (LayerNorm)"
    assert tv_vit["encoder.layers.encoder_layer_11"] == "block 12 (EncoderBlock)"


def test_channel_last_and_token_outputs_are_cuts():
    swin = check_stops(_model("timm", "swin_tiny_patch4_window7_224"), "timm", ["layers.0"], 224)
    assert swin["layers.0"] == (56, 56, 96)  # NHWC
    vit = check_stops(_model("timm", "vit_tiny_patch16_224"), "timm", ["blocks.0"], 224)
    assert vit["blocks.0"] == (197, 192)  # tokens


def test_max_stops_keeps_first_last_and_stage_ends():
    module = _model("torchvision", "resnet18")
    full = _stops("torchvision", "resnet18")
    few = derive_stops(module, "torchvision", max_stops=7, size=32)
    nodes = [s.node for s in few]
    assert len(few) == 7
    assert nodes[0] == full[0].node and nodes[-1] == full[-1].node
    assert {"layer1", "layer2", "layer3", "layer4"} <= set(nodes)
    # many blocks: densenet121 has 58 dense layers, thinned to 40 with every dense block's output kept
    dense = [s.node for s in _stops("torchvision", "densenet121")]
    assert len(dense) == 40
    assert {f"features.denseblock{i}" for i in range(1, 5)} <= set(dense)
    assert dense[0] == "features.conv0" and dense[-1] == "classifier"


def test_input_size_constraints():
    c = input_size_constraint(_model("torchvision", "vit_b_16"), "torchvision")
    assert (c["fixed"], c["multiple"]) == (32, 16)  # built for 32 px
    c = input_size_constraint(_model("torchvision", "maxvit_t"), "torchvision")
    assert c["fixed"] == 224 and c["multiple"] == 224
    c = input_size_constraint(_model("torchvision", "swin_t"), "torchvision")
    assert c["fixed"] is None and c["min_size"] == 224  # pads its windows; its weights want 224
    c = input_size_constraint(_model("torchvision", "resnet18"), "torchvision")
    assert c["fixed"] is None and c["min_size"] == 1
    c = input_size_constraint(_model("timm", "swin_tiny_patch4_window7_224"), "timm")
    assert c["fixed"] == 224
    c = input_size_constraint(_model("timm", "deit_tiny_patch16_224"), "timm")
    assert c["fixed"] == 32 and c["multiple"] == 16  # built with img_size=32, whatever the cfg says
    c = input_size_constraint(_model("timm", "levit_128s"), "timm")
    assert c["fixed"] == 224
    c = input_size_constraint(_model("timm", "resnet26d"), "timm")
    assert c["fixed"] is None and c["min_size"] == 32


class _DataDependent(nn.Module):
    """Python control flow on a tensor value: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.conv(x)
        if x.mean() > 0:
            x = x.relu()
        return self.fc(x.mean((2, 3)))


def _timm_same_padding_model():
    import timm

    return timm.create_model("tf_efficientnet_b0", pretrained=False)


# Classifiers that cannot be traced, and why: each must give the one clear error, never a raw traceback.
UNTRACEABLE = [
    ("torchvision", _DataDependent, "data-dependent control flow in forward"),
    ("torchvision", _timm_same_padding_model,
     "timm's padding-same convs branch on shapes: only timm's tracer (library='timm') keeps them leaves"),
]


@pytest.mark.parametrize("library,make,why", UNTRACEABLE, ids=["data-dependent", "timm-with-torchvision-tracer"])
def test_untraceable_models_raise_one_clear_error(library, make, why):
    module = make()
    with pytest.raises(UntraceableModel, match="cannot be traced by torch.fx") as e:
        derive_stops(module, library)
    assert isinstance(e.value, UserError)
    assert "\n" not in str(e.value)


def test_the_timm_tracer_traces_what_the_torchvision_one_cannot():
    module = _timm_same_padding_model()
    stops = derive_stops(module, "timm", size=32)
    assert 3 <= len(stops) <= 40
    assert set(check_stops(module, "timm", stops, 32)) == {s.node for s in stops}


def test_check_stops_names_the_bad_node():
    module = _model("torchvision", "vit_b_16")
    with pytest.raises(UserError, match="no_such_layer"):
        check_stops(module, "torchvision", ["conv_proj", "no_such_layer"], 32)
    # attention returns (output, weights): a tuple is not an activation tensor
    with pytest.raises(UserError, match="self_attention.*not a floating tensor"):
        check_stops(module, "torchvision", ["encoder.layers.encoder_layer_0.self_attention"], 32)
    with pytest.raises(UserError, match="library"):
        derive_stops(module, "keras")
