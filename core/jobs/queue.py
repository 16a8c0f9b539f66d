"""A first-come, first-served queue for one compute device shared by several sessions.

Each run takes a ticket; a ticket runs when it is at the head of the queue and a slot is
free. While it waits, `on_wait(position, waiting)` is called every `poll` seconds (position 1
= next), so a UI can show "you are 2nd in the queue" instead of freezing. If `on_wait` raises
(a page rerun, a closed tab) or the caller leaves the `with` block any other way, the ticket
is withdrawn or the slot is freed at once, so an abandoned run never blocks the next one.

    with queue_for("cuda").slot("alice", on_wait=show):
        ... run ...
"""

from __future__ import annotations

import itertools
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class QueueTimeout(TimeoutError):
    pass


class RunQueue:
    def __init__(self, slots: int = 1):
        if slots < 1:
            raise ValueError("a queue needs at least one slot")
        self.slots = slots
        self._cond = threading.Condition()
        self._waiting: list[int] = []
        self._running: dict[int, str] = {}
        self._labels: dict[int, str] = {}
        self._ids = itertools.count(1)

    # -------------------------------------------------------------- tickets

    def join(self, label: str = "") -> int:
        with self._cond:
            ticket = next(self._ids)
            self._waiting.append(ticket)
            self._labels[ticket] = label
            return ticket

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
            return True
        return False

    def acquire(self, ticket: int, on_wait: Callable[[int, int], None] | None = None, poll: float = 0.25,
                timeout: float | None = None) -> None:
        """Block until `ticket` runs. `on_wait(position, waiting)` is called outside the lock."""
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
            if on_wait:
                on_wait(pos, waiting)
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
            self._cond.notify_all()

    @contextmanager
    def slot(self, label: str = "", on_wait: Callable[[int, int], None] | None = None, poll: float = 0.25,
             timeout: float | None = None) -> Iterator[int]:
        ticket = self.join(label)
        try:
            self.acquire(ticket, on_wait, poll, timeout)
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
