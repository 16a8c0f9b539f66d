"""A curve as one optimisation (`core.engine.multistop`, `core.jobs.pipeline.run_stops`): every stop's seeds in one batch
equal the stops run one after another, stop by stop and metric by metric."""

from __future__ import annotations

import json

import pytest
import torch

from core import get_preset, load_model
from core.studies.curve import clarity_curve
from core.models.encoder import Encoder, depth_stops
from core.jobs.spec import RunSpec
from core.jobs.pipeline import run, run_stops
from core.engine.multistop import MultiStopEncoder, NotCutPoints, cut_points
from core.jobs.cache import RunCache
from core.devices import cpu_cores
from core.engine.speed import SpeedOptions

# schedules over 40 steps, then the convergence rule every 10: stops end at different steps, leaving the batch
SHORT = get_preset("default").replace(iters=120, schedule_steps=40, stop_window=10)
# one thread count for both ways, the machine's cores (what the automatic pick takes on an idle machine): the pick
# may differ between two runs on a busy machine, and another count rounds differently (amplified over the steps).
# With 1 thread, Lite0's kernels round differently with the batch's size: SSIM differed by up to 1.03e-3 here.
SAME = SpeedOptions(threads=cpu_cores())


def _layout(counts):
    """Where each stop's samples sit in the batch: deepest stop first."""
    start, out = 0, {}
    for j in reversed(range(len(counts))):
        out[j] = (start, start + counts[j])
        start += counts[j]
    return out


@pytest.mark.parametrize("arch,size", [("resnet18", 32), ("efficientnet_lite0", 32), ("vgg16", 32),
                                       ("vit_b_16", 32)])
def test_each_stop_gets_its_own_samples_activations(arch, size):
    model = load_model(arch, "untrained", size)
    nodes, alone = cut_points(model, [s.node for s in depth_stops(model)], size)
    assert len(nodes) >= 8
    enc = MultiStopEncoder(model, nodes, size=size)
    counts = [(j % 3) for j in range(len(nodes))]  # 0, 1 or 2 samples: a stop that has left, small groups
    x = torch.rand(sum(counts), 3, size, size, generator=torch.Generator().manual_seed(0))
    where = _layout(counts)
    with torch.no_grad():
        outs = enc(x, counts)
        for j, node in enumerate(enc.nodes):
            a, b = where[j]
            assert outs[j].shape[0] == counts[j]
            if counts[j]:
                ref = Encoder(model, node)(x[a:b])
                torch.testing.assert_close(outs[j], ref, rtol=1e-4, atol=1e-5)


def test_a_stop_that_a_later_node_bypasses_is_found_and_runs_alone():
    model = load_model("vit_b_16", "untrained", 32)
    nodes = [s.node for s in depth_stops(model)]
    shared, alone = cut_points(model, nodes, 32)
    assert alone == ["conv_proj"]  # its reshape reads x.shape[0], taken before conv_proj
    assert shared == [n for n in nodes if n != "conv_proj"]
    with pytest.raises(NotCutPoints, match="conv_proj"):
        MultiStopEncoder(model, nodes, size=32)


def test_counts_must_split_the_batch():
    model = load_model("resnet18", "untrained", 32)
    enc = MultiStopEncoder(model, ["layer1", "layer2"], size=32)
    with pytest.raises(ValueError, match="do not split"):
        enc(torch.rand(3, 3, 32, 32), [1, 1])


def _close(a, b, tol=1e-3):
    ma, mb = a.metrics, b.metrics
    assert a.steps_done == b.steps_done and ma["stop_reason"] == mb["stop_reason"]
    assert abs(ma["clarity"] - mb["clarity"]) <= tol
    for key in ("ssim", "clarity_per_seed"):
        assert max(abs(x - y) for x, y in zip(ma[key], mb[key])) <= tol, key
    for key in ("embedding_l2", "input_l2"):
        assert max(abs(x - y) / max(abs(x), 1e-9) for x, y in zip(ma[key], mb[key])) <= tol, key
    assert float((a.images - b.images).abs().max()) <= tol


@pytest.mark.parametrize("arch,checkpoint,layers,iters", [
    ("resnet18", "untrained", None, 120), ("efficientnet_lite0", "trained", None, 120)])
def test_batched_curve_equals_the_sequential_curve(arch, checkpoint, layers, iters, chelsea32):
    """Same seeds, every metric within 1e-3; stops leave the batch at different steps (early stop)."""
    kw = dict(seeds=[0, 3], preset=SHORT.replace(iters=iters), device="cpu", use_cache=False, speed=SAME)
    one_by_one = clarity_curve(arch, chelsea32, [checkpoint], layers, batch_stops="off", **kw)
    together = clarity_curve(arch, chelsea32, [checkpoint], layers, batch_stops="on", **kw)
    assert [(r.layer, r.depth) for r in together] == [(r.layer, r.depth) for r in one_by_one]
    for a, b in zip(one_by_one, together):
        _close(a.result, b.result)
    if arch == "resnet18":  # shallow stops converge and leave the batch sooner than deep ones
        assert len({r.result.steps_done for r in together}) > 1, [r.result.steps_done for r in together]


