"""CUDA-graph step (`SpeedOptions.cuda_graphs`): control flow and the engine's use of static buffers.

The real recording needs CUDA (tests/test_cuda.py). Here `record` is a CPU stand-in with the semantics of
`torch.cuda.make_graphed_callables` that matter to the engine: the output is one static buffer the next
call overwrites, and the backward writes into one static input-gradient buffer. A run through it must equal
the plain run exactly, so the engine provably uses each step's output before the next one.
"""

from __future__ import annotations

import pytest
import torch

from core import Inversion, get_preset
from core.engine.cudagraphs import MAX_SHAPES, GraphedEncoder
from core.engine.speed import SpeedOptions

SIZE = 32


def static_buffers_recorder(calls: list):
    """A stand-in for make_graphed_callables: the same aliasing of outputs and input gradients, on any device
    (one output or a list of them, as a batched curve's encoder returns)."""

    def record(fn, sample_args):
        (sample,) = sample_args
        calls.append(tuple(sample.shape))
        static_in = sample.detach().clone()
        state: dict = {}

        class Replay(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                static_in.copy_(x)
                with torch.enable_grad():
                    leaf = static_in.detach().requires_grad_(True)
                    out = fn(leaf)
                outs = list(out) if isinstance(out, (list, tuple)) else [out]
                state["leaf"], state["outs"], state["many"] = leaf, outs, isinstance(out, (list, tuple))
                if "static_outs" not in state:
                    state["static_outs"] = [torch.empty_like(o) for o in outs]
                for buf, o in zip(state["static_outs"], outs):
                    buf.copy_(o.detach())
                return tuple(buf.detach() for buf in state["static_outs"])  # alias the buffers, as a graph's do

            @staticmethod
            def backward(ctx, *grads):
                (g,) = torch.autograd.grad(state["outs"], state["leaf"], grads)
                if "static_grad" not in state:
                    state["static_grad"] = torch.empty_like(g)
                state["static_grad"].copy_(g)
                return state["static_grad"].detach()

        def call(x):
            outs = Replay.apply(x)
            return list(outs) if state["many"] else outs[0]

        return call

    return record


def _preset(iters):
    return get_preset("default", iters=iters).replace(early_stop=False)


def test_option_means_nothing_off_cuda(resnet18_32, chelsea32):
    run = Inversion(resnet18_32, "layer1", chelsea32, [0], _preset(2), "cpu", speed=SpeedOptions(cuda_graphs=True))
    assert run.step_encoder is None
    assert SpeedOptions.auto("cuda").cuda_graphs is False  # opt-in until a GPU measures it
    assert SpeedOptions(cuda_graphs=True).to_dict()["cuda_graphs"] is True


def test_engine_through_static_buffers_equals_the_plain_run(resnet18_32, chelsea32):
    """The engine's step through graph-like static buffers: the same images, history and metrics, bit for bit;
    one recording for the run's one shape, then one replay per step."""
    preset, seeds = _preset(12), [0, 1]
    plain = Inversion(resnet18_32, "layer2", chelsea32, seeds, preset, "cpu", speed=SpeedOptions.off())
    calls: list = []
    graphed = Inversion(resnet18_32, "layer2", chelsea32, seeds, preset, "cpu", speed=SpeedOptions.off())
    graphed.step_encoder = GraphedEncoder(graphed.encoder, record=static_buffers_recorder(calls))
    a, b = plain.run(every=5), graphed.run(every=5)
    assert torch.equal(a.images, b.images)
    assert a.history == b.history and a.metrics == b.metrics
    assert calls == [(2, 3, SIZE, SIZE)]
    assert graphed.step_encoder.recorded == 1 and graphed.step_encoder.replays == 12
    assert not graphed.step_encoder._graphs  # released at the end: a run kept for Continue holds no graph memory
    graphed.extend(3)
    graphed.run()  # a Continue records again
    assert graphed.step_encoder.recorded == 2 and graphed.step_encoder.replays == 15


def test_no_grad_calls_and_extra_shapes_stay_eager(resnet18_32):
    from core.models.encoder import Encoder

    enc = Encoder(resnet18_32, "layer1")
    calls: list = []
    g = GraphedEncoder(enc, record=static_buffers_recorder(calls))
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(g(x), enc(x))  # an evaluation, not a step: never recorded
    assert g(x).shape == enc(x).shape and calls == []  # an input without grad: eager too
    for k in range(1, MAX_SHAPES + 1):
        xk = torch.rand(k, 3, SIZE, SIZE, requires_grad=True)
        assert torch.allclose(g(xk), enc(xk), atol=1e-6)
    g(torch.rand(1, 3, SIZE, SIZE, requires_grad=True))  # a shape it has: replayed
    assert g.recorded == MAX_SHAPES and len(g._graphs) == MAX_SHAPES
    g(torch.rand(MAX_SHAPES + 1, 3, SIZE, SIZE, requires_grad=True))  # one more: the oldest goes
    assert g.recorded == MAX_SHAPES + 1 and len(g._graphs) == MAX_SHAPES
    assert (1, 3, SIZE, SIZE) not in [key[0] for key in g._graphs]
    assert g.replays == MAX_SHAPES + 2


def test_a_failed_recording_falls_back_for_good(resnet18_32, chelsea32):
    """A recording that raises (a capture error on a busy GPU) leaves the run going, eagerly, with the reason."""
    attempts = []

    def broken(fn, args):
        attempts.append(1)
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    preset, seeds = _preset(6), [0]
    plain = Inversion(resnet18_32, "layer1", chelsea32, seeds, preset, "cpu", speed=SpeedOptions.off()).run()
    run = Inversion(resnet18_32, "layer1", chelsea32, seeds, preset, "cpu", speed=SpeedOptions.off())
    run.step_encoder = GraphedEncoder(run.encoder, record=broken)
    res = run.run()
    assert torch.equal(res.images, plain.images)
    assert attempts == [1]  # not retried every step
    assert run.step_encoder.failed == "RuntimeError: operation not permitted when stream is capturing"
    assert run.step_encoder.replays == 0


def test_autocast_is_recorded_inside_with_its_cache_off(resnet18_32):
    """Graphs need autocast's weight cache off; the dtype is applied inside the recorded function."""
    from core.models.encoder import Encoder

    seen = []

    def record(fn, args):
        def call(x):
            out = fn(x)
            seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
            return out
        return call

    g = GraphedEncoder(Encoder(resnet18_32, "layer1"), torch.bfloat16, record=record)
    g(torch.rand(1, 3, SIZE, SIZE, requires_grad=True))
    assert seen == [(False, torch.bfloat16)]  # autocast only inside: the bf16 output came from the encoder


def test_batched_curve_through_static_buffers_equals_the_plain_one(resnet18_32, chelsea32, monkeypatch):
    """`run_together` with graph-like static buffers: one recording per set of stops still in the batch (the
    deeper one evicted), and every stop's result equal to the plain batched run's, bit for bit."""
    from core.engine.multistop import run_together

    preset = get_preset("default", iters=60).replace(schedule_steps=20, stop_window=10)
    layers = ["layer1", "layer2", "layer3"]

    def runs():
        return [Inversion(resnet18_32, layer, chelsea32, [0, 1], preset, "cpu", speed=SpeedOptions.off())
                for layer in layers]

    plain = runs()
    run_together(plain, resnet18_32, every=10)
    calls: list = []
    made: list = []

    def step_encoder(self, encoder, device, keep=None):
        made.append(GraphedEncoder(encoder, record=static_buffers_recorder(calls), keep=keep or MAX_SHAPES))
        return made[-1]

    monkeypatch.setattr(SpeedOptions, "step_encoder", step_encoder)
    graphed = runs()
    run_together(graphed, resnet18_32, every=10)
    for a, b in zip(plain, graphed):
        ra, rb = a.result(), b.result()
        assert torch.equal(ra.images, rb.images) and ra.history == rb.history, a.stop.node
        assert ra.steps_done == rb.steps_done
    shared = [g for g in made if g.keep == 1]  # (each Inversion also made its own, unused here)
    assert shared and all(len(g._graphs) <= 1 for g in shared)
    assert len({r.steps_done for r in plain}) > 1  # stops left the batch at different steps
    assert calls[0] == (6, 3, SIZE, SIZE)  # all three stops' two seeds at first
    assert sum(g.replays for g in shared) == max(r.steps_done for r in plain)  # one replay per shared step
    assert sum(g.recorded for g in shared) == len(calls) == len({r.steps_done for r in plain})


def test_out_of_memory_while_recording_is_raised_for_the_batch_to_halve(resnet18_32):
    """Out of memory while recording is the batch's size, not the graphs' fault: it reaches run_resilient
    (which halves the batch) instead of turning the graphs off."""
    from core.models.encoder import Encoder

    def oom(fn, args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")

    g = GraphedEncoder(Encoder(resnet18_32, "layer1"), record=oom)
    with pytest.raises(torch.OutOfMemoryError):
        g(torch.rand(2, 3, SIZE, SIZE, requires_grad=True))
    assert g.failed is None and not g._graphs
