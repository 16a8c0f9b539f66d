"""Device tensors copied to the host without draining the device's queue.

A live run shows a snapshot every few steps. `tensor.cpu()` on a CUDA tensor waits until the GPU has
finished all the work queued before it, and the host then draws the snapshot (images, a chart) while
nothing is queued: the GPU idles for as long as the drawing takes. A `HostCopy` instead enqueues the
copy into pinned host memory (`non_blocking=True`) and records an event behind it; the engine keeps
launching steps and hands the snapshot over once `ready()` says the copy has landed
(`SpeedOptions.async_snapshots`), so the GPU works on while the host draws.

Off CUDA the copies are plain host copies, made at once (the run goes on changing the originals).
"""

from __future__ import annotations

import torch


class HostCopy:
    """Host copies of `tensors` (name -> tensor), started now; `meta` rides along unchanged.

    Args:
        tensors: device tensors to copy (their values now, whatever the run does next).
        **meta: plain values to keep with them (step, total, seconds).
    """

    def __init__(self, tensors: dict[str, torch.Tensor], **meta):
        self.meta = meta
        self.event: torch.cuda.Event | None = None
        self._host: dict[str, torch.Tensor] = {}
        for name, t in tensors.items():
            if t.is_cuda:
                buf = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
                buf.copy_(t, non_blocking=True)
            else:  # a copy on the host (the run goes on changing `t`; an MPS tensor comes over here)
                buf = t.detach().to("cpu", copy=True)
            self._host[name] = buf
        devices = {t.device for t in tensors.values() if t.is_cuda}
        if len(devices) > 1:
            raise ValueError(f"one HostCopy copies from one GPU, not {sorted(map(str, devices))}")
        if devices:
            (dev,) = devices
            self.event = torch.cuda.Event()
            self.event.record(torch.cuda.current_stream(dev))  # that GPU's stream, behind the copies

    def ready(self) -> bool:
        """Whether the copies have landed (never blocks)."""
        return self.event is None or self.event.query()

    def wait(self) -> dict[str, torch.Tensor]:
        """The host tensors, once landed (blocks until then; at once if `ready()`)."""
        if self.event is not None:
            self.event.synchronize()
        return self._host
