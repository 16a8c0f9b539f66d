"""One process, several threads (a Streamlit server's sessions): keep FX tracing away from forward passes.

torch.fx tracing (building an `Encoder`, listing graph nodes, `stop_shapes`) patches
`torch.nn.Module.__call__` for the whole process while it runs, so a forward pass in another
thread at that moment fails ("module is not installed as a submodule"). This readers-writer
lock makes tracing exclusive and lets forward passes share: hold `MODEL_LOCK.exclusive()`
around anything that traces and `MODEL_LOCK.shared()` around forward passes; `stepped` runs an
`Inversion` one step at a time under the shared lock, so a trace waits at most one step.
Writers are preferred, so a long run cannot starve another session's setup.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class RWLock:
    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


MODEL_LOCK = RWLock()


def stepped(run, every: int = 10, lock: RWLock = MODEL_LOCK):
    """`run.snapshots()` one step at a time, each under the shared lock; yields every `every`-th and the last."""
    every = max(1, int(every))
    it = run.snapshots(1)
    while True:
        with lock.shared():
            snap = next(it, None)
        if snap is None:
            return
        if snap.step % every == 0 or snap.step == snap.total:
            yield snap
