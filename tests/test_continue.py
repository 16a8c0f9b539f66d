"""A continued run is a spec like any other: `RunSpec.then(steps)`.

It goes on from its parent's end with the optimiser's state carried over: from the parent's `Inversion`
while it is in memory, else by computing the parent again. Both ways give the same result, which the
cache stores under the continued spec's own key, so a link (the app's `cont=`) reproduces it.
"""

from __future__ import annotations

import pytest
import torch

from core import Inversion, UserError, get_preset
from core.jobs.pipeline import Callbacks, run
from core.jobs.spec import RunSpec
from core.jobs.cache import RunCache
from core.engine.speed import SpeedOptions
from core.jobs.executor import run_resilient


@pytest.fixture(autouse=True)
def fixed_threads(monkeypatch):
    """One thread count for every run here, set as a user sets it (`core.threads.requested`), so the policy never
    moves it: kernels round differently on another count, and a load-following run (or the start-of-run trial of
    a resumed one) would compare results within the stated tolerance, not bit for bit as these tests do."""
    before = torch.get_num_threads()
    monkeypatch.setenv("INVERSION_THREADS", "1")
    yield
    torch.set_num_threads(before)


def _spec(resnet18_32, chelsea32, iters=30, seeds=(0, 1)):
    return RunSpec.of(resnet18_32, "layer2", chelsea32, list(seeds), get_preset("default", iters=iters), "cpu")


def test_a_continuation_is_part_of_the_key(resnet18_32, chelsea32):
    spec = _spec(resnet18_32, chelsea32)
    assert "continued" not in spec.to_dict()  # a plain run's key is what it always was
    more = spec.then(20)
    assert more.continued == (20,) and more.to_dict()["continued"] == [20] and more.steps == 50
    assert len({spec.key(), more.key(), more.then(5).key(), spec.then(25).key()}) == 4
    assert more.parent() == spec and more.then(5).parent() == more
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserError, match="positive number of steps"):
            spec.then(bad)


def test_from_memory_and_recomputed_give_the_same_result_and_it_is_cached(resnet18_32, chelsea32, tmp_path):
    """Continuing the run still in memory, and continuing with the parent computed again (a link opened
    elsewhere), give bit-identical results, equal to running the parent and extending it by hand."""
    spec = _spec(resnet18_32, chelsea32)
    kept: dict = {}
    cache = RunCache(tmp_path / "a")
    base = run(spec, chelsea32, resnet18_32, cache=cache,
               callbacks=Callbacks(start=lambda inv: kept.update(run=inv)))
    from_memory = run(spec.then(20), chelsea32, resnet18_32, cache=cache, live=kept["run"])
    notes: list[str] = []
    recomputed = run(spec.then(20), chelsea32, resnet18_32, cache=RunCache(tmp_path / "b"),
                     callbacks=Callbacks(note=notes.append))
    by_hand = Inversion(resnet18_32, "layer2", chelsea32, [0, 1], spec.preset, "cpu")
    by_hand.run()
    by_hand.extend(20)
    expected = by_hand.run()
    assert from_memory.result.steps_done == recomputed.result.steps_done == base.result.steps_done + 20
    for job in (from_memory, recomputed):
        assert torch.equal(job.result.images, expected.images) and job.result.history == expected.history
        assert job.result.spec["continued"] == [20] and not job.cached
    assert notes and "computed the 30-step run again first" in notes[0]
    again = run(spec.then(20), chelsea32, resnet18_32, cache=cache)
    assert again.cached and torch.equal(again.result.images, expected.images)
    assert run(spec, chelsea32, resnet18_32, cache=RunCache(tmp_path / "b")).cached  # the recomputed parent: stored


def test_a_chain_of_continuations(resnet18_32, chelsea32, tmp_path):
    spec = _spec(resnet18_32, chelsea32, iters=20)
    first = run(spec.then(10), chelsea32, resnet18_32, cache=RunCache(tmp_path / "a"))
    chained = run(spec.then(10).then(5), chelsea32, resnet18_32, cache=RunCache(tmp_path / "a"), live=first.run)
    from_scratch = run(spec.then(10).then(5), chelsea32, resnet18_32, cache=RunCache(tmp_path / "b"))
    assert chained.result.steps_done == from_scratch.result.steps_done == first.result.steps_done + 5
    assert torch.equal(chained.result.images, from_scratch.result.images)
    assert chained.result.history == from_scratch.result.history


def test_a_stopped_run_finishes_as_if_never_stopped(resnet18_32, chelsea32, tmp_path):
    """Stop part-way, then go on with the same spec: the same images, history and stopping step as one
    uninterrupted run (the early-convergence rule's state carries on too)."""
    spec = _spec(resnet18_32, chelsea32, iters=240)
    whole = run(spec, chelsea32, resnet18_32, cache=RunCache(tmp_path / "a"))
    kept: dict = {}

    def stop(snap):
        if snap.step >= 60:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(spec, chelsea32, resnet18_32, cache=RunCache(tmp_path / "b"),
            callbacks=Callbacks(snapshot=stop, start=lambda inv: kept.update(run=inv)))
    assert 60 <= kept["run"].steps_done < whole.result.steps_done and not kept["run"].finished
    finished = run(spec, chelsea32, resnet18_32, cache=RunCache(tmp_path / "b"), live=kept["run"])
    assert finished.result.steps_done == whole.result.steps_done
    assert finished.result.metrics["stop_reason"] == whole.result.metrics["stop_reason"]
    assert torch.equal(finished.result.images, whole.result.images) and finished.result.history == whole.result.history
    assert run(spec, chelsea32, resnet18_32, cache=RunCache(tmp_path / "b")).cached


