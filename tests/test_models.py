"""Architectures, depth stops, truncation and checkpoint loading."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from core.models.registry import ARCHITECTURES
from core.models.checkpoints import download_trained, load_model, read_state_dict, trained_status
from core.models.encoder import Encoder, depth_stops, graph_nodes, resolve_layer, stop_shapes
from core.errors import UserError, WeightsNotCached

EXPECTED = ["resnet18", "resnet50", "resnet152", "googlenet", "inception_v3", "vgg16", "alexnet", "vit_b_16",
            "convnext_tiny", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]


def test_every_required_architecture_is_listed():
    assert list(ARCHITECTURES) == EXPECTED


def test_resnet18_stops_and_shapes(resnet18_untrained):
    stops = [s.node for s in depth_stops(resnet18_untrained)]
    assert stops == ["conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0",
                     "layer3", "layer4.0", "layer4", "avgpool", "fc"]
    shapes = stop_shapes(resnet18_untrained, 64)
    assert shapes["conv1"] == (64, 32, 32)
    assert shapes["maxpool"] == (64, 16, 16)
    assert shapes["layer2"] == (128, 8, 8)
    assert shapes["layer4"] == (512, 2, 2)
    assert shapes["fc"] == (1000,)


def test_resnet50_has_every_residual_block():
    model = load_model("resnet50", "untrained", 32)
    blocks = [s.node for s in depth_stops(model) if s.node.startswith("layer")]
    assert len(blocks) == 3 + 4 + 6 + 3  # one stop per residual block, the last named after its stage
    assert blocks[:3] == ["layer1.0", "layer1.1", "layer1"]


@pytest.mark.parametrize("name", EXPECTED)
def test_stops_are_in_forward_order_and_run_at_min_size(name):
    arch = ARCHITECTURES[name]
    model = load_model(name, "untrained", max(arch.min_size, 32))
    stops = depth_stops(model)
    assert len(stops) >= 6 and len({s.node for s in stops}) == len(stops)
    # forward order = the order in which each stop's module finishes during a full forward pass
    done = []
    modules = dict(model.module.named_modules())
    hooks = [modules[s.node].register_forward_hook(lambda *a, n=s.node: done.append(n)) for s in stops]
    try:
        with torch.no_grad():
            model.module(torch.rand(1, 3, max(arch.min_size, 32), max(arch.min_size, 32)))
    finally:
        for h in hooks:
            h.remove()
    assert list(dict.fromkeys(done)) == [s.node for s in stops], f"{name} stops out of forward order"
    shapes = stop_shapes(model, max(arch.min_size, 32))
    assert all(len(shapes[s.node]) >= 1 for s in stops)


def test_truncation_never_runs_later_layers(resnet18_untrained):
    enc = Encoder(resnet18_untrained, "layer1")
    calls = []
    modules = dict(resnet18_untrained.module.named_modules())
    hooks = [modules[n].register_forward_hook(lambda *a, n=n: calls.append(n))
             for n in ("layer1.1.conv2", "layer2.0.conv1", "layer4.1.conv2", "fc")]
    try:
        with torch.no_grad():
            out = enc(torch.rand(1, 3, 64, 64))
    finally:
        for h in hooks:
            h.remove()
    assert out.shape == (1, 64, 16, 16)
    assert calls == ["layer1.1.conv2"]  # the last conv before the cut ran; nothing after it did
    assert not hasattr(enc.body, "layer2") and not hasattr(enc.body, "fc")


def test_any_graph_node_is_accepted_and_unknown_names_are_explained(resnet18_untrained):
    assert "layer2.0.conv1" in graph_nodes(resnet18_untrained)
    assert resolve_layer(resnet18_untrained, "layer2.0.conv1").node == "layer2.0.conv1"
    with pytest.raises(UserError, match="unknown layer 'blocks.3.0' for resnet18: use one of conv1"):
        resolve_layer(resnet18_untrained, "blocks.3.0")  # a layer of another model


@pytest.mark.parametrize("name,size,msg", [("inception_v3", 74, "at least 75"), ("vit_b_16", 40, "multiple of 16"),
                                           ("alexnet", 32, "at least 63")])
def test_size_limits(name, size, msg):
    with pytest.raises(UserError, match=msg):
        load_model(name, "untrained", size)


def test_vit_interpolates_position_embeddings():
    model = load_model("vit_b_16", "untrained", 64)
    assert stop_shapes(model, 64)["encoder.layers.encoder_layer_0"] == (17, 768)  # 4x4 patches + class token


def test_untrained_is_deterministic_per_init_seed():
    a, b = load_model("resnet18", "untrained", 32, 0), load_model("resnet18", "untrained", 32, 0)
    c = load_model("resnet18", "untrained", 32, 1)
    wa, wb, wc = (m.module.conv1.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert not any(p.requires_grad for p in a.module.parameters())
    assert not a.module.training


def test_lite0_bundled_weights_classify_true_classes():
    from PIL import Image
    from skimage import data

    from core.models.classify import predict

    model = load_model("efficientnet_lite0", "trained", 224)
    assert model.mean == (0.5, 0.5, 0.5)
    images = []
    for name in ("chelsea", "coffee"):
        arr = Image.fromarray(getattr(data, name)()).resize((224, 224), Image.BICUBIC)
        images.append(torch.from_numpy(__import__("numpy").asarray(arr, dtype="float32") / 255).permute(2, 0, 1))
    top = predict(model, torch.stack(images), k=1)
    assert [t[0][0] for t in top] == [285, 967]  # Egyptian cat, espresso
    assert predict(load_model("efficientnet_lite0", "untrained", 224), images[0][None]) is None


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torchvision cache, and a network that fails loudly if anything touches it."""
    import socket
    import urllib.request

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


