"""The decoder's parts (objective terms, parameterisations, transforms), the convergence rule,
continuing a run, clarity, and convergence of the default recipe at small scale."""

from __future__ import annotations

import pytest
import torch

from core.recipe.components import build, names, spec
from core.engine.loop import Inversion, invert, start_images
from core.errors import UserError
from core.measures import score
from core.recipe.objectives import Target
from core.recipe.presets import PAPER, get_preset
from core.priors import blur
from core.recipe.transforms import jitter_offsets
from core.engine.run_reading import status

# ----------------------------------------------------------------------------- objective terms


def _target(y):
    return Target.of(y)


def test_embedding_terms_are_zero_at_the_target_and_positive_elsewhere():
    y = torch.randn(1, 8, 4, 4)
    out = torch.cat([y, y + 0.1, 2 * y])
    img = torch.rand(3, 3, 8, 8)
    for name in ("l1", "l2", "cosine"):
        v = build("objective", {"name": name})(out, _target(y), img)
        assert v.shape == (3,) and v[0].abs() < 1e-6 and v[1] > 0
    assert build("objective", "cosine")(out, _target(y), img)[2].abs() < 1e-6  # direction only
    rel = build("objective", {"name": "l1", "relative": True})(out, _target(y), img)
    assert rel[1] == pytest.approx(0.1 * y.numel() / y.abs().sum().item(), rel=1e-4)


def test_image_priors():
    flat = torch.full((2, 3, 8, 8), 0.3)
    tv = build("objective", "tv")
    assert torch.all(tv(None, None, flat) == 0)
    assert torch.all(tv(None, None, torch.rand(2, 3, 8, 8)) > 0)
    a = build("objective", {"name": "alpha_norm", "alpha": 6.0})
    assert a(None, None, torch.full((1, 3, 4, 4), 0.5)).item() == 0
    assert a(None, None, torch.ones(1, 3, 4, 4)).item() == pytest.approx(1.0)
    assert build("objective", "pixel_l2")(None, None, torch.full((1, 3, 4, 4), 0.5)).item() == 0


def test_unknown_components_and_parameters_are_clear_errors():
    with pytest.raises(UserError, match="unknown objective 'ssim'.*choose one of"):
        build("objective", {"name": "ssim"})
    with pytest.raises(UserError, match="unknown parameter\\(s\\) sigma for param 'fourier'"):
        build("param", {"name": "fourier", "sigma": 1})
    with pytest.raises(UserError, match="weight must be a finite number"):
        build("objective", {"name": "l1", "weight": float("nan")})
    assert {"pixels", "fourier", "coarse_to_fine"} <= set(names("param"))
    assert spec(build("transform", "jitter")) == {"name": "jitter", "pixels": 2}


# ----------------------------------------------------------------------------- parameterisations


@pytest.mark.parametrize("param", ["pixels", "fourier", "coarse_to_fine"])
def test_every_parameterisation_starts_at_the_seeds_start(param):
    start = start_images([0, 1], 32, PAPER)
    state = build("param", param).create(start)
    assert state.image().shape == start.shape
    assert torch.allclose(state.image(), start, atol=1e-4)


def test_fourier_image_of_a_zero_spectrum_is_flat():
    state = build("param", "fourier").create(torch.full((1, 3, 16, 16), 0.5))
    with torch.no_grad():
        state.spectrum.zero_()
    img = state.image()
    assert torch.allclose(img, torch.full_like(img, 0.5), atol=1e-6)


def test_coarse_to_fine_holds_finer_levels_until_their_step():
    start = start_images([0], 32, PAPER)
    state = build("param", {"name": "coarse_to_fine", "levels": 3, "level_steps": 10}).create(start)
    state.image().sum().backward()
    state.before_step(0)
    assert state.levels[0].grad.abs().sum() > 0  # the coarsest level moves from step 0
    assert state.levels[-1].grad.abs().sum() == 0  # the finest waits until step 20
    state.image().sum().backward()
    state.before_step(20)
    assert state.levels[-1].grad.abs().sum() > 0


# ----------------------------------------------------------------------------- transforms


def test_jitter_is_a_roll_that_can_be_undone_and_depends_on_the_step_only():
    img = torch.rand(2, 3, 16, 16)
    j = build("transform", {"name": "jitter", "pixels": 3})
    dy, dx = jitter_offsets(7, 3)
    assert max(abs(dy), abs(dx)) <= 3 and jitter_offsets(7, 3) == (dy, dx)
    assert torch.equal(torch.roll(j.forward(img, 7), shifts=(-dy, -dx), dims=(-2, -1)), img)
    assert torch.equal(j.forward(img[:1], 7), j.forward(img, 7)[:1])  # same shift alone or in a batch


def test_blur_schedule_and_clamp_act_on_the_pixels():
    b = build("transform", {"name": "blur", "sigma_start": 2.0, "sigma_end": 0.0})
    assert b.sigma(0, 100) == 2.0 and b.sigma(50, 100) == 1.0 and b.sigma(150, 100) == 0.0
    x = torch.rand(1, 3, 16, 16)
    y = x.clone()
    b.post(y, 0, 100)
    assert torch.allclose(y, blur(x, 3, 2.0))
    c = torch.tensor([[-1.0, 0.5, 2.0]]).view(1, 3, 1, 1)
    build("transform", "clamp").post(c, 0, 1)
    assert c.flatten().tolist() == [0.0, 0.5, 1.0]


# ----------------------------------------------------------------------------- the paper, exactly


