"""Speed options for the engine, memory-aware seed chunking and out-of-memory retry.

`SpeedOptions` is a small switchboard: every option has a fallback (off) and the defaults of
`SpeedOptions.auto(device)` only turn on what keeps results the same up to float rounding
(measured in BENCHMARKS.md). Lossy options (bf16/fp16 autocast) and `torch.compile` are opt-in.

    from core.speed import SpeedOptions
    run = Inversion(model, "layer4", image, seeds, preset, "cuda", speed=SpeedOptions.auto("cuda"))
    run = Inversion(..., speed=SpeedOptions.off())          # exactly the plain engine
"""

from __future__ import annotations

import contextlib
import copy
import gc
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import torch
import torch.nn as nn

from core.devices import cpu_cores

GiB = 1024**3


# --------------------------------------------------------------------------- CPU threads


_THREAD_PICK: tuple[float, int] | None = None


def pick_cpu_threads(max_age_s: float = 30.0) -> int:
    """Threads that are actually fastest now: time a small parallel op with all cores and with one.

    On a shared machine whose cores are busy, OpenMP with one thread per core waits at every
    barrier for a descheduled thread (each op then costs a scheduler tick, ~10 ms): measured
    here a 35x slowdown. A ~10 ms probe tells the two cases apart; the answer is cached.
    `INVERSION_THREADS=<n>` overrides the probe.
    """
    global _THREAD_PICK
    env = os.environ.get("INVERSION_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    cores = cpu_cores()
    if cores <= 1:
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
        one, many = probe(1), probe(cores)
    finally:
        torch.set_num_threads(before)
    pick = cores if many < one * 0.9 else 1
    _THREAD_PICK = (now, pick)
    return pick


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SpeedOptions:
    """How the engine runs its step. Every field off = the plain engine."""

    channels_last: bool = False  # NHWC memory format for the encoder and the input batch
    fold_bn: bool = False  # fold eval-mode BatchNorm into the preceding conv (exact up to rounding)
    autocast_dtype: torch.dtype | None = None  # torch.bfloat16 / torch.float16 forward (lossy, opt-in)
    compile: bool = False  # torch.compile the encoder (compile time is paid on the first steps)
    tf32: bool = False  # CUDA: TF32 matmul/conv
    cudnn_benchmark: bool = False  # CUDA: let cuDNN pick the fastest conv algorithm per shape
    threads: int | None = None  # CPU: torch threads for the run; None leaves torch's setting
    cuda_graphs: bool = False  # CUDA: the step's encoder forward and backward replayed as CUDA graphs
    async_snapshots: bool = False  # CUDA: snapshots copied to the host while the next steps run (core.hostcopy)

    @classmethod
    def off(cls) -> "SpeedOptions":
        return cls()

    @classmethod
    def auto(cls, device: str | torch.device = "cpu") -> "SpeedOptions":
        """What measurably helps and keeps results the same up to rounding (see BENCHMARKS.md)."""
        dev = torch.device(device) if not isinstance(device, torch.device) else device
        if dev.type == "cuda":
            # measured on an H200 (BENCHMARKS.md, GPU section): strict fp32 was the fastest of the exact
            # options at batch 4, channels_last and TF32 slower or lossy; cudnn.benchmark picks algorithms only
            return cls(cudnn_benchmark=True)
        if dev.type == "cpu":
            return cls(threads=pick_cpu_threads())
        return cls()

    def replace(self, **changes) -> "SpeedOptions":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["autocast_dtype"] = str(self.autocast_dtype).replace("torch.", "") if self.autocast_dtype else None
        return d

    # ---- applied by the engine

    def apply_global(self, device: torch.device) -> None:
        """Process-wide switches: CPU threads, TF32 (on or strictly off), cudnn.benchmark (only turned on)."""
        if device.type == "cpu" and self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        if device.type == "cuda":
            # set both ways: torch's own default lets cuDNN convolutions use TF32 (10-bit mantissa), which
            # moved m_g by 7 % after 500 default steps on an H200 (BENCHMARKS.md); off means strict fp32
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32
            if self.cudnn_benchmark:
                torch.backends.cudnn.benchmark = True

    def prepare_encoder(self, encoder: nn.Module, device: torch.device) -> nn.Module:
        """A (possibly new) encoder with BN folded, NHWC weights and/or compiled; the input is untouched."""
        if self.fold_bn:
            encoder = fold_batchnorm(encoder)
        if self.channels_last:
            encoder = encoder.to(memory_format=torch.channels_last)
        if self.compile:
            encoder = torch.compile(encoder)
        return encoder

    def step_encoder(self, encoder: nn.Module, device: torch.device, keep: int | None = None):
        """What the optimisation step calls instead of `encoder` (under its own autocast), or None for the
        plain call: a `core.cudagraphs.GraphedEncoder` (keeping `keep` recordings) when `cuda_graphs` is on
        and the device is CUDA (the option means nothing elsewhere, as TF32 does not)."""
        if not (self.cuda_graphs and device.type == "cuda"):
            return None
        from core.cudagraphs import MAX_SHAPES, GraphedEncoder

        return GraphedEncoder(encoder, self.autocast_dtype, keep=keep or MAX_SHAPES)

    def format_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def autocast(self, device: torch.device):
        if self.autocast_dtype is None or device.type not in ("cpu", "cuda"):
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)


