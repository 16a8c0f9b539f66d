"""Time estimates from measured steps, the learned correction, the countdown, and the cheaper setting.

Behaviour only: how close an estimate comes to the real run's time on a loaded machine is a speed target,
measured by `python -m benchmarks estimate` (BENCHMARKS.md, "Time estimates"), not asserted by a timed test.
"""

import threading
from dataclasses import replace

import pytest

import core.jobs.estimate as estimate
from core import get_preset, load_model
from core.jobs.estimate import (Countdown, Estimate, calibrated, correction, forget, human, measure, record_actual,
                                remaining, suggest_cheaper)

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`


@pytest.fixture(autouse=True)
def _no_record():
    forget()
    yield
    forget()


def test_measure_real_steps():
    model = load_model("resnet18", "untrained", 32)
    est = measure(model, "layer1", 32, 2, get_preset("default", iters=100), "cpu", probe_steps=2, max_probe_s=60,
                  min_probe_s=0)
    assert est.step_s > 0 and est.setup_s > 0 and est.iters == 100
    assert est.warmup_s > 0 and est.finish_s > 0 and est.steps_measured == 2
    assert est.threads is not None and est.threads >= 1
    assert est.seconds == pytest.approx(est.setup_s + est.warmup_s + 99 * est.step_s + est.finish_s, abs=1e-12)


def test_the_default_run_is_probed_on_its_own_image(lite0_models, chelsea64):
    """The app's default run (trained Lite0 blocks.1.1, 64 px, 2 seeds, budget 150): every part counted."""
    est = measure(lite0_models["trained"], "blocks.1.1", 64, 2, get_preset("default", iters=150), "cpu",
                  image=chelsea64, every=10, snapshot_s=0.05)
    assert est.iters == 150 and est.steps_measured >= 1 and est.every == 10
    assert est.seconds == pytest.approx(est.setup_s + est.warmup_s + 149 * est.step_s + est.finish_s + 15 * 0.05)


# --------------------------------------------------------------------------- the probe, on a fake clock

class _FakeRun:
    """An `Inversion` whose steps take the times in `durations` on the fake clock (`estimate._clock`); a
    callable `durations(threads)` gives a step's time at the fake thread count."""

    durations = None
    clock = [0.0]
    threads = [2]
    made = []
    used = []  # the thread count of every step

    def __init__(self, model, layer, image, seeds, preset, device, speed=None):
        self.preset, self.steps = preset, 0
        self.clock[0] += 0.5  # setup
        self.made.append(self)

    def snapshots(self, every=1):
        while self.steps < self.preset.iters:
            d = self.durations
            self.clock[0] += d(self.threads[0]) if callable(d) else d[min(self.steps, len(d) - 1)]
            self.used.append(self.threads[0])
            self.steps += 1
            yield self.steps

    def result(self):
        self.clock[0] += 0.25


@pytest.fixture
def fake_engine(monkeypatch):
    """`probe(durations, cores=1, pick=1, **measure_kwargs)`: measure on the fake engine."""
    _FakeRun.clock[0], _FakeRun.made[:] = 0.0, []
    monkeypatch.setattr(estimate, "Inversion", _FakeRun)
    monkeypatch.setattr(estimate, "warm_judge", lambda model: None)  # no real model, no judge to load
    monkeypatch.setattr(estimate, "_clock", lambda: _FakeRun.clock[0])
    monkeypatch.setattr(estimate, "_get_threads", lambda: _FakeRun.threads[0])
    monkeypatch.setattr(estimate, "_set_threads", lambda n: _FakeRun.threads.__setitem__(0, n))
    monkeypatch.delenv("INVERSION_THREADS", raising=False)

    def probe(durations, cores=1, pick=1, free=None, min_probe_s=0.0, **kw):
        _FakeRun.durations, _FakeRun.threads[0], _FakeRun.used[:] = durations, pick, []
        monkeypatch.setattr(estimate, "cpu_cores", lambda: cores)
        monkeypatch.setattr(estimate, "_idle_cores", lambda: free)
        monkeypatch.setattr(estimate, "pick_cpu_threads", lambda max_age_s=0: pick)
        return measure(object(), "x", 16, 2, get_preset("default", iters=200), "cpu", min_probe_s=min_probe_s, **kw)
    return probe


def test_probe_stops_after_its_time(fake_engine):
    est = fake_engine([1.0, 0.4], probe_steps=50, max_probe_s=1.5)  # warm-up 1 s, then 0.4 s steps
    assert est.steps_measured == 2  # 1.0 + 0.4 = 1.4 < 1.5, + 0.4 = 1.8: no third step started
    assert _FakeRun.made[0].steps == 3
    assert est.setup_s == 0.5 and est.warmup_s == 1.0 and est.step_s == pytest.approx(0.4)
    assert est.finish_s == 0.25
    assert est.seconds == pytest.approx(0.5 + 1.0 + 199 * 0.4 + 0.25)


def test_a_warm_up_longer_than_the_cap_stands_for_a_step(fake_engine):
    est = fake_engine([9.0, 4.5], probe_steps=6, max_probe_s=1.5)  # a large setting: one step, not seven
    assert est.steps_measured == 0 and _FakeRun.made[0].steps == 1
    assert est.step_s == 9.0  # an upper bound (the warm-up is the slowest step)


def test_probe_takes_all_its_steps_when_fast(fake_engine):
    est = fake_engine([0.02, 0.01], probe_steps=6, max_probe_s=1.5)
    assert est.steps_measured == 6 and est.step_s == pytest.approx(0.01)


def test_fast_steps_are_probed_for_a_while(fake_engine):
    est = fake_engine([0.02, 0.01], probe_steps=6, min_probe_s=0.5)  # a loaded machine's phases, not one
    assert est.steps_measured in (48, 49) and est.step_s == pytest.approx(0.01)  # 0.02 + 48 x 0.01 = 0.5
    est = fake_engine([0.02, 0.3], probe_steps=6, min_probe_s=0.5, max_probe_s=1.5)
    assert est.steps_measured == 5  # slow steps: the cap, not the minimum, decides


def test_the_mean_of_the_steps_counts_a_loaded_machines_slow_ones(fake_engine):
    est = fake_engine([0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.25], probe_steps=6, max_probe_s=10)
    assert est.step_s == pytest.approx(0.05)  # the median (0.01) read 5x under what the run pays


def test_the_probe_keeps_the_thread_count_faster_on_the_real_step(fake_engine):
    idle = {1: 0.02, 2: 0.011}
    est = fake_engine(idle.get, cores=2, pick=1)
    assert est.threads == 2 and _FakeRun.used == [1, 1, 2, 1, 2, 2, 2]  # warm-up, compared, then the faster
    assert est.step_s == pytest.approx(0.011) and est.steps_measured == 4
    close = {1: 0.01, 2: 0.0095}
    est = fake_engine(close.get, cores=2, pick=2)
    assert est.threads == 1 and est.step_s == pytest.approx(0.01)  # not clearly faster: one thread is the safe side


def test_a_barrier_bound_step_ends_the_comparison_at_once(fake_engine):
    busy = {1: 0.01, 2: 0.2}  # two busy processes on two cores: two threads wait at every barrier
    est = fake_engine(busy.get, cores=2, pick=2)  # the small pick chose two threads
    assert est.threads == 1 and _FakeRun.threads[0] == 1 and _FakeRun.used == [1, 1, 2, 1, 1, 1, 1]
    assert est.step_s == pytest.approx(0.01) and est.steps_measured == 5


def test_busy_cores_mean_one_thread_without_trying_more(fake_engine):
    est = fake_engine({1: 0.01, 2: 0.005}.get, cores=2, pick=2, free=0.3)
    assert est.threads == 1 and set(_FakeRun.used) == {1}
    est = fake_engine({1: 0.01, 2: 0.005, 3: 0.004}.get, cores=4, pick=4, free=2.2)  # two idle of four
    assert est.threads == 2 and set(_FakeRun.used) == {1, 2}


def test_a_slow_warm_up_leaves_one_thread(fake_engine):
    est = fake_engine({1: 2.0, 2: 0.1}.get, cores=2, pick=2, max_probe_s=1.5)  # no step after the warm-up
    assert est.threads == 1 and est.steps_measured == 0 and est.step_s == 2.0 and _FakeRun.used == [1]


def test_speed_for_pins_the_measured_threads(monkeypatch):
    est = Estimate(0.1, 0.01, 100, threads=1, measured_at=1000.0)
    monkeypatch.setattr(estimate, "_clock", lambda: 1010.0)
    assert estimate.speed_for(est, "cpu").threads == 1
    assert estimate.speed_for(est, "cuda") is None and estimate.speed_for(replace(est, threads=None), "cpu") is None
    monkeypatch.setattr(estimate, "_clock", lambda: 2000.0)
    assert estimate.speed_for(est, "cpu") is None  # stale: the run picks its own


# --------------------------------------------------------------------------- the learned correction

def test_no_record_no_correction():
    est = Estimate(1.0, 0.1, 101)  # 11 s
    assert correction("cpu") == 1.0 and calibrated(est, "cpu") is est


def test_correction_is_the_median_of_recent_runs():
    est = Estimate(1.0, 0.1, 101)
    for actual in (22.0, 33.0, 11.0):  # 2x, 3x, 1x
        record_actual(est, actual, "cpu")
    assert correction("cpu") == pytest.approx(2.0)
    cal = calibrated(est, "cpu")
    assert cal.seconds == pytest.approx(22.0) and cal.calibration == pytest.approx(2.0)
    assert calibrated(cal, "cpu").seconds == pytest.approx(22.0)  # calibrating again does not compound
    assert correction("cuda:0") == 1.0  # per device


def test_correction_is_clipped_and_remembers_only_recent_runs():
    est = Estimate(0.0, 1.0, 11)  # 10 s
    for _ in range(3):
        record_actual(est, 100.0, "cpu")  # 10x
    assert correction("cpu") == 4.0
    for _ in range(estimate.RECENT):
        record_actual(est, 1.0, "cpu")  # 0.1x, pushing the 10x runs out
    assert correction("cpu") == 0.5


def test_record_takes_the_calibration_out_and_early_stop_into_account():
    est = Estimate(1.0, 0.1, 101)  # 11 s for the budget
    record_actual(est.times(3.0), 11.0, "cpu")  # a calibrated estimate: the raw one was right
    assert correction("cpu") == pytest.approx(1.0)
    forget("cpu")
    assert record_actual(est, 6.0, "cpu", steps=51) == pytest.approx(1.0)  # stopped at 51 steps: 1 + 0.1 * 50
    assert record_actual(est, 0.0, "cpu") is None and record_actual(Estimate(0, 0, 1), 3.0, "cpu") is None


def test_device_names_share_a_record():
    est = Estimate(0.0, 1.0, 11)
    record_actual(est, 20.0, "cuda")
    assert correction("cuda:0") == 2.0


def test_record_is_thread_safe_and_bounded():
    est = Estimate(0.0, 1.0, 11)

    def worker():
        for _ in range(200):
            record_actual(est, 20.0, "cpu")
            correction("cpu")

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(estimate._RECORD["cpu"]) == estimate.RECENT and correction("cpu") == 2.0


def test_estimate_counts_snapshots_and_scales():
    est = Estimate(1.0, 0.1, 100, warmup_s=0.3, finish_s=0.2, snapshot_s=0.05, every=10)
    assert est.snapshots() == 10 and est.seconds == pytest.approx(1.0 + 0.3 + 99 * 0.1 + 0.2 + 0.5)
    assert est.for_steps(41) == pytest.approx(1.0 + 0.3 + 40 * 0.1 + 0.2 + 5 * 0.05)
    big = est.scaled(iters=200, seeds_ratio=2)
    assert big.step_s == pytest.approx(0.2) and big.finish_s == pytest.approx(0.4) and big.setup_s == 1.0
    assert est.times(2.0).seconds == pytest.approx(2 * est.seconds)


# --------------------------------------------------------------------------- the countdown

def test_remaining_at_the_pace_so_far():
    assert remaining(10.0, 50, 150) == pytest.approx(20.0)
    assert remaining(10.0, 150, 150) == 0.0
    assert remaining(0.0, 0, 150) is None and remaining(0.4, 1, 150) is None  # no pace yet (one step: warm-up)
    assert remaining(10.0, 50, 150, finish_s=0.5) == pytest.approx(20.5)


def test_remaining_leaves_the_warm_up_out():
    # a 3 s warm-up, then 0.1 s steps: the first snapshot at step 10 (3.9 s), now step 20 (4.9 s)
    assert remaining(4.9, 20, 120) == pytest.approx(4.9 / 20 * 100)  # the warm-up amortised: 24.5 s
    assert remaining(4.9, 20, 120, since=(3.9, 10)) == pytest.approx(10.0)  # the steps since: 0.1 s each


def test_remaining_leans_on_the_estimate_before_steps_tell():
    assert remaining(0.0, 0, 100, step_s=0.2) == pytest.approx(20.0)
    # two steps read 0.5 s each; the estimate says 0.1: 20 % of the way to the observed pace
    assert remaining(1.0, 2, 102, step_s=0.1) == pytest.approx((0.2 * 0.5 + 0.8 * 0.1) * 100)
    assert remaining(5.0, 10, 110, step_s=0.1) == pytest.approx(50.0)  # ten steps: their own pace


def test_countdown_follows_a_run():
    left = Countdown()
    assert left(3.9, 10, 120) == pytest.approx(3.9 / 10 * 110)  # first snapshot: the warm-up still in it
    assert left(4.9, 20, 120) == pytest.approx(10.0)  # from then on the steps after it
    assert left(14.9, 120, 120) == 0.0
    assert left(0.5, 5, 50) == pytest.approx(4.5)  # a new run starts over


# --------------------------------------------------------------------------- cheaper settings and words

def test_no_suggestion_when_fast():
    assert suggest_cheaper(Estimate(0.5, 0.01, 200), 64, 2, 200, budget_s=20) is None


def test_suggestion_fits_the_budget():
    slow = Estimate(1.0, 2.0, 500)  # 999 s
    s = suggest_cheaper(slow, 224, 8, 500, budget_s=20)
    assert s is not None and s["seconds"] <= 20
    assert s["iters"] <= 150 and s["seeds"] <= 2 and s["size"] < 224 and s["size"] >= 32


def test_suggestion_keeps_what_it_can():
    s = suggest_cheaper(Estimate(0.0, 0.2, 300), 64, 2, 300, budget_s=35)  # 60 s: fewer iterations suffice
    assert s["size"] == 64 and s["seeds"] == 2 and s["iters"] == 150
    assert s["seconds"] == pytest.approx(0.2 * 149)  # the same count as Estimate.seconds (the first step's time)


def test_suggestion_counts_every_part_of_the_estimate():
    """The offer's time is what the estimate of the offered setting says (warm-up, finish, calibration)."""
    est = Estimate(2.0, 0.2, 300, warmup_s=1.0, finish_s=0.5).times(1.5)
    s = suggest_cheaper(est, 64, 2, 300, budget_s=60)
    assert s["seconds"] == pytest.approx(est.scaled(iters=s["iters"]).seconds) and s["seconds"] <= 60


def test_human():
    assert human(0.3) == "under a second"
    assert human(12) == "about 12 s"
    assert human(600) == "about 10 min"


def test_the_pipeline_runs_on_the_estimate_and_records_its_real_time(tmp_path):
    """`run(..., estimate=)`: the queue knows the run's seconds while it runs (what a run behind it waits for),
    the run takes the thread count the probe chose, and its real time corrects the next estimate."""
    import torch

    from core.jobs import RunCache, RunSpec, queue_for, run
    from core.jobs.pipeline import Callbacks

    model = load_model("resnet18", "untrained", 16)
    image = torch.rand(3, 16, 16)
    spec = RunSpec.of(model, "layer1", image, [0], get_preset("default", iters=12, early_stop=False), "cpu")
    est = Estimate(setup_s=0.0, step_s=50.0, iters=12, threads=1, measured_at=estimate._clock())  # far too slow
    seen, threads = [], []

    def start(inv):
        seen.append(queue_for("cpu").ahead())  # every run on the device now, this one included
        threads.append(torch.get_num_threads())

    before = torch.get_num_threads()
    try:
        job = run(spec, image, model, cache=RunCache(tmp_path), callbacks=Callbacks(start=start), estimate=est)
    finally:
        torch.set_num_threads(before)
    assert not job.cached and seen and seen[0].runs == 1 and seen[0].seconds == pytest.approx(est.seconds, abs=5)
    assert threads == [1]
    assert correction("cpu") == estimate.CLIP[0]  # it ran far faster than 600 s: the next estimates come down
    assert calibrated(est, "cpu").seconds == pytest.approx(est.seconds * estimate.CLIP[0])
    run(spec, image, model, cache=RunCache(tmp_path), estimate=est)  # from the cache: nothing to learn from
    assert len(estimate._RECORD["cpu"]) == 1


def test_a_stale_or_gpu_estimate_leaves_the_threads_to_the_run():
    est = Estimate(setup_s=0.0, step_s=0.01, iters=10, threads=1, measured_at=estimate._clock())
    assert estimate.speed_for(est, "cpu").threads == 1
    assert estimate.speed_for(replace(est, measured_at=estimate._clock() - 1000), "cpu") is None
    assert estimate.speed_for(est, "cuda") is None
    assert estimate.speed_for(replace(est, threads=None), "cpu") is None