def test_paper_preset_equals_an_independent_plain_loop(resnet18_untrained, chelsea32):
    """The engine's `paper` against the script's loop written plainly (benchmarks/baselines.py:
    torchvision's blur, batch 1, no components): the same images."""
    from benchmarks.baselines import paper_style

    iters = 25
    probe = Inversion(resnet18_untrained, "layer1", chelsea32, [0], PAPER, "cpu")
    _, finals, _ = paper_style(resnet18_untrained, "layer1", probe.y, [0, 3], 32, iters, "cpu")
    for i, seed in enumerate((0, 3)):  # batch 1 like the script: the L1 sign gradient amplifies batched rounding
        res = invert(resnet18_untrained, "layer1", chelsea32, [seed], PAPER.replace(iters=iters), "cpu")
        assert torch.allclose(res.images[0], finals[i], atol=1e-5), (res.images[0] - finals[i]).abs().max()


# ----------------------------------------------------------------------------- stopping and continuing


def test_early_stop_ends_before_the_budget_once_converged(resnet18_untrained, chelsea32):
    p = get_preset("default", iters=400)
    res = invert(resnet18_untrained, "conv1", chelsea32, [0, 1], p, "cpu")
    assert res.metrics["stop_reason"] == "converged" and res.steps_done < 400
    assert all(res.metrics["converged"]) and not res.stopped_early
    full = invert(resnet18_untrained, "conv1", chelsea32, [0], p.replace(iters=60, early_stop=False), "cpu")
    assert full.steps_done == 60 and full.metrics["stop_reason"] == "budget"


def test_continue_gives_the_images_of_one_longer_run(resnet18_untrained, chelsea32):
    p = get_preset("default", early_stop=False, lr_start=0.05, lr_end=0.05,
                   transforms=[{"name": "blur", "sigma_start": 0.5, "sigma_end": 0.5}, {"name": "clamp"}])
    a = Inversion(resnet18_untrained, "layer1", chelsea32, [0, 1], p.replace(iters=20), "cpu")
    a.run()
    a.extend(15)
    ra = a.run()
    rb = invert(resnet18_untrained, "layer1", chelsea32, [0, 1], p.replace(iters=35), "cpu")
    assert ra.steps_done == rb.steps_done == 35
    assert torch.allclose(ra.images, rb.images, atol=1e-4)
    assert len(ra.history["step"]) == 36


def test_a_stopped_run_can_be_continued(resnet18_untrained, chelsea32):
    run = Inversion(resnet18_untrained, "layer1", chelsea32, [0], get_preset("default", iters=50), "cpu")
    for snap in run.snapshots(10):
        if snap.step == 10:
            break
    assert run.result().stopped_early
    run.extend(5)
    res = run.run()
    assert res.steps_done == 15 and not res.stopped_early
    with pytest.raises(UserError, match="positive number of steps"):
        run.extend(0)


# ----------------------------------------------------------------------------- clarity


def test_clarity_is_one_for_the_image_zero_for_the_start_and_falls_along_ladders(chelsea64):
    start = start_images([0], 64, PAPER)[0]
    assert score(chelsea64, chelsea64, start)["clarity"] == 1.0
    assert score(start, chelsea64, start)["clarity"] == pytest.approx(0.0, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(chelsea64.shape, generator=g)
    ladder = [score((chelsea64 + s * noise).clamp(0, 1), chelsea64, start)["clarity"] for s in (0.02, 0.05, 0.1, 0.2, 0.3)]
    assert all(a > b for a, b in zip(ladder, ladder[1:])), ladder
    blurred = [score(blur(chelsea64[None], 7, s)[0], chelsea64, start)["clarity"] for s in (0.5, 1.0, 1.5, 2.5, 4.0)]
    assert all(a > b for a, b in zip(blurred, blurred[1:])), blurred


# ----------------------------------------------------------------------------- honest numbers


def test_status_has_a_borderline_band_and_names_degenerate_layers():
    assert status({"converged": [True, True], "mg_over_mr": [0.5, 0.9], "degenerate": False}) == "converged"
    assert status({"converged": [True, False], "mg_over_mr": [0.5, 1.1], "degenerate": False}) == "borderline"
    assert status({"converged": [False, False], "mg_over_mr": [2.0, 3.0], "degenerate": False}) == "not converged"
    assert status({"converged": [False], "mg_over_mr": None, "degenerate": True}) == "degenerate"


def test_signal_health_counts_flat_units(resnet18_untrained, chelsea32):
    p = get_preset("default", iters=1)
    before = invert(resnet18_untrained, "bn1", chelsea32, [0], p, "cpu").metrics["signal"]
    after = invert(resnet18_untrained, "relu", chelsea32, [0], p, "cpu").metrics["signal"]
    assert before["flat_fraction"] is None and before["activations"] == 0  # no non-linearity yet
    assert 0.2 < after["flat_fraction"] < 0.8 and after["saturated_fraction"] == 0  # ReLU zeroes about half
    assert after["rms"] > 0


@pytest.mark.parametrize("arch,ck", [("resnet18", "untrained"), ("efficientnet_lite0", "untrained"),
                                     ("efficientnet_lite0", "trained")])
def test_default_converges_at_every_stop_at_small_scale(arch, ck, chelsea32):
    from core.models.checkpoints import load_model
    from core.studies.curve import resolve_layers

    model = load_model(arch, ck, 32)
    bad = []
    for _, node, _ in resolve_layers(model, "stops"):
        res = invert(model, node, chelsea32, [0, 1], get_preset("default"), "cpu")
        if not all(res.metrics["converged"]):
            bad.append((node, res.metrics["mg_over_mr"]))
    assert not bad, bad
