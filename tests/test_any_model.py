"""Any model: torchvision:/timm: names, your own nn.Module through the library and through --model-file, the
size guard, and what identifies each model in a run's spec (two different models never share a cache key)."""

import json
import textwrap

import pytest
import torch
import torch.nn as nn

from core import UserError, get_preset, invert, load_model
from core.cli.main import main
from core.jobs import RunSpec
from core.models import depth_stops, file_architecture, libraries, module_architecture, resolve_layer


class Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


class TinyNet(nn.Module):
    """Convolutions, a residual block, pooling and a linear head: what a researcher's own network looks like."""

    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU())
        self.block = Residual(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.block(self.stem(x))), 1))


MODEL_FILE = textwrap.dedent('''
    import torch
    import torch.nn as nn


    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))


    def tiny(size):
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), Residual(8), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(8, 10))


    def wider():
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(16, 10))


    def not_a_module(size):
        return 42
''')


def test_your_own_module_through_the_library():
    torch.manual_seed(0)
    net = TinyNet()
    model = load_model(net, "untrained", 32)
    stops = depth_stops(model)
    assert len(stops) >= 3 and stops[-1].node.startswith("head")
    image = torch.rand(3, 32, 32)
    r = invert(model, stops[1].node, image, seeds=[0, 1], preset=get_preset("default", iters=15), device="cpu")
    assert r.steps_done == 15 and torch.isfinite(r.images).all() and r.metrics["clarity"] == r.metrics["clarity"]
    # the module is used as given: the same weights give the same entry, other weights another one
    assert load_model(net, "untrained", 32).name == model.name
    other = TinyNet()
    assert module_architecture(other).name != model.name
    spec_a = RunSpec.of(model, stops[1].node, image, [0], get_preset("default"), "cpu")
    spec_b = RunSpec.of(load_model(other, "untrained", 32), stops[1].node, image, [0], get_preset("default"), "cpu")
    assert spec_a.key() != spec_b.key()
    assert resolve_layer(model, "block.conv1").node == "block.conv1"  # any graph node by name, as for the zoo