def test_trained_torchvision_weights_found_in_cache_without_network(torch_home):
    status = trained_status("resnet18")
    assert not status["cached"] and status["path"].startswith(str(torch_home))
    reference = load_model("resnet18", "untrained", 32, init_seed=7)
    state = {k: v.clone() for k, v in reference.module.state_dict().items()}
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, status["path"])
    assert trained_status("resnet18")["cached"]
    model = load_model("resnet18", "trained", 32)
    assert torch.equal(model.module.conv1.weight, reference.module.conv1.weight)
    assert model.categories and model.categories[285] == "Egyptian cat"


def test_missing_trained_weights_give_the_offline_message(torch_home):
    with pytest.raises(WeightsNotCached) as info:
        load_model("resnet18", "trained", 32)
    msg = str(info.value)
    assert "not on disk" in msg and "python -m core download resnet18" in msg and str(torch_home) in msg
    with pytest.raises(UserError, match="could not download .*copy the file to"):
        download_trained("resnet18")


def test_state_dict_files_load_and_mismatches_name_their_keys(tmp_path):
    ref = load_model("resnet18", "untrained", 32, init_seed=3)
    state = ref.module.state_dict()
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "wrapped.pth")
    assert torch.equal(load_model("resnet18", str(tmp_path / "wrapped.pth"), 32).module.fc.weight, ref.module.fc.weight)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    assert torch.equal(load_model("resnet18", str(tmp_path / "w.safetensors"), 32).module.fc.weight,
                       ref.module.fc.weight)

    bad = dict(state)
    bad.pop("fc.bias")
    bad["extra.weight"] = torch.zeros(1)
    bad["conv1.weight"] = torch.zeros(3, 3)
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(UserError) as info:
        load_model("resnet18", str(tmp_path / "bad.pt"), 32)
    msg = str(info.value)
    assert "missing keys: fc.bias" in msg and "unexpected keys: extra.weight" in msg and "conv1.weight" in msg

    torch.save(load_model("alexnet", "untrained", 64).module.state_dict(), tmp_path / "alex.pth")
    with pytest.raises(UserError, match="does not fit resnet18: missing keys"):
        load_model("resnet18", str(tmp_path / "alex.pth"), 32)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_code_in_a_pickle_is_never_run(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"conv1.weight": _Evil(str(marker))}, f, protocol=2)
    with pytest.raises(UserError, match="refused"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()


@pytest.mark.parametrize("content,suffix,msg", [
    (b"", ".pth", "not a readable PyTorch file"),
    (b"\x00\x01garbage" * 10, ".safetensors", "not a valid safetensors file"),
    (b"x", ".txt", "expected a"),
])
def test_broken_checkpoint_files(tmp_path, content, suffix, msg):
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(content)
    with pytest.raises(UserError, match=msg):
        read_state_dict(path)


def test_truncated_checkpoint(tmp_path):
    torch.save(load_model("resnet18", "untrained", 32).module.state_dict(), tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable PyTorch file"):
        read_state_dict(tmp_path / "cut.pth")


# --------------------------------------------------------------------------- the registry: data, not name tests


def test_build_size_is_data_on_the_entry():
    assert ARCHITECTURES["vit_b_16"].build_size(64) == 64
    assert ARCHITECTURES["vit_b_16"].build_size(224) == 224
    assert ARCHITECTURES["resnet18"].build_size(64) == 224
    assert ARCHITECTURES["inception_v3"].build_size(299) == 224
    assert ARCHITECTURES["vit_b_16"].adapt_state is not None and ARCHITECTURES["resnet18"].adapt_state is None


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_inception_family_trained_weights_expect_half_normalisation(name):
    arch = ARCHITECTURES[name]
    src = arch.trained  # resolved from torchvision's Weights enum, no network
    assert (src.mean, src.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert arch.mean == (0.485, 0.456, 0.406)  # untrained and file weights keep the family's normalisation
    assert not src.bundled and src.url.startswith("https://") and src.size_mb > 1
    assert src.describe == trained_status(name)["weights"]


def test_other_torchvision_trained_weights_expect_imagenet_normalisation():
    src = ARCHITECTURES["resnet18"].trained
    assert (src.mean, src.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert src.name == "ResNet18_Weights.IMAGENET1K_V1" and src.categories()[285] == "Egyptian cat"


def test_lite0_trained_source_is_bundled_and_loads(torch_home):
    src = ARCHITECTURES["efficientnet_lite0"].trained
    assert src.bundled and src.url is None and src.path().is_file()
    assert src.download() == src.path()  # bundled: located, never fetched (the network is off here)
    assert ARCHITECTURES["efficientnet_lite0"].feature_extraction == "timm"
    status = trained_status("efficientnet_lite0")
    assert status["bundled"] and status["cached"] and status["path"] == str(src.path())
    model = load_model("efficientnet_lite0", "trained", 32)
    assert model.mean == src.mean == (0.5, 0.5, 0.5) and model.source == src.describe
    assert len(model.categories) == 1000


class _TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.relu = torch.nn.ReLU()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def test_a_new_architecture_is_one_registry_entry(tmp_path):
    from core.models.registry import Architecture, Stop, get_architecture, register, unregister

    stops = lambda m: [Stop("conv", "conv"), Stop("relu", "conv + ReLU"), Stop("pool", "pool"), Stop("fc", "logits")]
    arch = register(Architecture("tinynet_test", "test", "Tiny test net", 8, build=lambda size: _TinyNet(),
                                 stops_of=stops))
    try:
        assert get_architecture("tinynet_test") is arch and arch.build_size(48) == 224
        model = load_model("tinynet_test", "untrained", 16, init_seed=5)
        again = load_model("tinynet_test", "untrained", 16, init_seed=5)
        assert torch.equal(model.module.conv.weight, again.module.conv.weight)
        assert [s.node for s in depth_stops(model)] == ["conv", "relu", "pool", "fc"]
        assert Encoder(model, "relu")(torch.rand(2, 3, 16, 16)).shape == (2, 4, 16, 16)
        torch.save(model.module.state_dict(), tmp_path / "tiny.pth")
        assert torch.equal(load_model("tinynet_test", str(tmp_path / "tiny.pth"), 16, init_seed=9).module.fc.weight,
                           model.module.fc.weight)
        with pytest.raises(UserError, match="tinynet_test has no trained weights"):
            load_model("tinynet_test", "trained", 16)
        with pytest.raises(ValueError, match="already registered"):
            register(arch)
    finally:
        unregister("tinynet_test")
    assert "tinynet_test" not in ARCHITECTURES and list(ARCHITECTURES) == EXPECTED
    with pytest.raises(UserError, match="unknown model 'tinynet_test'"):
        load_model("tinynet_test")


def test_register_model_decorator_names_the_entry_after_its_builder():
    from core.models.registry import Stop, register_model, unregister

    @register_model(source="test", title="Tiny (decorated)", min_size=8,
                    stops_of=lambda m: [Stop("conv", "conv"), Stop("fc", "logits")])
    def tinynet_decorated(size: int) -> torch.nn.Module:
        return _TinyNet()

    try:
        model = load_model("tinynet_decorated", "untrained", 8)
        assert model.arch.build is tinynet_decorated and model.arch.title == "Tiny (decorated)"
        assert model.module(torch.rand(1, 3, 8, 8)).shape == (1, 10)
    finally:
        unregister("tinynet_decorated")


def test_checkpoint_hash_of_files_is_stable_and_follows_the_file(tmp_path, torch_home):
    import hashlib
    import os

    from core.models.checkpoints import checkpoint_hash

    path = tmp_path / "w.pth"
    torch.save(load_model("resnet18", "untrained", 32, init_seed=1).module.state_dict(), path)
    model = load_model("resnet18", str(path), 32)
    first = checkpoint_hash(model)
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checkpoint_hash(model) == first == checkpoint_hash(load_model("resnet18", str(path), 32))
    assert checkpoint_hash(load_model("resnet18", "untrained", 32)) is None

    torch.save(load_model("resnet18", "untrained", 32, init_seed=2).module.state_dict(), path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new mtime even on coarse clocks
    second = checkpoint_hash(model)
    assert second != first and second == hashlib.sha256(path.read_bytes()).hexdigest()

    trained = trained_status("resnet18")["path"]  # "trained": the weights file in the cache
    os.makedirs(os.path.dirname(trained))
    torch.save(load_model("resnet18", "untrained", 32, init_seed=4).module.state_dict(), trained)
    with open(trained, "rb") as f:
        assert checkpoint_hash(load_model("resnet18", "trained", 32)) == hashlib.sha256(f.read()).hexdigest()


def test_no_model_is_special_cased_by_name(root):
    import re

    pattern = re.compile(r'startswith\("vit_"\)|source == "timm"|"googlenet", "inception_v3"')
    hits = [f"{p.name}:{i}" for p in sorted((root / "core").glob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_load_model_documents_args_returns_and_an_example():
    doc = load_model.__doc__
    for section in ("Args:", "Returns:", "Raises:", "Example:", "checkpoint:", "image_size:", ">>> "):
        assert section in doc


@pytest.mark.parametrize("data", [b"\x80\x02t.", b"\x80\x02a.", b"\x80\x02u.", b"hello, not a checkpoint\n"])
def test_an_unreadable_checkpoint_says_so_in_words_not_the_unpicklers(tmp_path, data):
    """Malformed bytes made torch's loader raise IndexError("pop from empty list"), and that text reached the page."""
    from core import UserError
    from core.models.checkpoints import read_state_dict

    path = tmp_path / "x.pth"
    path.write_bytes(data)
    with pytest.raises(UserError) as err:
        read_state_dict(path)
    text = str(err.value)
    assert "unreadable" in text and "not a readable PyTorch file" in text
    assert not any(raw in text for raw in ("pop from empty list", "index out of range", "(101)", "()")), text
