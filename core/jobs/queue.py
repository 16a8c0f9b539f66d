"""A first-come, first-served queue for one compute device shared by several sessions.

Each run takes a ticket; a ticket runs when it is at the head of the queue and a slot is
free. While it waits, `on_wait(position, waiting)` is called every `poll` seconds (position 1
= next), so a UI can show "you are 2nd in the queue" instead of freezing. If `on_wait` raises
(a page rerun, a closed tab) or the caller leaves the `with` block any other way, the ticket
is withdrawn or the slot is freed at once, so an abandoned run never blocks the next one.

    with queue_for("cuda").slot("alice", on_wait=show):
        ... run ...

A run may say how long it will take (`seconds=`, an estimate, when it joins or later with `set_seconds`); then
`ahead(ticket)` tells how many runs are before it and about how long they still take (a running one: its
estimate less the time it has run), and `on_ahead(Ahead)` is called with it while the ticket waits:

    with queue.slot("bob", seconds=est.seconds, on_ahead=lambda a: show(f"{a.runs} runs ahead, {a.seconds:.0f} s")):
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator


_clock = time.monotonic  # when a run started and how long it has run (`ahead`); tests replace it


class QueueTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class Ahead:
    """The runs before a ticket (or, for `RunQueue.ahead()`, all runs now in the queue)."""

    runs: int  # running or waiting before it
    seconds: float  # the estimated seconds they still take (those that gave an estimate)
    unknown: int = 0  # how many of them gave no estimate (not in `seconds`)
    slots: int = 1  # runs at a time on the device: the wait is about seconds / slots

    @property
    def wait_s(self) -> float:
        """About how long until the ticket runs (the known part: `seconds` spread over the slots)."""
        return self.seconds / max(1, self.slots)


class RunQueue:
    def __init__(self, slots: int = 1):
        if slots < 1:
            raise ValueError("a queue needs at least one slot")
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: list[int] = []
        self._running: dict[int, str] = {}
        self._labels: dict[int, str] = {}
        self._seconds: dict[int, float] = {}  # a ticket's estimated run time, when it gave one
        self._started: dict[int, float] = {}  # when a running ticket started (time.monotonic)
        self._ids = itertools.count(1)

    # -------------------------------------------------------------- tickets

    def join(self, label: str = "", seconds: float | None = None) -> int:
        """A new ticket at the end of the line; `seconds`: its run's estimated time (for `ahead`)."""
        with self._cond:
            ticket = next(self._ids)
            self._waiting.append(ticket)
            self._labels[ticket] = label
            if seconds is not None:
                self._seconds[ticket] = max(0.0, float(seconds))
            return ticket

    def set_seconds(self, ticket: int, seconds: float | None) -> None:
        """Give (or correct, or with None drop) the estimated time of a waiting or running ticket's run."""
        with self._cond:
            if ticket not in self._labels:
                return
            if seconds is None:
                self._seconds.pop(ticket, None)
            else:
                self._seconds[ticket] = max(0.0, float(seconds))

    def _ahead(self, ticket: int | None) -> Ahead:
        """(under the lock) The runs before `ticket`: every running one, and the waiting ones before it."""
        now = _clock()
        if ticket is not None and ticket in self._running:
            return Ahead(0, 0.0, 0, self.slots)
        if ticket is None:
            before = list(self._waiting)
        elif ticket in self._waiting:
            before = self._waiting[: self._waiting.index(ticket)]
        else:
            return Ahead(0, 0.0, 0, self.slots)
        seconds, unknown = 0.0, 0
        for t in list(self._running) + before:
            if t not in self._seconds:
                unknown += 1
                continue
            left = self._seconds[t] - (now - self._started[t] if t in self._started else 0.0)
            seconds += max(0.0, left)
        return Ahead(len(self._running) + len(before), seconds, unknown, self.slots)

    def ahead(self, ticket: int | None = None) -> Ahead:
        """The runs before `ticket` and the seconds they still take by their estimates; None: every run now in
        the queue (what a run joining now would wait for). A running or released ticket has none ahead."""
        with self._cond:
            return self._ahead(ticket)

    def position(self, ticket: int) -> int:
        """0 when running, n >= 1 when n-th in line, -1 when unknown (released)."""
        with self._cond:
            if ticket in self._running:
                return 0
            try:
                return self._waiting.index(ticket) + 1
            except ValueError:
                return -1

    def _try_start(self, ticket: int) -> bool:
        if self._waiting and self._waiting[0] == ticket and len(self._running) < self.slots:
            self._waiting.pop(0)
            self._running[ticket] = self._labels.get(ticket, "")
            self._started[ticket] = _clock()
            return True
        return False

    def acquire(self, ticket: int, on_wait: Callable[[int, int], None] | None = None, poll: float = 0.25,
                timeout: float | None = None, on_ahead: Callable[[Ahead], None] | None = None) -> None:
        """Block until `ticket` runs. `on_wait(position, waiting)` and `on_ahead(Ahead)` (the runs before it and
        their estimated seconds) are called outside the lock, every `poll` seconds while it waits."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                if ticket in self._running:
                    return
                if ticket not in self._waiting:
                    raise ValueError(f"ticket {ticket} is not in the queue")
                if self._try_start(ticket):
                    return
                pos, waiting = self._waiting.index(ticket) + 1, len(self._waiting)
                before = self._ahead(ticket) if on_ahead else None
            if on_wait:
                on_wait(pos, waiting)
            if on_ahead:
                on_ahead(before)
            if deadline is not None and time.monotonic() >= deadline:
                raise QueueTimeout(f"still {pos} in the queue after {timeout:g} s")
            with self._cond:
                if not self._try_start(ticket):
                    self._cond.wait(poll)
                else:
                    return

    def release(self, ticket: int) -> None:
        """Free the slot, or withdraw a waiting ticket. Safe to call twice."""
        with self._cond:
            self._running.pop(ticket, None)
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            self._labels.pop(ticket, None)
            self._seconds.pop(ticket, None)
            self._started.pop(ticket, None)
            self._cond.notify_all()

    @contextmanager
    def slot(self, label: str = "", on_wait: Callable[[int, int], None] | None = None, poll: float = 0.25,
             timeout: float | None = None, seconds: float | None = None,
             on_ahead: Callable[[Ahead], None] | None = None) -> Iterator[int]:
        """Join, wait for the slot (`acquire`), run the block, release. `seconds`: this run's estimated time."""
        ticket = self.join(label, seconds)
        try:
            self.acquire(ticket, on_wait, poll, timeout, on_ahead)
            yield ticket
        finally:
            self.release(ticket)

    # -------------------------------------------------------------- state

    def state(self) -> dict:
        with self._cond:
            return {"running": len(self._running), "waiting": len(self._waiting), "slots": self.slots}


_QUEUES: dict[str, RunQueue] = {}
_LOCK = threading.Lock()


def queue_for(device: str, slots: int = 1) -> RunQueue:
    """The process-wide queue of a device ("cuda:0", "cpu", ...)."""
    name = str(device)
    if name == "cuda":
        name = "cuda:0"
    with _LOCK:
        if name not in _QUEUES:
            _QUEUES[name] = RunQueue(slots)
        return _QUEUES[name]