def test_a_run_split_into_seed_batches_keeps_its_optimiser_state(resnet18_32, chelsea32):
    """Chunks (a GPU's memory plan) hand their optimiser state to the whole run, so a Continue goes on from
    each seed's own Adam moments and step count, not from a fresh Adam: the whole run's state is, slot by
    slot, the state of the seed's own run (a chunk of one, computed again here)."""
    preset = get_preset("default", iters=30).replace(early_stop=False)
    kept: dict = {}
    _, info = run_resilient(resnet18_32, "layer2", chelsea32, [0, 1, 2], preset, "cpu", speed=SpeedOptions.off(),
                            max_batch=1, on_start=lambda inv: kept.update(run=inv))
    assert info.chunks == [[0], [1], [2]]
    split = kept["run"]
    state = split._opt.state[split.state.tensors[0]]
    for i, seed in enumerate([0, 1, 2]):
        alone = Inversion(resnet18_32, "layer2", chelsea32, [seed], preset, "cpu", speed=SpeedOptions.off())
        alone.run()
        own = alone._opt.state[alone.state.tensors[0]]
        assert torch.equal(split.state.tensors[0][i], alone.state.tensors[0][0])
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[name][i], own[name][0])
        assert float(state["step"]) == float(own["step"]) == 30


def test_cli_continue(tmp_path, capsys):
    from core.cli.main import main

    args = ["invert", "--model", "resnet18", "--image", "assets/chelsea.png", "--size", "32", "--seeds", "1",
            "--layer", "layer1", "--iters", "20", "--quiet", "--continue", "10,5", "--out", str(tmp_path / "o")]
    assert main(args) in (0, None)
    out = capsys.readouterr().out
    assert "the 20-step run, then continued by 10 + 5" in out
    import json

    saved = json.loads((tmp_path / "o" / "result.json").read_text())
    assert saved["spec"]["continued"] == [10, 5]
    assert main(args[:-4] + ["--continue", "0", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--continue" in err[0]


def test_a_run_that_is_not_this_specs_is_never_gone_on_from(resnet18_32, chelsea32, tmp_path):
    """`live` is used only when it is this spec's own stopped run or its parent's finished run; anything else (a
    stopped inner phase of a chain, another spec's run, a finished run of the spec itself, a run split into seed
    batches not all done) is ignored and the result computed as if it were absent."""
    spec = _spec(resnet18_32, chelsea32, iters=20)
    target = spec.then(10).then(5)
    expected = run(target, chelsea32, resnet18_32, use_cache=False).result
    seen: list = []

    def stop(snap):
        if snap.step >= 25:  # inside the +10 phase of the chain
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(target, chelsea32, resnet18_32, use_cache=False,
            callbacks=Callbacks(snapshot=stop, start=seen.append))
    inner = seen[-1]
    assert inner.spec == spec.then(10) and not inner.finished  # the stopped run says what it was computing
    ran: list = []
    plain = run(spec, chelsea32, resnet18_32, use_cache=False, callbacks=Callbacks(start=ran.append)).result
    again = run(spec, chelsea32, resnet18_32, use_cache=False, live=ran[-1]).result  # finished: nothing to go on
    assert ran[-1].finished and torch.equal(again.images, plain.images) and again.steps_done == plain.steps_done
    other = Inversion(resnet18_32, "layer2", chelsea32, [0, 1], spec.preset, "cpu")
    other.run()
    other.spec = _spec(resnet18_32, chelsea32, iters=25)
    for live in (inner, other):
        got = run(target, chelsea32, resnet18_32, use_cache=False, live=live).result
        assert torch.equal(got.images, expected.images) and got.steps_done == expected.steps_done
    chunked = Inversion(resnet18_32, "layer2", chelsea32, [0, 1], spec.preset, "cpu")
    chunked.spec, chunked.incomplete = spec, True
    whole = run(spec, chelsea32, resnet18_32, use_cache=False, live=chunked).result
    assert whole.steps_done >= 1 and chunked.steps_done == 0  # computed afresh, the half-absorbed run untouched


def test_continuing_needs_every_seed_in_one_batch(resnet18_32, chelsea32, monkeypatch):
    """A continuation runs all seeds as one batch: a device that fits fewer is told so before any work."""
    import core.jobs.pipeline as pipeline

    monkeypatch.setattr(pipeline, "max_batch_for", lambda *a, **k: 1)
    with pytest.raises(UserError, match="continuing runs all 2 seeds in one batch.*at most 1 seeds"):
        run(_spec(resnet18_32, chelsea32).then(5), chelsea32, resnet18_32, use_cache=False)
