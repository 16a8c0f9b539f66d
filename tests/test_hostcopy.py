"""Snapshots handed over once their host copy has landed (`SpeedOptions.async_snapshots`).

On CUDA the copy is asynchronous; the engine's handling of it (a snapshot shows its own step's values
however late it is handed over, the last one at once, divergence still caught) is the same code on the
CPU, where `lag_snapshots` is forced here and `HostCopy.ready` is made to say "not yet" on demand.
"""

from __future__ import annotations

import pytest
import torch

from core import Inversion, get_preset
from core.errors import DivergenceError
from core.engine.hostcopy import HostCopy
from core.engine.speed import SpeedOptions


def _snaps(run, every):
    out = []
    for snap in run.snapshots(every=every):
        out.append((run.steps_done, snap))  # when it was handed over, and what it shows
    return out


def test_a_host_copy_keeps_the_values_of_its_moment():
    t = torch.arange(6.0)
    copy = HostCopy({"t": t}, step=3)
    t.add_(100)
    assert copy.ready() and copy.meta == {"step": 3}
    assert torch.equal(copy.wait()["t"], torch.arange(6.0))


def test_option_means_nothing_off_cuda(resnet18_32, chelsea32):
    run = Inversion(resnet18_32, "layer1", chelsea32, [0], get_preset("default", iters=2), "cpu",
                    speed=SpeedOptions(async_snapshots=True))
    assert run.lag_snapshots is False and SpeedOptions.auto("cuda").async_snapshots is False


@pytest.mark.parametrize("not_ready_polls", [0, 3, 100])
def test_lagged_snapshots_show_their_own_step(resnet18_32, chelsea32, monkeypatch, not_ready_polls):
    """Handed over later (one step later when the copy lands at once; at the next snapshot's step when it
    never seems to), each snapshot holds exactly what the plain run's snapshot of that step holds; the last
    one comes at the end; the result is the same."""
    preset = get_preset("default", iters=23).replace(early_stop=False)
    plain = Inversion(resnet18_32, "layer2", chelsea32, [0, 1], preset, "cpu", speed=SpeedOptions.off())
    a = _snaps(plain, 5)
    real_ready = HostCopy.ready

    def ready(self):  # the count lives on the copy (an id() could be reused by the next copy)
        self.polls = getattr(self, "polls", 0) + 1
        return self.polls > not_ready_polls and real_ready(self)

    monkeypatch.setattr(HostCopy, "ready", ready)
    lagged = Inversion(resnet18_32, "layer2", chelsea32, [0, 1], preset, "cpu", speed=SpeedOptions.off())
    lagged.lag_snapshots = True
    b = _snaps(lagged, 5)
    assert [s.step for _, s in a] == [s.step for _, s in b] == [5, 10, 15, 20, 23]
    for (_, x), (_, y) in zip(a, b):
        assert torch.equal(x.images, y.images) and x.embedding_l2 == y.embedding_l2 and x.loss == y.loss
    handed = [when for when, _ in b]
    if not_ready_polls == 0:
        assert handed == [6, 11, 16, 21, 23]
    elif not_ready_polls == 3:
        assert handed == [9, 14, 19, 23, 23]  # polled at 6, 7, 8 (no), 9 (yes); step 20 goes with the last
    else:
        assert handed == [10, 15, 20, 23, 23]  # each waits for the next snapshot's step
    assert handed[-1] == 23 and all(w >= s.step for w, (_, s) in zip(handed, b))
    assert torch.equal(plain.result().images, lagged.result().images)


def test_divergence_is_caught_with_lagged_snapshots(resnet18_32, chelsea32):
    p = get_preset("paper", iters=30, lr_start=5e3, lr_end=5e3, objective=[{"name": "l1", "weight": 1e3}])
    run = Inversion(resnet18_32, "layer4", chelsea32, [0], p, "cpu")
    run.lag_snapshots = True
    seen = []
    with pytest.raises(DivergenceError, match="lower lr_start") as info:
        for snap in run.snapshots(every=1):
            seen.append(snap)
    assert info.value.last_snapshot is (seen[-1] if seen else None)
    assert all(torch.isfinite(s.images).all() for s in seen)