def test_vit_batched_differs_no_more_than_splitting_its_seeds(chelsea32):
    """A ViT's matmuls round differently with the batch's size (tokens x batch rows): one stop's seeds run as
    one batch or one by one already differ in m_g by ~2e-3 after 20 steps. Batching the stops must stay
    within that (twice it, or 1e-3), with clarity within 1e-3; conv_proj (not a cut point) runs alone."""
    from core import Inversion

    layers = ["conv_proj", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_5"]
    preset = SHORT.replace(iters=20)
    kw = dict(seeds=[0, 3], preset=preset, device="cpu", use_cache=False, speed=SAME)
    one_by_one = clarity_curve("vit_b_16", chelsea32, ["untrained"], layers, batch_stops="off", **kw)
    together = clarity_curve("vit_b_16", chelsea32, ["untrained"], layers, batch_stops="on", **kw)
    model = load_model("vit_b_16", "untrained", 32)

    def rel(x, y):
        return max(abs(u - v) / max(abs(u), 1e-9) for u, v in zip(x, y))

    for a, b in zip(one_by_one, together):
        ma, mb = a.result.metrics, b.result.metrics
        split = [Inversion(model, a.layer, chelsea32, [s], preset, "cpu", speed=SAME).run().metrics["embedding_l2"][0]
                 for s in (0, 3)]
        assert rel(ma["embedding_l2"], mb["embedding_l2"]) <= max(1e-3, 2 * rel(ma["embedding_l2"], split)), a.layer
        assert abs(ma["clarity"] - mb["clarity"]) <= 1e-3 and a.result.steps_done == b.result.steps_done
    assert one_by_one[0].result.metrics["embedding_l2"] == together[0].result.metrics["embedding_l2"]  # alone


def test_auto_is_off_on_the_cpu_and_bad_values_are_refused(chelsea32):
    from core.studies.curve import batched
    from core.errors import UserError

    assert not batched("auto", torch.device("cpu")) and batched("auto", torch.device("cuda"))
    assert batched("on", torch.device("cpu")) and not batched("off", torch.device("cuda"))
    with pytest.raises(UserError, match="batch_stops"):
        clarity_curve("resnet18", chelsea32, ["untrained"], ["layer1"], batch_stops="yes", use_cache=False)


def test_run_stops_uses_the_cache_and_stores_under_the_sequential_keys(tmp_path, chelsea32, resnet18_untrained):
    model = resnet18_untrained
    cache = RunCache(tmp_path / "runs")
    preset = SHORT.replace(iters=20)
    specs = [RunSpec.of(model, n, chelsea32, [0, 1], preset, "cpu") for n in ("layer1", "layer2", "layer3")]
    first = run(specs[1], chelsea32, model, cache=cache)  # one stop already done, one by one
    notes = []
    from core.jobs.pipeline import Callbacks

    jobs = run_stops(specs, chelsea32, model, cache=cache, callbacks=Callbacks(note=notes.append))
    assert [j.cached for j in jobs] == [False, True, False]
    assert jobs[1].result.metrics["clarity"] == first.result.metrics["clarity"]
    assert "one batch" in jobs[0].notes[0] and jobs[0].result.spec["layer"] == "layer1"
    again = [run(s, chelsea32, model, cache=cache) for s in specs]  # the sequential pipeline finds them all
    assert all(j.cached for j in again)


def test_run_stops_refuses_mixed_runs(chelsea32, resnet18_untrained):
    from core.errors import UserError

    a = RunSpec.of(resnet18_untrained, "layer1", chelsea32, [0, 1], SHORT, "cpu")
    b = RunSpec.of(resnet18_untrained, "layer2", chelsea32, [0, 2], SHORT, "cpu")
    with pytest.raises(UserError, match="only in their layer"):
        run_stops([a, b], chelsea32, resnet18_untrained, use_cache=False)
    with pytest.raises(UserError, match="twice"):
        run_stops([a, a], chelsea32, resnet18_untrained, use_cache=False)


def test_out_of_memory_in_the_batch_runs_the_stops_one_by_one(monkeypatch, chelsea32, resnet18_untrained):
    import core.jobs.pipeline

    def no_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(core.jobs.pipeline, "run_together", no_memory)
    notes = []
    from core.jobs.pipeline import Callbacks

    preset = SHORT.replace(iters=12)
    specs = [RunSpec.of(resnet18_untrained, n, chelsea32, [0, 1], preset, "cpu") for n in ("layer1", "layer2")]
    jobs = run_stops(specs, chelsea32, resnet18_untrained, use_cache=False, callbacks=Callbacks(note=notes.append))
    assert len(jobs) == 2 and all(j.result.steps_done == 12 for j in jobs)
    assert any("out of memory" in n and "one by one" in n for n in notes)
    alone = run(specs[0], chelsea32, resnet18_untrained, use_cache=False)
    _close(jobs[0].result, alone.result, tol=1e-6)


def test_cli_curve_batch_stops_on_matches_off(tmp_path, chelsea_path):
    from core.cli.main import main

    out = {}
    for mode in ("off", "on"):
        assert main(["curve", "--model", "resnet18", "--checkpoints", "untrained", "--layers", "conv1,layer1,layer3",
                     "--image", str(chelsea_path), "--size", "32", "--seeds", "2", "--iters", "16", "--device", "cpu",
                     "--out", str(tmp_path / mode), "--quiet", "--no-cache", "--batch-stops", mode]) == 0
        out[mode] = json.loads((tmp_path / mode / "curve.json").read_text())
    assert out["on"]["batch_stops"] == "on"
    for a, b in zip(out["off"]["rows"], out["on"]["rows"]):
        assert a["layer"] == b["layer"] and abs(a["clarity"] - b["clarity"]) <= 1e-3
