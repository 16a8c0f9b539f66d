"""The per-device run queue: first come first served, positions shown, abandoned tickets freed."""

import threading
import time

import pytest

from core.jobs.queue import QueueTimeout, RunQueue, queue_for


def test_single_user_runs_at_once():
    q = RunQueue()
    seen = []
    with q.slot("a", on_wait=lambda p, n: seen.append(p)) as t:
        assert q.position(t) == 0
    assert seen == []
    assert q.state() == {"running": 0, "waiting": 0, "slots": 1}


def test_waiting_users_see_their_place_and_run_in_order():
    q = RunQueue()
    order, positions = [], {}
    first = q.join("first")
    q.acquire(first)

    def user(name):
        def on_wait(pos, n):
            positions.setdefault(name, set()).add(pos)
        with q.slot(name, on_wait=on_wait, poll=0.01):
            order.append(name)
            time.sleep(0.02)

    threads = []
    for name in ("b", "c", "d"):
        th = threading.Thread(target=user, args=(name,))
        th.start()
        threads.append(th)
        time.sleep(0.05)  # join in a known order
    time.sleep(0.1)
    assert q.state()["waiting"] == 3
    q.release(first)
    for th in threads:
        th.join(5)
    assert order == ["b", "c", "d"]
    assert 1 in positions["b"] and 3 in positions["d"] and 2 in positions["d"]
    assert q.state()["running"] == 0 and q.state()["waiting"] == 0


def test_abandoned_waiter_leaves_the_queue():
    q = RunQueue()
    holder = q.join("holder")
    q.acquire(holder)

    class Rerun(BaseException):  # what Streamlit raises on a page rerun
        pass

    def on_wait(pos, n):
        raise Rerun

    with pytest.raises(Rerun):
        with q.slot("gone", on_wait=on_wait):
            pass
    assert q.state()["waiting"] == 0
    q.release(holder)
    with q.slot("next", timeout=1):
        pass


def test_a_failing_run_frees_the_slot():
    q = RunQueue()
    with pytest.raises(RuntimeError):
        with q.slot("boom"):
            raise RuntimeError("boom")
    with q.slot("after", timeout=0.5):
        pass


def test_timeout():
    q = RunQueue()
    t = q.join()
    q.acquire(t)
    with pytest.raises(QueueTimeout):
        with q.slot("late", timeout=0.05, poll=0.01):
            pass
    assert q.state()["waiting"] == 0


def test_two_slots_run_together():
    q = RunQueue(slots=2)
    a, b = q.join(), q.join()
    q.acquire(a, timeout=0.1)
    q.acquire(b, timeout=0.1)
    assert q.position(a) == 0 and q.position(b) == 0


def test_one_queue_per_device():
    assert queue_for("cuda") is queue_for("cuda:0")
    assert queue_for("cpu") is not queue_for("cuda:0")
    with pytest.raises(ValueError):
        RunQueue(0)