def test_your_own_file_through_the_cli(tmp_path, capsys):
    path = tmp_path / "mynet.py"
    path.write_text(MODEL_FILE)
    assert main(["models", "--model-file", f"{path}:tiny", "--size", "32", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["name"].startswith("file:mynet.py:tiny@") and listing["stops_derived"]
    layers = [s["layer"] for s in listing["stops"]]
    assert len(layers) >= 3
    out = tmp_path / "out"
    assert main(["invert", "--model-file", f"{path}:tiny", "--image", "assets/chelsea.png", "--size", "32",
                 "--layer", layers[1], "--seeds", "2", "--iters", "12", "--out", str(out), "--quiet",
                 "--no-cache"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["spec"]["model"] == listing["name"] and result["steps_done"] == 12
    # another function, or the same function after the file changed: another model, another cache key
    assert file_architecture(f"{path}:wider").name != listing["name"]
    path.write_text(MODEL_FILE + "\n# changed\n")
    assert file_architecture(f"{path}:tiny").name != listing["name"]


@pytest.mark.parametrize("spec,msg", [("nofile.py:tiny", "not found"), ("{dir}/mynet.py", "PATH.py:FUNCTION"),
                                      ("{dir}/mynet.py:missing", "no function 'missing'"),
                                      ("{dir}/mynet.py:not_a_module", "not a torch.nn.Module")])
def test_bad_model_files_give_one_line(tmp_path, capsys, spec, msg):
    (tmp_path / "mynet.py").write_text(MODEL_FILE)
    code = main(["models", "--model-file", spec.format(dir=tmp_path), "--size", "32"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and msg in err and err.count("\n") == 1, err


def test_a_library_name_too_large_for_the_server_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setenv("INVERSION_MAX_PARAMS", "10e6")
    built = []
    real = libraries._builder

    def spy(library, name):
        build = real(library, name)

        def wrapped(size):
            built.append(torch.empty(0).device.type)  # the device modules are made on now ("meta" while counting)
            return build(size)

        return wrapped

    monkeypatch.setattr(libraries, "_builder", spy)
    with pytest.raises(UserError, match=r"timm:vit_giant_patch14_224 has 1013 M parameters, more than this server "
                                        r"allows \(10 M"):
        libraries.resolve("timm:vit_giant_patch14_224")
    assert built == ["meta"]  # counted on the meta device only, never built for real


def test_unknown_library_names_say_what_exists(capsys):
    with pytest.raises(UserError, match=r"unknown timm model 'resnet_no_such'.*similar"):
        libraries.resolve("timm:resnet_no_such")
    assert main(["models", "--model", "torchvision:nope", "--size", "32"]) == 2
    assert "unknown torchvision model 'nope'" in capsys.readouterr().err


def test_every_library_name_is_listed_without_building(capsys):
    assert main(["models", "--all", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "efficientnet_lite0" in listing["curated"]
    assert "torchvision:resnet18" in listing["torchvision"] and len(listing["torchvision"]) >= 70
    assert "timm:resnet26d" in listing["timm"] and len(listing["timm"]) >= 1000


# --------------------------------------------------------------------------- the app


def test_the_app_picks_a_timm_model_runs_it_and_its_link_reproduces_it():
    pytest.importorskip("streamlit")
    from app_helpers import app, errors, first_row, ok

    at = app({"model": "resnet18", "ckpt": "untrained", "size": "32", "iters": "15", "seeds": "2",
              "device": "cpu", "vs": "none"})
    at.run()
    ok(at)
    options = at.selectbox(key="inv_model").options
    assert options.index("timm · resnet10t") > options.index("ResNet-18")  # curated first, then the libraries
    at.selectbox(key="inv_model").set_value("timm:resnet10t")
    at.run()
    ok(at)
    assert not at.error, errors(at)
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    shown = first_row(at)
    assert shown.result.model == "timm:resnet10t" and torch.isfinite(shown.result.images).all()
    link = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert link["model"] == "timm:resnet10t"
    again = app(link)
    again.run()
    ok(again)
    assert first_row(again).spec.key() == shown.spec.key()  # from the cache, without a click


def test_the_app_refuses_a_model_too_large_for_the_server_and_keeps_working(monkeypatch):
    pytest.importorskip("streamlit")
    from app_helpers import app, ok

    at = app({"model": "timm:vit_giant_patch14_224", "size": "32", "iters": "15"})
    at.run()
    ok(at)
    said = " ".join(e.value for e in at.error)
    assert "vit_giant_patch14_224 is not available here" in said and "M parameters" in said, said
    assert at.selectbox(key="inv_model").value == "efficientnet_lite0"
    assert not at.button(key="inv_run").disabled


# --------------------------------------------------------------------------- trained weights through each library


def test_timm_trained_weights_come_from_the_hub_cache_with_the_configs_normalisation(tmp_path, monkeypatch):
    """A state dict written into a temporary Hugging Face cache, where timm's own download would put it."""
    import huggingface_hub.constants as hub
    from safetensors.torch import save_file
    from timm.models import get_pretrained_cfg

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    name = "timm:resnet10t"
    with pytest.raises(UserError, match="python -m core download timm:resnet10t"):
        load_model(name, "trained", 32)  # not in the cache: says how to get it, no network touched
    cfg = get_pretrained_cfg("resnet10t")
    torch.manual_seed(1)
    source = load_model(name, "untrained", 32, init_seed=7).module
    snap = tmp_path / "hub" / f"models--{cfg.hf_hub_id.replace('/', '--')}" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(snap / "model.safetensors"))
    (snap.parent.parent / "refs").mkdir()
    (snap.parent.parent / "refs" / "main").write_text("abc123")
    model = load_model(name, "trained", 32)
    assert model.mean == tuple(cfg.mean) and model.std == tuple(cfg.std)
    assert len(model.categories) == 1000 and "goldfish" in model.categories[1]
    assert all(torch.equal(a, b) for a, b in zip(model.module.state_dict().values(), source.state_dict().values()))
    spec = RunSpec.of(model, depth_stops(model)[2].node, torch.rand(3, 32, 32), [0], get_preset("default"), "cpu")
    assert spec.checkpoint == "trained" and spec.checkpoint_hash  # the file's hash identifies the weights


def test_torchvision_trained_weights_come_from_torch_hubs_cache(tmp_path, monkeypatch):
    import torch.hub
    from torchvision.models import get_model_weights

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "th"))
    name = "torchvision:mobilenet_v3_small"
    weights = get_model_weights("mobilenet_v3_small").DEFAULT
    source = load_model(name, "untrained", 32, init_seed=3).module
    path = tmp_path / "th" / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True)
    torch.save(source.state_dict(), path)
    model = load_model(name, "trained", 32)
    assert model.mean == tuple(weights.transforms().mean) and model.categories == weights.meta["categories"]


def test_a_download_without_a_network_is_one_line(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    assert main(["download", "timm:resnet10t"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not download timm:resnet10t") and err.count("\n") == 1, err
    assert main(["download", "timm:resnet10t"]) == 2 and "without a network" in capsys.readouterr().err


def test_an_operators_file_adds_models_to_the_registry(tmp_path):
    from core import ARCHITECTURES
    from core.models import load_operator_models
    from core.models.registry import unregister

    path = tmp_path / "lab_models.py"
    path.write_text(textwrap.dedent('''
        import torch.nn as nn
        from core import register_model


        @register_model(title="Our 4-layer CNN", min_size=16)
        def our_test_cnn(size: int) -> nn.Module:
            return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(8, 10))
    '''))
    try:
        assert load_operator_models(str(path)) == ["our_test_cnn"]
        assert ARCHITECTURES["our_test_cnn"].title == "Our 4-layer CNN"
        model = load_model("our_test_cnn", "untrained", 32, init_seed=1)
        assert len(depth_stops(model)) >= 4
        assert not torch.equal(load_model("our_test_cnn", "untrained", 32, init_seed=2).module[0].weight,
                               model.module[0].weight)  # built under the run's init seed, like the zoo's
    finally:
        unregister("our_test_cnn")
    with pytest.raises(UserError, match="INVERSION_MODELS: .* not found"):
        load_operator_models(str(tmp_path / "missing.py"))
    (tmp_path / "broken.py").write_text("raise RuntimeError('nope')\n")
    with pytest.raises(UserError, match=r"importing broken.py failed \(RuntimeError: nope\)"):
        load_operator_models(str(tmp_path / "broken.py"))


def test_modules_that_differ_only_in_structure_get_different_entries():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 4, 3, stride=1), nn.ReLU())
    torch.manual_seed(0)
    b = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Tanh())  # the same state dict, another network
    assert module_architecture(a).name != module_architecture(b).name
    assert module_architecture(a) is module_architecture(a)
