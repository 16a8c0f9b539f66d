"""How many CPU threads a run takes: one policy for every run path (the engine asks it; nothing else decides).

OpenMP gives each thread a share of every operation and waits for all of them at a barrier. When another
process holds a core, the thread on it is descheduled and every operation waits a scheduler tick for it:
two threads beside two busy processes ran 5-30x slower than one thread. So a run takes no more threads than
the rest of the machine leaves cores idle (`free_cores`, from /proc/stat), at least one, and the engine asks
again while it runs (`Watch`), so load that arrives mid-run moves it to one thread instead of collapsing it,
and it goes back up to its starting count when the cores are idle again. A run that starts on several threads
first times a few of its own steps on them and on one thread, and keeps one thread unless several are clearly
faster (`MANY_THREADS_GAIN`): a model's small steps can be slower split across threads even on idle cores. (Threads that sleep at barriers
instead of spinning, `OMP_WAIT_POLICY=PASSIVE`, were tried: two threads on an idle machine then took 2-3x
longer than with spinning, so torch's default is kept.)

A count the user sets is obeyed: `INVERSION_THREADS`, else `OMP_NUM_THREADS`, else a command's `--threads`.

Results move with the thread count only by float rounding, which the optimisation amplifies over its steps:
the same default 64 px run on one and on two threads differed by up to 0.03 in clarity and 7% in m_i (FINDINGS.md,
"Reproducibility"; docs/speed.md); the run cache keys on the settings, not the thread count.
"""

from __future__ import annotations

import math
import os
import time

SETTLE_S = 1.0  # the engine asks again after this much run time


def cores() -> int:
    """Cores this process may use (affinity aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def requested() -> int | None:
    """The count the user set: `INVERSION_THREADS`, else `OMP_NUM_THREADS` (None: the policy decides)."""
    for name in ("INVERSION_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _stat() -> dict[str, tuple[int, int]] | None:
    """Per core this process may use: (idle jiffies, total jiffies), from /proc/stat (None where there is none)."""
    try:
        mine = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        out = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *vals = line.split()
                if name in mine:
                    v = [int(x) for x in vals[:8]]  # user nice system idle iowait irq softirq steal
                    out[name] = (v[3] + v[4], sum(v))
        return out or None
    except (AttributeError, OSError, ValueError, IndexError):
        return None


class Sample:
    """The machine's idle time and this process's CPU time at one moment; `free_since` compares two."""

    def __init__(self):
        self.stat = _stat()
        self.own = time.process_time()
        self.wall = time.monotonic()

    def free_since(self, before: "Sample") -> float | None:
        """Cores the rest of the machine left to this process between `before` and now: idle time plus this
        process's own CPU time, over the wall time (None where /proc/stat is missing or no time passed)."""
        if not self.stat or not before.stat or self.wall - before.wall <= 0:
            return None
        idle, counted = 0.0, 0
        for name, (i0, t0) in before.stat.items():
            if name in self.stat and self.stat[name][1] > t0:
                idle += (self.stat[name][0] - i0) / (self.stat[name][1] - t0)
                counted += 1
        if not counted:
            return None
        own = (self.own - before.own) / (self.wall - before.wall)
        return min(float(counted), idle + own)


_LAST: Sample | None = None  # the previous look, so back-to-back runs (a curve's stops) need not wait
RECENT_S = 5.0  # a previous look younger than this (and at least `window_s` old) is compared with, no sleep


def free_cores(window_s: float = 0.1) -> float | None:
    """Cores the rest of the machine leaves idle now, measured over at least `window_s` (None where it cannot be
    known): against the previous look when it is recent, else over a `window_s` sleep."""
    global _LAST
    before = _LAST
    if before is None or not before.stat or not window_s <= time.monotonic() - before.wall <= RECENT_S:
        before = Sample()
        if before.stat is None:
            return None
        time.sleep(window_s)
    _LAST = Sample()
    return _LAST.free_since(before)


def count_for(free: float | None) -> int:
    """Threads for `free` idle cores: one per idle core (rounded), at least 1, at most `cores()`; all cores when
    it is unknown."""
    n = cores()
    if free is None:
        return n
    return max(1, min(n, int(free + 0.5)))


