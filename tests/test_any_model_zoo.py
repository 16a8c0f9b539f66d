"""Two dozen torchvision and timm classifiers by name, end to end: `load_model("timm:NAME")` builds it, its depth
stops are derived in forward order, and a few steps at two stops give finite metrics, as for the curated models.

(`tests/test_autostops.py` checks the derived stops themselves on more architectures, and the untraceable ones.)
About 3-4 minutes on a 2-core CPU: small variants, 32-64 px where the model takes any size.
"""

import math

import pytest
import torch

pytest.importorskip("timm")

from core import get_architecture, get_preset, invert, load_model  # noqa: E402
from core.models import depth_stops, forward_position  # noqa: E402

NAMES = [
    "torchvision:regnet_y_400mf", "torchvision:densenet121", "torchvision:mobilenet_v3_small",
    "torchvision:efficientnet_b0", "torchvision:shufflenet_v2_x0_5", "torchvision:squeezenet1_0",
    "torchvision:mnasnet0_5", "torchvision:resnext50_32x4d", "torchvision:swin_t", "torchvision:maxvit_t",
    "timm:resnet26d", "timm:regnetx_002", "timm:mobilenetv3_small_050", "timm:efficientnet_b0",
    "timm:convnext_atto", "timm:vit_tiny_patch16_224", "timm:deit_tiny_patch16_224",
    "timm:swin_tiny_patch4_window7_224", "timm:mobilevit_xxs", "timm:levit_128s", "timm:resnest14d",
    "timm:ghostnet_100", "timm:dla34", "timm:cspresnet50",
]


@pytest.mark.parametrize("name", NAMES)
def test_a_library_model_by_name_lists_its_stops_and_inverts_at_two(name):
    arch = get_architecture(name)  # the entry: its input constraint, from the model and its config
    size = arch.fixed_size or max(arch.min_size, 32)
    size += -size % arch.size_multiple
    model = load_model(name, "untrained", size)
    stops = depth_stops(model)
    assert 3 <= len(stops) <= 40, (name, len(stops))
    positions = [forward_position(model, s.node) for s in stops]
    assert positions == sorted(positions) and len(set(positions)) == len(positions) and min(positions) >= 0, name
    assert all(s.label for s in stops) and len({s.label for s in stops}) == len(stops), name
    image = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    preset = get_preset("default", iters=3, early_stop=False)
    for stop in (stops[len(stops) // 3], stops[(2 * len(stops)) // 3]):
        r = invert(model, stop.node, image, [0], preset, "cpu", progress=False)
        assert r.steps_done == 3 and torch.isfinite(r.images).all(), (name, stop.node)
        m = r.metrics
        assert math.isfinite(m.clarity) and math.isfinite(m.reference_l2), (name, stop.node)
        assert all(math.isfinite(v) for v in m.embedding_l2), (name, stop.node)
