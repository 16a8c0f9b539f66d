"""The one thread policy (core.threads): a count the user sets is obeyed; otherwise one thread per core the rest
of the machine leaves idle, followed while a run goes on."""

from __future__ import annotations

import json

import pytest

from core import threads
from core.engine.speed import SpeedOptions
from core.threads import cpu_threads

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`


@pytest.fixture
def no_user_count(monkeypatch):
    monkeypatch.delenv("INVERSION_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_the_users_count_is_obeyed_first_inversion_threads_then_omp(monkeypatch, no_user_count):
    assert threads.requested() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.requested() == 1 and cpu_threads() == 1
    monkeypatch.setenv("INVERSION_THREADS", "3")
    assert threads.requested() == 3
    monkeypatch.setenv("INVERSION_THREADS", "lots")  # not a count: the next one counts
    assert threads.requested() == 1
    speed = SpeedOptions.auto("cpu")
    assert speed.threads == 1 and not speed.adapt_threads  # a set count is never moved by the load


def test_one_thread_per_idle_core_at_least_one_at_most_the_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 4)
    assert [threads.count_for(f) for f in (0.0, 0.4, 0.6, 1.4, 2.6, 9.0)] == [1, 1, 1, 1, 3, 4]
    assert threads.count_for(None) == 4  # unknown load: every core


def test_free_cores_counts_idle_time_and_this_processs_own(no_user_count):
    before = threads.Sample()
    if before.stat is None:
        pytest.skip("no /proc/stat here")
    x = 0
    while threads.Sample().wall - before.wall < 0.2:  # keep one core busy ourselves: it still counts as ours
        x += 1
    free = threads.Sample().free_since(before)
    assert free is not None and 0.5 <= free <= threads.cores() + 1e-9


def test_a_busy_machine_gets_one_thread_an_idle_one_what_the_probe_finds_faster(monkeypatch, no_user_count):

    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "pick_cpu_threads", lambda: 2)
    monkeypatch.setattr(threads, "free_cores", lambda window_s=0.1: 0.4)  # two busy processes beside us
    assert cpu_threads() == 1
    monkeypatch.setattr(threads, "free_cores", lambda window_s=0.1: 2.0)
    assert cpu_threads() == 2
    monkeypatch.setattr(threads, "pick_cpu_threads", lambda: 1)  # small steps: one thread is faster even idle
    assert cpu_threads() == 1


def test_a_run_follows_the_load_unless_the_count_is_fixed(monkeypatch, no_user_count):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "SETTLE_S", 0.0)
    seen = iter([0.3, 0.3, 1.9, 1.9])  # busy, busy, idle, idle
    monkeypatch.setattr(threads.Sample, "free_since", lambda self, before: next(seen))
    watch = threads.Watch(2)
    watch.trial = None  # the start-of-run trial (tested below) is over
    assert watch.check() == 1 and watch.check() is None  # moved to one thread once, then stays
    assert watch.check() == 2 and watch.check() is None and watch.changes == 2  # back up to where it started
    seen = iter([3.9])
    monkeypatch.setattr(threads, "cores", lambda: 4)
    watch = threads.Watch(2)
    watch.trial = None
    assert watch.check() is None  # four idle cores: never above the count it started with
    assert threads.Watch(2, fixed=True).check() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.Watch(2).check() is None


def _steps(monkeypatch, watch, seconds):
    """Feed `watch` one step per entry of `seconds` (each step's duration); what it answered after each."""
    clock = [0.0]
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])
    out = [watch.check()]  # after the run's first step: nothing to time yet
    for s in seconds:
        clock[0] += s
        out.append(watch.check())
    return out


@pytest.mark.parametrize("one, kept", [(0.05, 1), (0.2, 2), (0.11, 1), (0.13, 2)])
def test_a_run_times_its_own_steps_on_its_count_and_on_one_thread_and_keeps_the_faster(monkeypatch, no_user_count,
                                                                                         one, kept):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.setattr(threads, "TRIAL_S", 0.0)
    watch = threads.Watch(2)
    answers = _steps(monkeypatch, watch, [0.1] * 3 + [5.0] + [one] * 3)  # 3 steps on 2 threads, a warm-up, 3 on 1
    assert answers[3] == 1  # after its three steps on two threads it tries one thread
    assert answers[4:6] == [None, None]  # the first step on one thread warms up and is not counted
    assert answers[-1] == (None if kept == 1 else 2) and watch.trial is None
    assert watch.ceiling == kept  # two threads not clearly faster (MANY_THREADS_GAIN): one thread from now on
    assert threads.Watch(1).trial is None and threads.Watch(2, fixed=True).trial is None  # nothing to try


def test_every_command_that_computes_takes_threads_and_obeys_it(tmp_path, chelsea_path, no_user_count, capsys,
                                                                 monkeypatch):
    from core.cli.main import build_parser, main

    monkeypatch.setenv("INVERSION_THREADS", "")  # the command sets it: put back as it was after the test

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert ("--threads" in parser._option_string_actions) == (name not in ("models", "presets", "download")), name
    assert main(["invert", "--model", "resnet18", "--layer", "layer1", "--image", str(chelsea_path), "--size", "32",
                 "--seeds", "1", "--iters", "4", "--out", str(tmp_path / "r"), "--quiet", "--no-cache",
                 "--device", "cpu", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "r" / "result.json").read_text())["device"] == "cpu (1 thread)"
    assert main(["curve", "--model", "resnet18", "--image", str(chelsea_path), "--out", str(tmp_path / "c"),
                 "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --threads must be at least 1 (got 0)"
