"""The encoder's forward and backward as CUDA graphs: one replay per step instead of hundreds of launches.

On a GPU a small-batch step is launch-bound: the H200 spent 12 ms per ResNet-50 `layer4` step at batch 4
(BENCHMARKS.md, GPU section), about 190x the step's FLOP time, because the host issues ~500 kernels (the
forward's and the input gradient's) one by one. `torch.cuda.make_graphed_callables` records both passes
once for a fixed input shape and replays them as two graph launches. The encoder's weights are frozen, so
the graphs depend on the input only; the rest of the step (the loss, Adam, the blur) stays eager: a few
dozen small kernels.

`GraphedEncoder` is what the engine calls for the optimisation step when `SpeedOptions.cuda_graphs` is on
and the device is CUDA. It records one pair of graphs per input shape (a run has one; a chunked run two),
keeps at most a few (an older one is evicted, its memory freed), uses the plain encoder for anything that
is not a step (no-grad encodes), and falls back to the plain encoder for good, with the reason in `failed`,
if recording fails: the run goes on, slower (out of memory is raised, as from an eager step, so the run's
seed batch halves). A batched curve (`core.engine.multistop.run_together`) records one
pair per set of stops still in the batch.
Its outputs are the graph's static buffers, overwritten by the next call: the engine uses a step's output
before the next step, and copies what it keeps.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Callable

import torch
import torch.nn as nn

from core.devices import is_oom

# process-wide counts (a benchmark reads how a whole curve went): recordings, replays, failures' reasons
STATS: dict = {"recorded": 0, "replays": 0, "failed": []}

MAX_SHAPES = 4  # graphs kept per encoder by default; each holds its own activation memory
WARMUP = 3  # eager iterations on a side stream before recording (cuDNN picks its algorithms there)


def _recorder() -> Callable:
    """`make_graphed_callables`, recording in thread-local capture mode where this torch has it: another
    session's thread that synchronises while this one records must not invalidate the recording."""
    make = torch.cuda.make_graphed_callables
    if "capture_error_mode" in inspect.signature(make).parameters:
        return lambda fn, args: make(fn, args, num_warmup_iters=WARMUP, capture_error_mode="thread_local")
    return lambda fn, args: make(fn, args, num_warmup_iters=WARMUP)


def _on(x: torch.Tensor):
    """`x`'s GPU as the current device (streams and graphs belong to one); nothing off CUDA."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


class GraphedEncoder:
    """`encoder(x, *args)` for a step's input (it requires grad), replayed from CUDA graphs recorded per
    input shape and `args` (a batched curve's per-stop counts: `core.engine.multistop`).

    Args:
        encoder: the (prepared) encoder; its parameters must not require grad.
        autocast_dtype: the step's autocast dtype, or None; recorded inside the graphs (with autocast's
            weight cache off, which graphs need).
        record: the recorder (tests pass a stand-in; default `torch.cuda.make_graphed_callables`).
        keep: graphs kept; a new shape past it evicts the oldest (and frees its memory). A run has one shape
            (a chunked one two); a batched curve's shapes only shrink and never recur, so it keeps one.
    """

    def __init__(self, encoder: nn.Module, autocast_dtype: torch.dtype | None = None,
                 record: Callable | None = None, keep: int = MAX_SHAPES):
        self.encoder = encoder
        self.autocast_dtype = autocast_dtype
        self._record = record or _recorder()
        self._graphs: dict[tuple, Callable] = {}  # insertion order = age
        self.keep = max(1, int(keep))
        self.failed: str | None = None  # why recording failed (then every call is eager)
        self.recorded = 0  # graphs recorded so far
        self.replays = 0  # calls answered by a graph

    def release(self) -> None:
        """Drop the recordings and the memory they hold (a finished run kept for a later Continue records again)."""
        self._graphs.clear()

    def _eager(self, x: torch.Tensor, *args):
        with self._autocast(x.device):
            return self.encoder(x, *args)

    def _autocast(self, device: torch.device):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype, cache_enabled=False)

    def __call__(self, x: torch.Tensor, *args):
        if self.failed or not (x.requires_grad and torch.is_grad_enabled()):
            return self._eager(x, *args)
        key = (tuple(x.shape), x.stride(), x.dtype, x.device, tuple(tuple(a) if isinstance(a, list) else a
                                                                     for a in args))
        graphed = self._graphs.get(key)
        if graphed is None:
            while len(self._graphs) >= self.keep:
                self._graphs.pop(next(iter(self._graphs)))
            graphed = self._build(key, x, args)
            if graphed is None:
                return self._eager(x, *args)
        self.replays += 1
        STATS["replays"] += 1
        with _on(x):  # replayed on that GPU's current stream (cuda:1 runs too)
            return graphed(x)

    def _build(self, key: tuple, x: torch.Tensor, args: tuple) -> Callable | None:
        sample = x.detach().clone().requires_grad_(True)
        try:
            with _on(x):  # recorded on that GPU's streams
                graphed = self._record(lambda t: self._eager(t, *args), (sample,))
        except Exception as exc:  # noqa: BLE001 - any recording failure: the step still runs, eagerly
            if is_oom(exc):  # not the graphs' fault: run_resilient halves the batch (and records again)
                self._graphs.clear()
                raise
            text = str(exc).splitlines()[0][:300] if str(exc) else ""
            self.failed = f"{type(exc).__name__}: {text}"
            STATS["failed"].append(self.failed)
            self._graphs.clear()
            if x.is_cuda:
                with contextlib.suppress(Exception):  # let the failed recording's work drain before going on
                    torch.cuda.synchronize(x.device)
            return None
        self._graphs[key] = graphed
        self.recorded += 1
        STATS["recorded"] += 1
        return graphed
