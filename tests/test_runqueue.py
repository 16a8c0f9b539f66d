"""The per-device run queue: first come first served, positions shown, abandoned tickets freed."""

import threading
import time

import pytest

from core.jobs.queue import QueueTimeout, RunQueue, queue_for

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`


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


def test_ahead_sums_the_estimates_of_the_runs_before_a_ticket(monkeypatch):
    import core.jobs.queue as queue

    now = [100.0]
    monkeypatch.setattr(queue, "_clock", lambda: now[0])
    q = RunQueue()
    assert q.ahead() == queue.Ahead(0, 0.0, 0, 1)
    a = q.join("a", seconds=30)
    q.acquire(a, timeout=0.1)  # runs from t = 100
    b = q.join("b", seconds=20)
    c = q.join("c")  # no estimate
    d = q.join("d", seconds=5)
    assert q.ahead(a) == queue.Ahead(0, 0.0, 0, 1)  # running: nothing ahead
    assert q.ahead(b) == queue.Ahead(1, 30.0, 0, 1)
    assert q.ahead(d) == queue.Ahead(3, 50.0, 1, 1)  # c's time is unknown, counted apart
    assert q.ahead() == queue.Ahead(4, 55.0, 1, 1)  # what a run joining now would wait for
    now[0] = 112.0  # a has run 12 of its 30 s
    assert q.ahead(b).seconds == 18.0
    now[0] = 200.0  # a overran its estimate: it counts as about to end, never negative
    assert q.ahead(b).seconds == 0.0
    q.set_seconds(c, 7)
    assert q.ahead(d) == queue.Ahead(3, 27.0, 0, 1)
    q.release(a)
    q.acquire(b, timeout=0.1)  # b runs from t = 200
    now[0] = 205.0
    assert q.ahead(d) == queue.Ahead(2, 22.0, 0, 1)
    for t in (b, c, d):
        q.release(t)
    assert q.ahead() == queue.Ahead(0, 0.0, 0, 1) and q.ahead(d) == queue.Ahead(0, 0.0, 0, 1)
    assert q.state() == {"running": 0, "waiting": 0, "slots": 1}


def test_a_waiting_slot_is_told_the_time_ahead():
    q = RunQueue()
    holder = q.join("holder", seconds=40)
    q.acquire(holder)
    told = []

    class Leave(BaseException):
        pass

    def on_ahead(ahead):
        told.append(ahead)
        raise Leave

    with pytest.raises(Leave):
        with q.slot("me", seconds=3, on_ahead=on_ahead, poll=0.01):
            pass
    assert told and told[0].runs == 1 and 39.0 < told[0].seconds <= 40.0 and told[0].wait_s == told[0].seconds
    assert q.state()["waiting"] == 0  # leaving from on_ahead withdraws the ticket like on_wait
    q.release(holder)


def test_two_slots_share_the_wait():
    q = RunQueue(slots=2)
    for s in (10, 30):
        q.acquire(q.join(seconds=s), timeout=0.1)
    t = q.join(seconds=5)
    a = q.ahead(t)
    assert a.runs == 2 and a.slots == 2 and 39 < a.seconds <= 40 and a.wait_s == a.seconds / 2
