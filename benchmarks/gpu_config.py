"""The GPU check's sizes (`Config`: the real check or its CPU rehearsal), paths and the helpers all its parts share."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "assets" / "chelsea.png"
RESULTS = ROOT / "benchmarks" / "results"
SCRATCH = ROOT / "benchmarks" / "_scratch"
BENCH_MD = ROOT / "BENCHMARKS.md"


@dataclass
class Config:
    """Sizes of one check: the real one on a GPU, or the tiny CPU rehearsal (`dry`)."""

    dry: bool
    device: str
    size: int = 224
    seeds: int = 4
    steps: int = 500  # ResNet-50 layer4 timing, no early stop
    arch: str = "resnet50"
    layer: str = "layer4"
    curve_layers_r50: list | None = None  # None: every depth stop
    curve_layers_lite0: list | None = None
    curve_iters: int | None = None  # None: the default preset's own length
    frame_repeats: int = 5
    pytest_files: list = field(default_factory=lambda: ["tests/test_cuda.py", "tests/test_speed.py"])
    pytest_k: str | None = None
    pytest_timeout_s: int = 240
    sessions: list = field(default_factory=list)
    session_timeout_s: int = 120

    @classmethod
    def gpu(cls) -> "Config":
        dev = "cuda:0"
        return cls(dry=False, device="cuda", sessions=[
            {"model": "resnet50", "ckpt": "untrained", "layer": "layer4", "seeds": 4, "iters": 300, "size": 224,
             "device": dev},
            {"model": "resnet18", "ckpt": "untrained", "layer": "layer2", "seeds": 2, "iters": 200, "size": 128,
             "device": dev},
            {"model": "efficientnet_lite0", "ckpt": "trained", "layer": "blocks.3.0", "seeds": 3, "iters": 200,
             "size": 224, "device": dev},
            {"model": "resnet50", "ckpt": "untrained", "layer": "layer2", "seeds": 4, "iters": 250, "size": 160,
             "device": dev},
        ])

    @classmethod
    def rehearsal(cls) -> "Config":
        return cls(dry=True, device="cpu", size=32, seeds=2, steps=5, curve_layers_r50=["layer1", "layer4"],
                   curve_layers_lite0=["blocks.1.0", "blocks.5.0"], curve_iters=3, frame_repeats=2,
                   pytest_k="cuda", pytest_timeout_s=240, session_timeout_s=120, sessions=[
                       {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "seeds": 2, "iters": 10,
                        "size": 32, "device": "cpu"},
                       {"model": "resnet18", "ckpt": "untrained", "layer": "layer2", "seeds": 1, "iters": 12,
                        "size": 32, "device": "cpu"},
                       {"model": "efficientnet_lite0", "ckpt": "trained", "layer": "blocks.1.0", "seeds": 2,
                        "iters": 10, "size": 32, "device": "cpu"},
                       {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "seeds": 1, "iters": 14,
                        "size": 32, "device": "cpu"},
                   ])


T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress with the elapsed time, flushed, so a log shows where a long run is."""
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def fixed(preset, iters: int):
    """`preset` with exactly `iters` steps: early stopping off where the preset has it (a timing must not end early)."""
    extra = {"early_stop": False} if "early_stop" in preset.to_dict() else {}
    return preset.replace(iters=int(iters), **extra)


def free(device) -> None:
    """Drop the last part's tensors and cached device memory, so the next part starts from the same state."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()

