"""Presets, metrics and the inversion engine."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.engine.loop import Inversion, check_seeds, invert, start_images
from core.engine.result import Metrics
from core.errors import DivergenceError, UserError
from core.measures import normalise
from core.metrics import REFERENCE_NOISE_STD, l2_per_item, mean_pairwise, perturbed, psnr, ssim
from core.recipe.components import spec
from core.recipe.presets import DEFAULT, PAPER, PRESETS, Preset, get_preset
from core.jobs.cache import run_key
from core.priors import blur, gaussian_kernel, lerp

# ----------------------------------------------------------------------------- presets


def test_paper_preset_is_the_papers_script():
    assert (PAPER.iters, PAPER.optimizer, PAPER.lr_start, PAPER.lr_end) == (500, "sgd", 0.1, 0.1)
    assert (PAPER.init_mean, PAPER.init_std, PAPER.normalize, PAPER.early_stop) == (0.7, 1 / 20, False, False)
    assert [spec(t) for t in PAPER.objective] == [{"name": "l1", "weight": 0.15, "relative": False}]
    assert PAPER.param.name == "pixels"
    assert [spec(t) for t in PAPER.transforms] == [{"name": "blur", "kernel": 3, "sigma_start": 2.4, "sigma_end": 0.4}]


def test_default_preset_converges_by_design():
    assert DEFAULT.optimizer == "adam" and DEFAULT.early_stop and not DEFAULT.normalize
    assert DEFAULT.objective[0].name == "l1" and DEFAULT.objective[0].relative
    assert "clamp" in [t.name for t in DEFAULT.transforms]


@pytest.mark.parametrize("change,msg", [
    ({"lr_start": float("nan")}, "lr_start must be a finite number"),
    ({"lr_start": 1e9}, "absurdly large"),
    ({"iters": 0}, "iters must be a positive integer"),
    ({"iters": -5}, "iters must be a positive integer"),
    ({"transforms": [{"name": "blur", "kernel": 4}]}, "kernel must be an odd"),
    ({"transforms": [{"name": "sharpen"}]}, "unknown transform 'sharpen'"),
    ({"objective": [{"name": "tv"}]}, "needs an embedding term"),
    ({"objective": [{"name": "l1", "scale": 2}]}, "unknown parameter"),
    ({"param": "fourier", "transforms": [{"name": "clamp"}]}, "act on pixels"),
    ({"optimizer": "lbfgs"}, "optimizer must be"),
    ({"colour": 1}, "unknown preset field"),
])
def test_preset_overrides_are_validated(change, msg):
    with pytest.raises(UserError, match=msg):
        DEFAULT.replace(**change)


def test_presets_are_data():
    p = get_preset("paper", iters=20)
    assert p.iters == 20 and p.optimizer == "sgd" and p.to_dict()["name"] == "paper"
    with pytest.raises(UserError, match="unknown preset 'fast'"):
        get_preset("fast")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json_and_the_cache_key(name):
    p = PRESETS[name]
    d = json.loads(json.dumps(p.to_dict()))
    assert Preset(**d) == p
    assert run_key({"preset": Preset(**d).to_dict()}) == run_key({"preset": p.to_dict()})
    assert run_key({"preset": p.replace(iters=p.iters + 1).to_dict()}) != run_key({"preset": p.to_dict()})


# ----------------------------------------------------------------------------- priors and metrics


def test_blur_and_schedules():
    k = gaussian_kernel(3, 2.4)
    assert k.shape == (3, 1, 3, 3) and torch.allclose(k.sum(dim=(1, 2, 3)), torch.ones(3))
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(blur(flat, 3, 1.0), flat)  # reflect padding: no dark border
    noisy = torch.rand(1, 3, 16, 16)
    assert blur(noisy, 3, 1.0).std() < noisy.std()
    assert torch.equal(blur(noisy, 3, 0.0), noisy)
    assert lerp(2.4, 0.4, 0, 500) == 2.4 and math.isclose(lerp(2.4, 0.4, 250, 500), 1.4)
    assert lerp(2.4, 0.4, 500, 500) == 0.4 and lerp(2.4, 0.4, 900, 500) == 0.4  # held after the schedule


def test_metrics_on_known_pairs():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.ones(2, 3, 4, 4)
    assert torch.allclose(l2_per_item(a, b), torch.full((2,), math.sqrt(48)))
    pts = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])
    assert math.isclose(mean_pairwise(pts), (5 + 8 + 5) / 3)
    assert mean_pairwise(pts[:1]) is None
    img = torch.rand(3, 32, 32)
    assert ssim(img, img) == pytest.approx(1.0) and psnr(img, img) == 100.0
    assert psnr((img * 0 + 0.5), img * 0 + 0.6) == pytest.approx(20.0, abs=1e-3)  # MSE 0.01 -> 20 dB
    assert ssim(torch.rand(3, 32, 32), img) < 0.2
    assert normalise(1.0, 0.1, False) == 1.0 and normalise(0.1, 0.1, False) == 0.0
    assert normalise(0.05, 0.1, False) == 0.0 and normalise(0.55, 0.1, False) == pytest.approx(0.5)


def test_reference_perturbation_is_fixed_and_barely_visible():
    img = torch.rand(3, 64, 64)
    p1, p2 = perturbed(img), perturbed(img)
    assert torch.equal(p1, p2)
    assert (p1 - img).std().item() == pytest.approx(REFERENCE_NOISE_STD, rel=0.05)


# ----------------------------------------------------------------------------- engine


def test_seeds_are_checked():
    for bad, msg in (([], "at least one"), ([1, 1], "distinct"), ([-1], "non-negative")):
        with pytest.raises(UserError, match=msg):
            check_seeds(bad)


def test_start_noise_matches_method_and_is_per_seed():
    x = start_images([0, 1], 64, PAPER)
    assert x.mean().item() == pytest.approx(0.7, abs=0.01) and x.std().item() == pytest.approx(0.05, abs=0.005)
    assert torch.equal(start_images([1], 64, PAPER)[0], x[1])


def test_runs_are_deterministic_and_seeds_do_not_interact(resnet18_untrained, chelsea32):
    p = get_preset("default", iters=15, early_stop=False)
    a = invert(resnet18_untrained, "layer1", chelsea32, [0, 1], p, "cpu")
    b = invert(resnet18_untrained, "layer1", chelsea32, [0, 1], p, "cpu")
    alone = invert(resnet18_untrained, "layer1", chelsea32, [1], p, "cpu")
    assert torch.equal(a.images, b.images)
    assert torch.allclose(alone.images[0], a.images[1], atol=1e-4)
    assert not torch.allclose(a.images[0], a.images[1], atol=1e-3)


def test_only_the_input_gets_gradients(resnet18_untrained, chelsea32):
    run = Inversion(resnet18_untrained, "layer2", chelsea32, [0], get_preset("default", iters=3), "cpu")
    run.run()
    assert all(p.grad is None for p in resnet18_untrained.module.parameters())
    assert run.state.pixels.grad is not None


def test_snapshots_stream_and_a_stopped_run_keeps_its_work(resnet18_untrained, chelsea32):
    run = Inversion(resnet18_untrained, "layer1", chelsea32, [0, 3], get_preset("default", iters=40), "cpu")
    seen = []
    for snap in run.snapshots(every=10):
        seen.append(snap)
        assert snap.images.shape == (2, 3, 32, 32) and len(snap.embedding_l2) == 2 and len(snap.input_l2) == 2
        if snap.step == 20:
            break
    assert [s.step for s in seen] == [10, 20]
    assert seen[1].embedding_l2[0] < seen[0].embedding_l2[0] or seen[1].loss[0] < seen[0].loss[0]
    res = run.result()
    assert res.stopped_early and res.steps_done == 20
    assert torch.allclose(res.images, seen[-1].images)
    assert len(res.history["step"]) == 21 and len(res.history["embedding_l2"][0]) == 21


def test_result_carries_every_metric(resnet18_untrained, chelsea32):
    res = invert(resnet18_untrained, "maxpool", chelsea32, [0, 1, 2], get_preset("default", iters=30), "cpu")
    m = res.metrics
    for key in ("input_l2", "embedding_l2", "ssim", "psnr"):
        assert len(m[key]) == 3 and all(math.isfinite(v) for v in m[key])
    for key in ("reference_l2", "shift_input_l2", "seed_spread_input", "seed_spread_embedding", "clarity"):
        assert isinstance(m[key], float) and m[key] >= 0
    assert 0 <= m["clarity"] <= 1
    for kind in ("input", "embedding"):
        d = torch.tensor(m[f"seed_distances_{kind}"])
        assert d.shape == (3, 3) and torch.allclose(d, d.T) and torch.all(d.diagonal() == 0)
        assert d[torch.triu(torch.ones(3, 3), 1).bool()].mean().item() == pytest.approx(m[f"seed_spread_{kind}"])
    assert m["shift_input_l2"] == pytest.approx(math.sqrt(3 * 32 * 32) / 25, rel=0.05)
    assert res.images.min() >= 0 and res.images.max() <= 1  # default keeps the image in range
    assert res.to_json()["metrics"] == m.to_dict() and Metrics.from_dict(m.to_dict()) == m


def test_metrics_are_typed_and_a_misspelt_name_fails():
    m = Metrics.from_dict({"clarity": 0.5, "converged": [True]})  # a stored run without the newer fields
    assert m.clarity == 0.5 and m["converged"] == [True] and m.budget is None and m.get("budget", 7) == 7
    with pytest.raises(KeyError, match="clarty"):
        m["clarty"]
    with pytest.raises(KeyError, match="clarty"):
        m.get("clarty")
    with pytest.raises(KeyError, match="not a metric: clarty"):
        Metrics.from_dict({"clarty": 0.5})


def test_divergence_stops_with_a_clear_message(resnet18_untrained, chelsea32):
    p = get_preset("paper", iters=30, lr_start=5e3, lr_end=5e3, objective=[{"name": "l1", "weight": 1e3}])
    run = Inversion(resnet18_untrained, "layer4", chelsea32, [0], p, "cpu")
    seen = []
    with pytest.raises(DivergenceError, match="lower lr_start") as info:
        for snap in run.snapshots(every=1):
            seen.append(snap)
    assert info.value.last_snapshot is (seen[-1] if seen else None)
    if seen:
        assert torch.isfinite(info.value.last_snapshot.images).all()


def test_a_broken_checkpoint_that_outputs_nan_is_refused(chelsea32):
    from core.models.checkpoints import load_model

    model = load_model("resnet18", "untrained", 32)
    model.module.conv1.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(UserError, match="NaN/inf at layer1"):
        Inversion(model, "layer1", chelsea32, [0], DEFAULT, "cpu")