def fold_batchnorm(encoder: nn.Module) -> nn.Module:
    """A copy of the encoder whose (Conv2d -> eval BatchNorm2d) pairs are one conv. Falls back to the original."""
    body = getattr(encoder, "body", None)
    if not isinstance(body, torch.fx.GraphModule) or body.training:
        return encoder
    from torch.fx.experimental.optimization import fuse

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = fuse(copy.deepcopy(body).eval(), inplace=True)
    except Exception:  # an untraceable graph: keep the unfused encoder (same results, a bit slower)
        return encoder
    for p in fused.parameters():
        p.requires_grad_(False)
    out = copy.copy(encoder)  # shallow: shares mean/std buffers, gets its own module dict
    out._modules = dict(encoder._modules)
    out._modules["body"] = fused
    return out


# --------------------------------------------------------------------------- memory estimate and chunking


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
    from core.modellock import MODEL_LOCK

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


# --------------------------------------------------------------------------- OOM-resilient run


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


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
    batch. The engine half of `core.jobs.run`, the one place that handles out-of-memory.

    Args:
        on_snapshot: snapshots with every seed (a run in one batch).
        on_partial: snapshots of one batch of a split run (some seeds); default: none.
        on_note: one-line messages (retries, fallback).
        on_start: the whole run's `Inversion`, each time one is built (to keep a stopped run's images).

    Returns:
        (InversionResult, RunInfo)."""
    from core.engine import Inversion

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
                    _absorb(full, run, [seeds.index(s) for s in chunk])
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


def _absorb(full, part, index: list[int]) -> None:
    """Copy a chunk run's parameters, optimiser state and per-step history into the whole run's seed slots;
    the whole run has run as far as its longest chunk. With the optimiser's state the whole run can be
    continued as one batch exactly as the chunks would have gone on (when the chunks ran the same steps:
    a per-tensor step count, such as Adam's, takes the last chunk's)."""
    with torch.no_grad():
        for whole, piece in zip(full.state.tensors, part.state.tensors):
            whole[index] = piece.detach().to(whole.device)
        if part._opt is not None:
            mine = full._optimizer()
            for whole, piece in zip(full.state.tensors, part.state.tensors):
                for name, value in part._opt.state.get(piece, {}).items():
                    slot = mine.state[whole]
                    if torch.is_tensor(value) and value.shape == piece.shape:  # per element: the seeds' slots
                        if name not in slot:
                            slot[name] = torch.zeros_like(whole)
                        slot[name][index] = value.to(whole.device)
                    else:  # per tensor (a step count)
                        slot[name] = value.clone() if torch.is_tensor(value) else value
        n = min(full._hist.shape[0], part._hist.shape[0])
        full._hist[:n, :, index] = part._hist[:n].to(full._hist.device)
    full.steps_done = max(full.steps_done, part.steps_done)
    full.seconds += part.seconds
