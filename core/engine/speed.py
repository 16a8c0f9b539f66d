"""Speed options for the engine: `SpeedOptions`, the CPU thread pick and BatchNorm folding.

`SpeedOptions` is a small switchboard: every option has a fallback (off) and the defaults of
`SpeedOptions.auto(device)` only turn on what keeps results the same up to float rounding (measured in
BENCHMARKS.md). Lossy options (bf16/fp16 autocast) and `torch.compile` are opt-in.

    run = Inversion(model, "layer4", image, seeds, preset, "cuda", speed=SpeedOptions.auto("cuda"))
    run = Inversion(..., speed=SpeedOptions.off())          # exactly the plain engine
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn

from core import threads as thread_policy
from core.threads import cpu_threads
from core.engine.cudagraphs import MAX_SHAPES, GraphedEncoder

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
    adapt_threads: bool = False  # CPU: follow the machine's load while running (`core.threads.Watch`)
    cuda_graphs: bool = False  # CUDA: the step's encoder forward and backward replayed as CUDA graphs
    async_snapshots: bool = False  # CUDA: snapshots copied to the host while the next steps run (core.engine.hostcopy)

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
            return cls(threads=cpu_threads(), adapt_threads=thread_policy.requested() is None)
        return cls()

    @classmethod
    def with_threads(cls, device: str | torch.device, threads: int | None) -> "SpeedOptions":
        """`auto`, but on the CPU with `threads` when given: rounding differs with the thread count, so the runs of
        one sweep or report take one count, not a timing probe's (`pick_cpu_threads`) run by run."""
        dev = torch.device(device) if not isinstance(device, torch.device) else device
        return cls(threads=int(threads)) if dev.type == "cpu" and threads else cls.auto(dev)

    def watch(self, device: torch.device) -> "thread_policy.Watch | None":
        """What the engine asks between steps to follow the load (None: a fixed count, or not the CPU)."""
        if device.type != "cpu" or not self.threads:
            return None
        return thread_policy.Watch(self.threads, fixed=not self.adapt_threads)

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
        plain call: a `core.engine.cudagraphs.GraphedEncoder` (keeping `keep` recordings) when `cuda_graphs` is on
        and the device is CUDA (the option means nothing elsewhere, as TF32 does not)."""
        if not (self.cuda_graphs and device.type == "cuda"):
            return None

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
