"""The executor: runs one spec's inversion on a device (`run_resilient`), its seeds in batches that fit the
device's memory (`plan_chunks`), halving a batch (then falling back to the CPU) when the device runs out of memory.
The pipeline (`core.jobs.pipeline.run`) calls it for every run that is not in the cache.
"""

from __future__ import annotations

import gc
import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch

from core.devices import is_oom
from core.engine.loop import Inversion
from core.engine.speed import SpeedOptions
from core.jobs.spec import RunSpec
from core.models.lock import MODEL_LOCK

GiB = 1024**3


def activation_bytes(model, nodes: Sequence[str], size: int) -> dict[str, dict[str, int]]:
    """Per seed, per stop: bytes of every module output up to the stop (`sum`) and the largest one (`max`).

    Measured with one batch-1 forward on the CPU (no grad), hooking every leaf module; the
    outputs of the leaf modules are what autograd keeps for backward, so this is the activation
    memory of one seed's step up to a factor (see `seed_step_bytes`).
    """
    mods = dict(model.module.named_modules())
    running = {"sum": 0, "max": 0}
    seen: dict[str, dict[str, int]] = {}
    handles = []

    def leaf_hook(_m, _i, out):
        if isinstance(out, torch.Tensor):
            b = out.numel() * 4
            running["sum"] += b
            running["max"] = max(running["max"], b)

    def stop_hook(name):
        def hook(_m, _i, _o):
            seen.setdefault(name, dict(running))
        return hook

    for name, m in mods.items():
        if name and not list(m.children()):
            handles.append(m.register_forward_hook(leaf_hook))
    for n in nodes:
        if n in mods:
            handles.append(mods[n].register_forward_hook(stop_hook(n)))

    try:
        # exclusive: the hooks sit on modules that other threads' encoders share, and would count their passes
        with torch.no_grad(), MODEL_LOCK.exclusive():
            model.module(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
    total = dict(running)
    return {n: seen.get(n, total) for n in nodes}


def seed_step_bytes(act: dict[str, int], size: int, autocast: bool = False) -> int:
    """Peak bytes one seed adds to a step: saved activations (~2x outputs: conv/BN inputs, ReLU masks),
    the gradient of the largest activation twice in flight, and the pixel state (x, grad, Adam m/v, blur)."""
    scale = 0.5 if autocast else 1.0
    return int(scale * (2 * act["sum"] + 2 * act["max"]) + 8 * 3 * size * size * 4)


@dataclass
class ChunkPlan:
    memory_gb: float
    budget_bytes: int
    per_seed_bytes: int
    seeds_per_batch: int
    batches: int

    def to_dict(self) -> dict:
        return asdict(self)


def plan_chunks(per_seed_bytes: int, n_seeds: int, memory_gb: float, weights_bytes: int = 0,
                reserve_gb: float = 1.5, usable: float = 0.85) -> ChunkPlan:
    """Seeds per batch so that a step fits: budget = usable * memory - reserve (CUDA context,
    cuDNN workspace, allocator slack) - weights (their copy, BN-folded copy and the features' target)."""
    budget = int(usable * memory_gb * GiB - reserve_gb * GiB - 2 * weights_bytes)
    fit = max(1, budget // max(1, per_seed_bytes)) if budget > 0 else 1
    k = int(min(n_seeds, fit))
    return ChunkPlan(memory_gb, budget, int(per_seed_bytes), k, math.ceil(n_seeds / k))


def split(seeds: Sequence[int], per_batch: int) -> list[list[int]]:
    seeds = list(seeds)
    per_batch = max(1, int(per_batch))
    return [seeds[i:i + per_batch] for i in range(0, len(seeds), per_batch)]


def device_memory_gb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / GiB
    return None


@dataclass
class RunInfo:
    """What `run_resilient` had to do; `notes` are one-line messages for the caller to show."""

    chunks: list[list[int]]
    oom_retries: int = 0
    fell_back_to_cpu: bool = False
    notes: list[str] | None = None


def run_resilient(model, layer: str, image: torch.Tensor, seeds: Sequence[int], preset, device,
                  speed: SpeedOptions | None = None, max_batch: int | None = None,
                  on_snapshot: Callable | None = None, on_note: Callable[[str], None] | None = None,
                  every: int = 10, on_partial: Callable | None = None, on_start: Callable | None = None):
    """Run an inversion in seed chunks of at most `max_batch`; on out-of-memory halve the chunk and
    retry; with chunks of one seed still out of memory, fall back to the CPU. Seeds are independent
    (eval-mode model, per-seed loss, per-element optimiser), so the chunks give the same result as one
    batch. The engine half of `core.jobs.pipeline.run`, the one place that handles out-of-memory.

    Args:
        on_snapshot: snapshots with every seed (a run in one batch).
        on_partial: snapshots of one batch of a split run (some seeds); default: none.
        on_note: one-line messages (retries, fallback).
        on_start: the whole run's `Inversion`, each time one is built (to keep a stopped run's images).

    Returns:
        (InversionResult, RunInfo)."""
    seeds = list(seeds)
    full = Inversion(model, layer, image, seeds, preset, device, speed=speed)
    raw, dev = full.raw_encoder, full.device
    if on_start:
        on_start(full)
    per_batch = min(len(seeds), max_batch or len(seeds))
    info = RunInfo(chunks=[], notes=[])

    def note(msg: str):
        info.notes.append(msg)
        if on_note:
            on_note(msg)

    while True:
        try:
            chunks = split(seeds, per_batch)
            reasons = []
            full.incomplete = len(chunks) > 1  # until every batch is absorbed: not a run to go on from
            for chunk in chunks:
                run = full if len(chunks) == 1 else Inversion(model, layer, image, chunk, preset, dev,
                                                              encoder=raw, speed=speed)
                hook = on_snapshot if run is full else on_partial
                for snap in run.snapshots(every):
                    if hook:
                        hook(snap)
                if run is not full:
                    full.absorb(run, [seeds.index(s) for s in chunk])
                    reasons.append(run.stop_reason)
                run = None
            if reasons:  # chunks may stop early at different steps: "converged" only if every chunk did
                full.stop_reason = None if None in reasons else (
                    "converged" if all(r == "converged" for r in reasons) else "budget")
            info.chunks = chunks
            full.incomplete = False
            full.eval_batch = per_batch  # the final metrics' forward in batches that fit, too
            return full.result(), info
        except RuntimeError as err:
            if not is_oom(err) or (per_batch == 1 and dev.type == "cpu"):
                raise
        # Out of memory. Outside the `except`: its traceback's frames hold the failed batch's tensors; drop
        # them (and the failed runs) before building anything, or the retry itself runs out of memory
        # (seen on an H200 under a 348 MB cap: the retry's batch-1 encode failed).
        full = run = snap = None
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        if per_batch > 1:
            info.oom_retries += 1
            note(f"out of memory with {per_batch} seeds per batch: retrying with {max(1, per_batch // 2)}")
            per_batch = max(1, per_batch // 2)
        else:
            info.fell_back_to_cpu = True
            note("out of memory even with one seed per batch: running on the CPU instead")
            dev, raw = torch.device("cpu"), raw.to("cpu")
            per_batch = min(len(seeds), max_batch or len(seeds))
        full = Inversion(model, layer, image, seeds, preset, dev, encoder=raw, speed=speed)
        if on_start:
            on_start(full)


_ACTIVATIONS: dict[tuple, dict[str, int]] = {}


def max_batch_for(model, spec: RunSpec, device: torch.device, speed=None) -> int | None:
    """Seeds per batch that fit the device's memory (None: no limit known, e.g. the CPU)."""
    memory_gb = device_memory_gb(device)
    if not memory_gb:
        return None
    memo = (model.name, spec.layer, spec.size)  # activation sizes depend on the architecture, not the weights
    if memo not in _ACTIVATIONS:  # one batch-1 CPU forward per (architecture, layer, size)
        _ACTIVATIONS[memo] = activation_bytes(model, [spec.layer], spec.size)[spec.layer]
    act = _ACTIVATIONS[memo]
    autocast = bool(speed and speed.autocast_dtype)
    wbytes = sum(p.numel() * 4 for p in model.module.parameters())
    return plan_chunks(seed_step_bytes(act, spec.size, autocast), len(spec.seeds), memory_gb, wbytes).seeds_per_batch
