"""One process, several threads (a Streamlit server's sessions): keep FX tracing away from forward passes.

torch.fx tracing (building an `Encoder`, listing graph nodes, `stop_shapes`, BN folding) patches
`torch.nn.Module.__call__` for the whole process while it runs, so a forward pass in another
thread at that moment fails ("module is not installed as a submodule"). This readers-writer
lock makes tracing exclusive and lets forward passes share. `core` takes it itself: tracing
(`Encoder.__init__`, `graph_nodes`, `stop_shapes`, `activation_bytes`) holds `MODEL_LOCK.exclusive()`;
every optimisation step, `Inversion.result()` and `classify.predict`
hold `MODEL_LOCK.shared()` (one step at a time, never across a `yield`, so a trace waits at most
one step). Callers (the app, the CLI, benchmarks, threads of a script) need no lock of their own.

The lock is re-entrant per thread: the exclusive holder may take `exclusive()` or `shared()`
again (stop_shapes builds an Encoder, Inversion builds one and then encodes), and a shared
holder may take `shared()` again even while a writer waits. A shared holder asking for
`exclusive()` would wait for itself, so that raises RuntimeError at once instead of deadlocking.
Writers are preferred, so a long run cannot starve another session's setup.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class RWLock:
    def __init__(self):
        self._cond = threading.Condition()
        self._readers: dict[int, int] = {}  # thread id -> shared depth
        self._writer: int | None = None  # thread id of the exclusive holder
        self._writer_depth = 0
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:  # the writer may also read
                nested = True
            else:
                nested = False
                if not self._readers.get(me):  # a re-entrant reader never waits (writer preference would deadlock)
                    while self._writer is not None or self._writers_waiting:
                        self._cond.wait()
                self._readers[me] = self._readers.get(me, 0) + 1
        try:
            yield
        finally:
            if not nested:
                with self._cond:
                    self._readers[me] -= 1
                    if not self._readers[me]:
                        del self._readers[me]
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._writer_depth += 1
            else:
                if self._readers.get(me):
                    raise RuntimeError("MODEL_LOCK: exclusive() requested while this thread holds shared(); "
                                       "take exclusive() first (tracing must not start inside a forward pass)")
                self._writers_waiting += 1
                try:
                    while self._writer is not None or self._readers:
                        self._cond.wait()
                finally:
                    self._writers_waiting -= 1
                self._writer, self._writer_depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._writer_depth -= 1
                if not self._writer_depth:
                    self._writer = None
                    self._cond.notify_all()

    def state(self) -> dict:
        with self._cond:
            return {"readers": sum(self._readers.values()), "writer": self._writer is not None,
                    "writers_waiting": self._writers_waiting}


MODEL_LOCK = RWLock()


def stepped(run, every: int = 10, lock: RWLock = MODEL_LOCK):
    """`run.snapshots()` one step at a time, each under the shared lock; yields every `every`-th and the last.

    Kept for callers written before the engine took the lock itself; `run.snapshots(every)` is now
    just as safe."""
    every = max(1, int(every))
    it = run.snapshots(1)
    while True:
        with lock.shared():
            snap = next(it, None)
        if snap is None:
            return
        if snap.step % every == 0 or snap.step == snap.total:
            yield snap
