"""EfficientNet-Lite1 and Lite2 trained weights: bundled with pip packages, loaded without a network, and
classifying the sample images the way the bundled Lite0 does, each at its own training resolution."""

from __future__ import annotations

import socket
import urllib.request

import pytest
import torch

from core.images import load_image, sample_images
from core.models.checkpoints import load_model, read_state_dict, trained_status
from core.models.classify import predict
from core.models.encoder import depth_stops
from core.models.registry import ARCHITECTURES, HALF

NATIVE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
FILES = {"efficientnet_lite1": "efficientnet-lite1-77cc7160.pth", "efficientnet_lite2": "efficientnet-lite2-9656183e.pth"}
CATS = {281, 282, 283, 284, 285, 287}  # tabby, tiger cat, Persian, Siamese, Egyptian cat, lynx
CUPS = {967, 968, 504}  # espresso, cup, coffee mug
ROCKETS = {657, 744, 812}  # missile, projectile, space shuttle


def _no_network(*a, **k):
    raise OSError("network disabled in this test")


def _go_offline(mp: pytest.MonkeyPatch, torch_home) -> None:
    """An empty torchvision cache and a network that fails loudly if anything touches it."""
    mp.setenv("TORCH_HOME", str(torch_home))
    mp.setattr(socket.socket, "connect", _no_network)
    mp.setattr(urllib.request, "urlopen", _no_network)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    _go_offline(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def top5(tmp_path_factory):
    """{model: {sample: [(index, name, p), ...]}}: the trained models' top-5 at their native sizes, offline."""
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        _go_offline(mp, tmp_path_factory.mktemp("torch_home"))
        for name, size in NATIVE.items():
            model = load_model(name, "trained", size)
            images = sample_images()
            preds = predict(model, torch.stack([load_image(p, size) for p in images.values()]), k=5)
            out[name] = dict(zip(images, preds))
    return out


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite_trained_source_is_bundled_and_loads_offline(name, offline):
    arch = ARCHITECTURES[name]
    src = arch.trained
    assert src.bundled and src.url is None and src.path().is_file() and src.path().name == FILES[name]
    assert src.download() == src.path()  # bundled: located, never fetched (the network is off here)
    assert arch.feature_extraction == "timm" and arch.mean == HALF
    assert (src.mean, src.std) == (HALF, HALF)
    assert "mean/std 0.5" in src.describe and f"{NATIVE[name]} px" in src.describe
    status = trained_status(name)
    assert status["bundled"] and status["cached"] and status["weights"] == src.describe
    model = load_model(name, "trained", 32)
    assert model.mean == model.std == HALF and model.source == src.describe and len(model.categories) == 1000
    # every tensor of the package's file lands, in order, on timm's model (EfficientNet-PyTorch names -> timm's)
    file_state = read_state_dict(src.path())
    own = model.module.state_dict()
    assert len(file_state) == len(own) == 386
    assert all(torch.equal(a, b) for a, b in zip(file_state.values(), own.values()))
    assert torch.equal(own["conv_stem.weight"], file_state["_conv_stem.weight"])
    assert torch.equal(own["classifier.weight"], file_state["_fc.weight"])
    # the study defaults name real stops
    stops = [s.node for s in depth_stops(model)]
    assert all(n in stops for n in arch.cpu_stops)


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite_trained_classifies_the_samples_like_lite0(name, top5):
    ours, lite0 = top5[name], top5["efficientnet_lite0"]
    idx = {sample: [i for i, _, _ in row] for sample, row in ours.items()}
    ref = {sample: [i for i, _, _ in row] for sample, row in lite0.items()}
    assert ref["chelsea"][0] in CATS and 285 in ref["chelsea"] and ref["coffee"][0] == 967  # Lite0 as a baseline
    assert idx["chelsea"][0] == 285 and set(idx["chelsea"][:3]) <= CATS  # Egyptian cat, then other cats
    assert ours["chelsea"][0][2] > 0.3
    assert idx["coffee"][0] == 967 and 968 in idx["coffee"]  # espresso, cup
    assert ours["coffee"][0][2] > 0.3
    assert set(idx["rocket"]) & ROCKETS
    for sample in ("chelsea", "coffee", "rocket"):  # the same neighbourhood of classes as Lite0's
        assert len(set(idx[sample]) & set(ref[sample])) >= 3, (sample, idx[sample], ref[sample])


def test_untrained_lite_models_do_not_classify():
    assert predict(load_model("efficientnet_lite1", "untrained", 32), torch.rand(1, 3, 32, 32)) is None


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite_stops_are_in_forward_order(name):
    model = load_model(name, "untrained", 32)
    stops = [s.node for s in depth_stops(model)]
    assert stops[:3] == ["conv_stem", "bn1", "blocks.0.0"] and stops[-4:] == ["conv_head", "bn2", "global_pool",
                                                                            "classifier"]
    assert [n for n in stops if n.startswith("blocks.")][-1] == "blocks.6.0" and "blocks.5.4" in stops
    done = []
    modules = dict(model.module.named_modules())
    hooks = [modules[n].register_forward_hook(lambda *a, n=n: done.append(n)) for n in stops]
    try:
        with torch.no_grad():
            model.module(torch.rand(1, 3, 32, 32))
    finally:
        for h in hooks:
            h.remove()
    assert list(dict.fromkeys(done)) == stops
