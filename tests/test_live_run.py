"""The rules of a run a person drives (`core.jobs.LiveRun`), without Streamlit.

An interruption (a page's Stop reruns its script, which raises inside the running step) keeps what was computed;
an error keeps what was shown; Finish goes on from a stopped run; Continue carries the optimiser's state on.
"""

from __future__ import annotations

import pytest
import torch

from core import UserError, get_preset
from core.jobs import Callbacks, LiveRow, LiveRun, RunCache
from core.jobs.spec import RunSpec

pytestmark = pytest.mark.fast


class Interrupt(BaseException):
    """What Streamlit raises in an abandoned script (its RerunException is a BaseException too)."""


@pytest.fixture(autouse=True)
def fixed_threads(monkeypatch):
    """One thread count, set as a user sets it, so results compare bit for bit."""
    before = torch.get_num_threads()
    monkeypatch.setenv("INVERSION_THREADS", "1")
    yield
    torch.set_num_threads(before)


def _row(model, image, iters=20, layer="layer1", seeds=(0, 1), label="untrained"):
    return LiveRow(RunSpec.of(model, layer, image, list(seeds), get_preset("default", iters=iters, early_stop=False),
                              "cpu"), model, label)


def _stop_at(step: int, only_row: int | None = None):
    """Hooks that interrupt the run once a snapshot reaches `step` (in row `only_row`, or any)."""
    def callbacks(i, row):
        def snap(s):
            if s.step >= step and only_row in (None, i):
                raise Interrupt

        return Callbacks(snapshot=snap)

    return callbacks


def test_stop_keeps_what_was_computed_and_finish_goes_on_from_it(resnet18_32, chelsea32, tmp_path):
    cache = RunCache(tmp_path)
    lr = LiveRun()
    with pytest.raises(Interrupt):
        lr.go(chelsea32, [_row(resnet18_32, chelsea32)], cache=cache, callbacks=_stop_at(10), every=5,
              meta={"note": "n"})
    assert lr.running and not lr.rows
    assert lr.salvage() and not lr.running
    (row,) = lr.rows
    assert lr.stopped and row.stopped and row.result.steps_done == 10 and lr.meta == {"note": "n"}
    assert row.spec.key() not in cache  # a part-way result is never stored
    assert lr.plan(more=100)[0].spec == row.spec  # stopped: Finish keeps the spec, whatever `more` says
    lr.go(chelsea32, more=100, cache=cache)
    done = lr.rows[0]
    assert not lr.stopped and done.result.steps_done == 20 and done.spec.key() in cache
    whole = LiveRun()
    whole.go(chelsea32, [_row(resnet18_32, chelsea32)], cache=RunCache(tmp_path / "b"))
    assert torch.equal(whole.rows[0].result.images, done.result.images)  # as if never stopped


def test_continue_carries_the_optimiser_on_and_a_cached_run_is_computed_again(resnet18_32, chelsea32, tmp_path):
    cache = RunCache(tmp_path)
    lr = LiveRun()
    lr.go(chelsea32, [_row(resnet18_32, chelsea32)], cache=cache)
    assert lr.rows[0].run is not None  # kept in memory for a Continue
    lr.go(chelsea32, more=10, cache=cache)
    row = lr.rows[0]
    assert row.spec.continued == (10,) and row.result.steps_done == 30 and not row.notes  # from memory
    fresh = LiveRun()  # another session: the 20-step run comes from the cache, with no optimiser state
    fresh.go(chelsea32, [_row(resnet18_32, chelsea32)], cache=cache)
    assert fresh.rows[0].run is None
    fresh.go(chelsea32, more=10, cache=RunCache(tmp_path / "b"))
    assert "computed the 20-step run again first" in fresh.rows[0].notes[0]
    assert torch.equal(fresh.rows[0].result.images, row.result.images)


def test_an_error_keeps_the_shown_rows_and_drops_the_attempt(resnet18_32, chelsea32, tmp_path):
    lr = LiveRun()
    lr.go(chelsea32, [_row(resnet18_32, chelsea32)], cache=RunCache(tmp_path), meta={"image_name": "chelsea"})
    shown = lr.rows[0]
    with pytest.raises(UserError, match="hash differs"):
        lr.go(chelsea32 * 0.5, [_row(resnet18_32, chelsea32, layer="layer2")], cache=RunCache(tmp_path))
    assert not lr.running and lr.rows == [shown] and lr.meta == {"image_name": "chelsea"}
    assert not lr.salvage()


def test_a_stop_before_any_step_keeps_the_shown_rows(resnet18_32, chelsea32, tmp_path):
    lr = LiveRun()
    lr.go(chelsea32, [_row(resnet18_32, chelsea32)], cache=RunCache(tmp_path))
    shown = lr.rows[0]

    def at_once(i, row):
        def start(inv):
            raise Interrupt

        return Callbacks(start=start)

    with pytest.raises(Interrupt):
        lr.go(chelsea32, [_row(resnet18_32, chelsea32, layer="layer2")], cache=RunCache(tmp_path), callbacks=at_once)
    assert not lr.salvage() and lr.rows == [shown]


def test_a_pair_stopped_in_its_second_row_finishes_only_that_row(resnet18_32, chelsea32, tmp_path):
    cache = RunCache(tmp_path)
    lr = LiveRun()
    pair = [_row(resnet18_32, chelsea32), _row(resnet18_32, chelsea32, layer="layer2", label="other")]
    finished: list[int] = []
    with pytest.raises(Interrupt):
        lr.go(chelsea32, pair, cache=cache, callbacks=_stop_at(10, only_row=1), every=5,
              on_row=lambda i, row, job: finished.append(i))
    assert finished == [0] and lr.salvage()
    first, second = lr.rows
    assert not first.stopped and second.stopped and second.label == "other"
    assert lr.plan(more=50)[0] is first  # a finished row is kept as it is while finishing
    jobs = lr.go(chelsea32, more=50, cache=cache)
    assert len(jobs) == 1 and lr.rows[0] is first and lr.rows[1].result.steps_done == 20 and not lr.stopped
    lr.go(chelsea32, more=5, cache=cache)  # nothing stopped now: both rows continue
    assert [r.spec.continued for r in lr.rows] == [(5,), (5,)] and lr.rows[1].label == "other"


def test_going_on_needs_a_shown_run():
    with pytest.raises(UserError, match="press Run first"):
        LiveRun().plan(more=10)