TRIAL_STEPS = 3  # steps timed on each count when a run starts on several threads (after one warm-up step each)
TRIAL_S = 0.15  # ...and at least this long, unless TRIAL_MAX steps came first
TRIAL_MAX = 8
MANY_THREADS_GAIN = 0.8  # several threads are kept only when their steps take at most this much of one thread's


class Watch:
    """Asked by the engine after every step: the thread count to move to now, or None to stay.

    A run that starts on several threads first times its own steps on that count and then on one thread
    (`TRIAL_STEPS` each, after a warm-up step), and keeps one thread when that is faster: a probe cannot tell
    how a model's small steps split across threads, the real steps can. Then, every `SETTLE_S` of run time, it
    compares the machine's idle time since its last look and moves between one thread and the count it kept
    (never above it). A count the user set is never changed.
    """

    def __init__(self, threads: int, fixed: bool = False):
        self.threads = self.ceiling = threads
        self.fixed = fixed or requested() is not None or cores() <= 1
        self._last = Sample()
        self.changes = 0
        self.trial: dict[int, list[float]] | None = None if self.fixed or threads <= 1 else {threads: [], 1: []}
        self._tick: float | None = None  # when the previous step ended
        self._skip = False  # True: the next step warms a new count up (its time is not counted)

    def check(self) -> int | None:
        if self.fixed:
            return None
        if self.trial is not None:
            return self._try()
        if time.monotonic() - self._last.wall < SETTLE_S:
            return None
        now = Sample()
        n = min(self.ceiling, count_for(now.free_since(self._last))) if now.stat else None
        self._last = now
        return self._move(n)

    def _move(self, n: int | None) -> int | None:
        if n is None or n == self.threads:
            return None
        self.threads, self.changes = n, self.changes + 1
        return n

    def _try(self) -> int | None:
        """The start-of-run trial: time steps on the starting count, then on one thread; keep the faster."""
        now = time.perf_counter()
        last, self._tick = self._tick, now
        if last is None or self._skip:  # the run's first step, or the first on a new count
            self._skip = False
            return None
        times = self.trial[self.threads]
        times.append(now - last)
        if len(times) < TRIAL_MAX and (len(times) < TRIAL_STEPS or sum(times) < TRIAL_S):
            return None
        if self.threads != 1:  # the starting count is timed: now one thread
            self._skip = True
            return self._move(1)
        many, one = (sorted(t)[len(t) // 2] for t in (self.trial[self.ceiling], self.trial[1]))
        self.trial, self._last = None, Sample()
        if many > one * MANY_THREADS_GAIN:
            self.ceiling = 1
            return None
        return self._move(self.ceiling)


# --------------------------------------------------------------------------- the count a run starts on

_THREAD_PICK: tuple[float, int] | None = None


def pick_cpu_threads(max_age_s: float = 30.0) -> int:
    """Threads that are actually fastest now: time a small parallel op with all cores and with one.

    On a shared machine whose cores are busy, OpenMP with one thread per core waits at every
    barrier for a descheduled thread (each op then costs a scheduler tick, ~10 ms): measured
    here a 35x slowdown. A ~10 ms probe tells the two cases apart; the answer is cached.
    A count the user set (`core.threads.requested`) overrides the probe.
    """
    global _THREAD_PICK
    import torch  # only here: importing the policy costs nothing

    asked = requested()
    if asked:
        return asked
    n = cores()
    if n <= 1:
        return 1
    now = time.monotonic()
    if _THREAD_PICK and now - _THREAD_PICK[0] < max_age_s:
        return _THREAD_PICK[1]
    before = torch.get_num_threads()
    x = torch.rand(1 << 18)

    def probe(n: int) -> float:
        torch.set_num_threads(n)
        best = math.inf
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(8):
                x.mul_(1.0000001).add_(1e-7)
            best = min(best, time.perf_counter() - t)
        return best

    try:
        one, many = probe(1), probe(n)
    finally:
        torch.set_num_threads(before)
    pick = n if many < one * 0.9 else 1
    _THREAD_PICK = (now, pick)
    return pick


def cpu_threads() -> int:
    """The thread count for a CPU run starting now (this policy): the user's; else one thread when the rest of
    the machine leaves at most one core idle; else as many as the idle cores where the timing probe finds several
    threads faster (`pick_cpu_threads`: on small steps one thread is faster even on an idle machine)."""
    asked = requested()
    if asked:
        return asked
    most = count_for(free_cores())
    return 1 if most == 1 else min(most, pick_cpu_threads())
