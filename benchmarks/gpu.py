"""The GPU check: one command that proves the GPU path on real hardware and records every number.

`python -m benchmarks --gpu` (or `make gpu-check`) is meant for someone who has an H100/H200 for a
few minutes, no network and only the project's requirements. In under 8 minutes it runs

1. the CUDA tests (tests/test_cuda.py and tests/test_speed.py, in a pytest subprocess),
2. the GPU benchmark: ResNet-50 `layer4` 224 px 4 seeds x 500 steps with every speed option
   switched separately, the full ResNet-50 and EfficientNet-Lite0 clarity curves, and the time to
   the first live frame, each against the FLOP limit of the device,
3. a 4-session load test of the app (Streamlit AppTest sessions in threads, so they share the
   app's device queue exactly as browser sessions of one server do; no browser needed),
4. `torch.compile` of the encoder, last, because its compile time is the least predictable,

then writes `benchmarks/results/<gpu>-<date>.json` and the GPU section of BENCHMARKS.md, and
prints a summary. Every section catches its own errors, so one failure never loses the other
numbers; the exit code is 1 if any section errored or a CUDA test failed, 2 without CUDA.

`--dry-run` rehearses all of it on the CPU at tiny sizes (32 px, 2 seeds, a few steps, two stops)
and writes to benchmarks/_scratch/ only, so the one GPU call can succeed the first time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import functools
import gc
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from core import Inversion, get_preset, load_image, load_model
from core.curve import batched, iter_curve
from core.jobs import snapshot_every
from core.devices import resolve_device
from core.speed import SpeedOptions

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "assets" / "chelsea.png"
RESULTS = ROOT / "benchmarks" / "results"
SCRATCH = ROOT / "benchmarks" / "_scratch"
BENCH_MD = ROOT / "BENCHMARKS.md"
GPU_START, GPU_END = "<!-- gpu:start -->", "<!-- gpu:end -->"
TIME_BUDGET_S = 330  # torch.compile (last, optional) is skipped past this: the whole must stay < 8 min
HARD_STOP_S = 520  # any part not yet started by then is skipped, so the files are written before a 10 min kill
OPTIONAL_BY_S = 300  # the benchmark's comparisons (live loop, curves with graphs, sequential) not started past this:
# the load test after them is a target

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets; TF32 is half.
PEAK_BF16 = [("gh200", 989.0), ("h200", 989.0), ("h100 nvl", 835.0), ("h100 pcie", 756.0), ("h100", 989.0),
             ("a100", 312.0), ("l40s", 362.0), ("l4", 121.0), ("a10", 125.0)]


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


# --------------------------------------------------------------------------- small helpers

T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress with the elapsed time, flushed, so a log shows where a long run is."""
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def fixed(preset, iters: int):
    """`preset` with exactly `iters` steps: early stopping off where the preset has it (a timing must not end early)."""
    extra = {"early_stop": False} if "early_stop" in preset.to_dict() else {}
    return preset.replace(iters=int(iters), **extra)


def free(device) -> None:
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def device_name(cfg: Config) -> str:
    if torch.device(cfg.device).type == "cuda":
        return torch.cuda.get_device_name(0)
    from benchmarks.runner import cpu_name

    return f"{cpu_name()} (CPU dry run)"


def versions() -> dict:
    import numpy
    import torchvision

    out = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
           "numpy": numpy.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    for mod in ("timm", "streamlit", "plotly", "pandas", "pyarrow", "google.protobuf"):
        try:
            out[mod.split(".")[-1]] = __import__(mod, fromlist=["__version__"]).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is a fact to record, not an error
            out[mod.split(".")[-1]] = None
    return out


@contextlib.contextmanager
def backend_flags(defaults: dict):
    """Restore torch's TF32/cudnn.benchmark switches before a variant: SpeedOptions only ever turns them on,
    so without this every variant after `auto` would silently run with TF32 and autotuning."""
    def put(d):
        with contextlib.suppress(Exception):
            torch.backends.cuda.matmul.allow_tf32 = d["matmul_tf32"]
            torch.backends.cudnn.allow_tf32 = d["cudnn_tf32"]
            torch.backends.cudnn.benchmark = d["cudnn_benchmark"]
    put(defaults)
    try:
        yield
    finally:
        put(defaults)


def current_flags() -> dict:
    return {"matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32),
            "cudnn_benchmark": bool(torch.backends.cudnn.benchmark)}


# --------------------------------------------------------------------------- FLOPs and the limit


def peak_tflops(cfg: Config, name: str) -> dict:
    """The device's dense bf16 peak: from the data-sheet table, else measured with a large matmul
    (bf16 on a GPU, fp32 on the CPU, where it is the rehearsal's stand-in)."""
    low = name.lower()
    for key, value in PEAK_BF16:
        if key in low and torch.device(cfg.device).type == "cuda":
            return {"bf16": value, "tf32": value / 2, "source": f"data sheet ({key})"}
    dev = torch.device(cfg.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    n = 8192 if dev.type == "cuda" else 512
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    a @ b
    sync(dev)
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < 0.5:
        a @ b
        reps += 1
        sync(dev)
    tf = 2 * n**3 * reps / (time.perf_counter() - t) / 1e12
    return {"bf16": tf, "tf32": tf / 2, "source": f"measured {dtype} matmul {n}^3 (device not in the table)"}


def stop_flops(arch: str, nodes: list[str] | None, size: int) -> dict:
    """FLOPs of one seed-step (forward + input gradient) for every depth stop, from one counted forward.

    A forward hook on each stop's module reads the running count of `FlopCounterMode` (2 FLOP per
    multiply-add). The input gradient of a conv or linear layer costs what its forward costs, and
    every layer before a stop needs it (the input is what is optimised), so a step is 2 x the forward
    up to the stop. Runs on the meta device (no arithmetic), else on the CPU.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from core import depth_stops

    model = load_model(arch, "untrained", size)
    nodes = nodes or [s.node for s in depth_stops(model)]
    for dev in ("meta", "cpu"):
        try:
            module = copy.deepcopy(model.module).to(dev).eval()
            mods = dict(module.named_modules())
            seen: dict[str, int] = {}
            with FlopCounterMode(display=False) as counter:
                def hook(name):
                    def record(_m, _i, _o):  # returns None: a hook's return value would replace the output
                        seen.setdefault(name, counter.get_total_flops())
                    return record

                handles = [mods[n].register_forward_hook(hook(n)) for n in nodes if n in mods]
                try:
                    with torch.no_grad():
                        module(torch.zeros(1, 3, size, size, device=dev))
                finally:
                    for h in handles:
                        h.remove()
            return {n: (2 * seen[n] if n in seen else None) for n in nodes}
        except Exception:  # noqa: BLE001 - meta may not support every op: count on the CPU instead
            continue
    return {n: None for n in nodes}


def step_flops_exact(model, layer: str, image, device) -> dict:
    """One seed's step and the run's set-up, counted through the engine itself (a check of `stop_flops`)."""
    from torch.utils.flop_counter import FlopCounterMode

    preset = fixed(get_preset("default"), 2)
    with FlopCounterMode(display=False) as fc:
        run = Inversion(model, layer, image, [0], preset, device, speed=SpeedOptions.off())
    build = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc2:
        gen = run.snapshots(every=1)
        next(gen)
        gen.close()
    return {"step_per_seed": fc2.get_total_flops(), "build": build}


def limit(flops: float | None, seconds: float | None, peak: dict) -> dict:
    """Seconds at the bf16 peak, measured / that, and the achieved rate."""
    if not flops or not seconds:
        return {"flops": flops, "flop_limit_s": None, "flop_ratio": None, "tflops": None, "peak_fraction": None}
    lim = flops / (peak["bf16"] * 1e12)
    tf = flops / seconds / 1e12
    return {"flops": flops, "flop_limit_s": lim, "flop_ratio": seconds / lim, "tflops": tf,
            "peak_fraction": tf / peak["bf16"]}


# --------------------------------------------------------------------------- 1. CUDA tests


def cuda_tests(cfg: Config, out_dir: Path) -> dict:
    """pytest in a subprocess (a fresh CUDA context; its memory caps cannot touch this process)."""
    junit = out_dir / "cuda-tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={junit}",
           *cfg.pytest_files]
    if cfg.pytest_k:
        cmd += ["-k", cfg.pytest_k]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=cfg.pytest_timeout_s)
        rc, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, text = None, f"timed out after {cfg.pytest_timeout_s} s\n{exc.stdout or ''}"
    out = {"cmd": "python " + " ".join(c for c in cmd[1:] if not c.startswith("--junitxml")), "returncode": rc, "seconds": time.perf_counter() - t,
           "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "failures": [], "skips": [], "properties": {},
           "tail": "\n".join(text.strip().splitlines()[-15:])}
    if junit.exists():
        root = ET.parse(junit).getroot()
        for case in root.iter("testcase"):
            name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
            kids = {c.tag: c for c in case}
            if "failure" in kids or "error" in kids:
                out["failed" if "failure" in kids else "errors"] += 1
                k = kids.get("failure", kids.get("error"))
                out["failures"].append(f"{name}: {(k.get('message') or '')[:300]}")
            elif "skipped" in kids:
                out["skipped"] += 1
                out["skips"].append(f"{name}: {(kids['skipped'].get('message') or '')[:120]}")
            else:
                out["passed"] += 1
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            if props:
                out["properties"][name] = props
        junit.unlink()
    out["ok"] = rc in (0, 5) and out["failed"] == 0 and out["errors"] == 0
    log(f"  {out['passed']} passed, {out['failed']} failed, {out['errors']} errors, {out['skipped']} skipped "
        f"in {out['seconds']:.0f} s")
    for f in out["failures"]:
        log(f"  FAILED {f}")
    return out


# --------------------------------------------------------------------------- 2. benchmark


def _variant_run(model, image, cfg: Config, opts: SpeedOptions, warm: int, every: int):
    """Warm-up then `cfg.steps` timed steps in one Inversion (a new one would recompile under torch.compile).

    Snapshots every `every` steps as `Inversion.run()` does; the timer starts at the first one (after
    `warm` steps, with the device synchronised) and stops after the last step, synchronised.
    """
    preset = fixed(get_preset("default"), warm + cfg.steps)
    seeds = list(range(cfg.seeds))
    t = time.perf_counter()
    run = Inversion(model, cfg.layer, image, seeds, preset, cfg.device, speed=opts)
    sync(cfg.device)
    build = time.perf_counter() - t
    if torch.device(cfg.device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    start, warm_s = None, None
    for snap in run.snapshots(every=every):
        if start is None:
            sync(cfg.device)
            start = time.perf_counter()
            warm_s = start - t
            first_step = snap.step
    sync(cfg.device)
    loop = time.perf_counter() - start
    res = run.result()
    graphs = run.step_encoder
    graphs = None if graphs is None else {"recorded": graphs.recorded, "replays": graphs.replays,
                                          "failed": graphs.failed}
    peak_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.device(cfg.device).type == "cuda" else None
    return {"seconds": loop, "timed_steps": res.steps_done - first_step, "warmup_s": warm_s,
            "warmup_steps": first_step, "build_s": build, "steps_done": res.steps_done, "peak_mb": peak_mb,
            "seed_steps_per_s": cfg.seeds * (res.steps_done - first_step) / loop, "cuda_graphs": graphs}, res


def _compare(res, ref) -> dict:
    """How far a variant's result is from the fp32 reference: the tolerance of that option, measured."""
    if ref is None:
        return {}
    mg, mg0 = res.metrics["embedding_l2"], ref.metrics["embedding_l2"]
    mi, mi0 = res.metrics["input_l2"], ref.metrics["input_l2"]
    spread = float((ref.images[0] - ref.images[1]).abs().mean()) if len(ref.images) > 1 else None
    return {"m_g_rel_diff": max(abs(a - b) / max(b, 1e-12) for a, b in zip(mg, mg0)),
            "m_i_rel_diff": max(abs(a - b) / max(b, 1e-12) for a, b in zip(mi, mi0)),
            "clarity_diff": abs(res.metrics["clarity"] - ref.metrics["clarity"]),
            "mean_pixel_diff": float((res.images - ref.images).abs().mean()),
            "max_pixel_diff": float((res.images - ref.images).abs().max()),
            "seed_spread_pixels": spread}


def speed_variants(cfg: Config, include_compile: bool) -> dict:
    """The layer4 timing target with each speed option switched on by itself, then the combinations."""
    auto = SpeedOptions.auto(cfg.device)
    cuda = torch.device(cfg.device).type == "cuda"
    # CPU (the rehearsal): every variant with the threads auto picks; torch's default count on a busy
    # machine is ~30x slower and would only measure the contention (see core.speed.pick_cpu_threads)
    off = SpeedOptions.off() if cuda else SpeedOptions(threads=auto.threads)
    variants = [("fp32 strict (cudnn TF32 off)", off, {"cudnn_tf32": False}),
                ("off (torch defaults)", off, None),
                ("channels_last", off.replace(channels_last=True), None),
                ("tf32", off.replace(tf32=True), None),
                ("cudnn_benchmark", off.replace(cudnn_benchmark=True), None),
                ("bf16 autocast", off.replace(autocast_dtype=torch.bfloat16), None),
                ("auto", auto, None),
                ("auto + cuda graphs", auto.replace(cuda_graphs=True), None),
                ("auto + bf16", auto.replace(autocast_dtype=torch.bfloat16), None),
                ("auto + cuda graphs + bf16", auto.replace(cuda_graphs=True, autocast_dtype=torch.bfloat16), None)]
    if not cuda:
        variants = [v for v in variants if not v[0].startswith(("fp32 strict", "tf32", "cudnn"))]
    if include_compile:
        variants = [("auto + compile", auto.replace(compile=True), None)]
    model = load_model(cfg.arch, "untrained", cfg.size)
    image = load_image(str(IMAGE), cfg.size)
    every = max(1, cfg.steps // 10)
    defaults = DEFAULT_FLAGS
    out, ref = {}, REF.get("result")
    for name, opts, flags in variants:
        log(f"  {name} ...")
        # the engine's encoder shares the model's parameters, and channels_last converts them in place:
        # every variant starts from the plain layout, or the options after channels_last would all inherit it
        model.module.to(memory_format=torch.contiguous_format)
        try:
            with backend_flags({**defaults, **(flags or {})}), compile_backend(cfg):
                row, res = _variant_run(model, image, cfg, opts, every, every)
            row.update(options=opts.to_dict(), flags=current_flags() if cuda else None, **_compare(res, ref))
            if ref is None:
                ref = REF["result"] = res
                REF["name"] = name
        except Exception as exc:  # noqa: BLE001 - one option failing (compile, often) must not lose the others
            row = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "traceback": traceback.format_exc()[-2000:]}
            log(f"    error: {row['error'][:200]}")
        out[name] = row
        if "seconds" in row:
            log(f"    {row['seconds']:.3f} s for {row['timed_steps']} steps x {cfg.seeds} seeds "
                f"({row['seed_steps_per_s']:.0f} seed-steps/s; warm-up {row['warmup_s']:.2f} s)"
                + (f"; m_g rel diff {row['m_g_rel_diff']:.1e}, clarity diff {row['clarity_diff']:.1e}"
                   if "m_g_rel_diff" in row else ""))
        free(cfg.device)
    return out


DEFAULT_FLAGS: dict = {}
REF: dict = {}


@contextlib.contextmanager
def compile_backend(cfg: Config):
    """The rehearsal compiles with dynamo's `eager` backend: the same code path in seconds, not minutes
    (inductor's C++ build on a 2-core CPU would take most of the dry run's budget)."""
    if not cfg.dry:
        yield
        return
    real = torch.compile
    torch.compile = functools.partial(real, backend="eager")
    try:
        yield
    finally:
        torch.compile = real


def curve_run(cfg: Config, arch: str, checkpoints_and_seeds: list[tuple[str, int]], layers,
              batch_stops: str = "auto", speed: SpeedOptions | None = None) -> dict:
    """One whole clarity curve, timed from the first model load to the last row (a warm process: one
    short stop first, so imports, cuDNN autotuning and the curve's planning are not counted).
    `batch_stops` as for `iter_curve` (auto: every stop of a checkpoint in one batch on CUDA); `speed`: the
    runs' options (None: the engine's auto)."""
    preset = get_preset("default")
    if cfg.curve_iters:
        preset = preset.replace(iters=cfg.curve_iters)
    image = load_image(str(IMAGE), cfg.size)
    seeds = list(range(cfg.seeds))
    if layers:
        deepest = layers[-1]
    else:
        from core import depth_stops

        deepest = depth_stops(load_model(arch, "untrained", cfg.size))[-1].node
    for _ in iter_curve(arch, image, [checkpoints_and_seeds[0][0]], layers=[deepest], seeds=seeds,
                        preset=fixed(preset, 3), device=cfg.device, init_seed=checkpoints_and_seeds[0][1],
                        use_cache=False, speed=speed):
        pass  # the deepest stop runs (and autotunes) every layer of the network once
    free(cfg.device)
    rows = []
    from core.cudagraphs import STATS

    graphs_before = {"recorded": STATS["recorded"], "replays": STATS["replays"], "failed": len(STATS["failed"])}
    sync(cfg.device)
    t = time.perf_counter()
    for ck, init_seed in checkpoints_and_seeds:
        for row in iter_curve(arch, image, [ck], layers=layers, seeds=seeds, preset=preset, device=cfg.device,
                              init_seed=init_seed, use_cache=False, batch_stops=batch_stops, speed=speed):
            r = row.result
            rows.append({"checkpoint": ck, "init_seed": init_seed, "layer": row.layer, "steps_done": r.steps_done,
                         "seconds": r.seconds, "clarity": r.metrics.get("clarity")})
    sync(cfg.device)
    wall = time.perf_counter() - t
    engine = sum(r["seconds"] for r in rows)
    seed_steps = sum(r["steps_done"] for r in rows) * len(seeds)
    together = batched(batch_stops, resolve_device(cfg.device))
    graphs = {"recorded": STATS["recorded"] - graphs_before["recorded"],
              "replays": STATS["replays"] - graphs_before["replays"],
              "failed": STATS["failed"][graphs_before["failed"]:]}
    log(f"  {len(rows)} runs, {seed_steps} seed-steps, {'stops in one batch' if together else 'one stop at a time'}: "
        f"{wall:.2f} s wall ({engine:.2f} s in the runs, summed)")
    return {"arch": arch, "batch_stops": batch_stops, "together": together,
            "speed": (speed or SpeedOptions.auto(cfg.device)).to_dict(), "cuda_graphs": graphs,
            "checkpoints": [f"{c} (init seed {s})" if c == "untrained" else c for c, s in checkpoints_and_seeds],
            "preset": preset.to_dict(), "seeds": len(seeds), "size": cfg.size, "seconds": wall,
            "engine_seconds": engine, "seed_steps": seed_steps, "runs": len(rows), "rows": rows}


class _FirstFrame(Exception):
    """Raised from the first snapshot's callback: the probe has what it measures."""


def first_frame(cfg: Config) -> dict:
    """Run pressed in a warm app (model loaded): `core.jobs.run` (cache lookup, queue, memory plan, engine)
    until its first snapshot (every=1) is on the host; the run is then abandoned, as a rerun would."""
    from core.jobs import Callbacks, RunSpec, run

    model = load_model(cfg.arch, "untrained", cfg.size)
    image = load_image(str(IMAGE), cfg.size)
    seeds = list(range(cfg.seeds))
    times = []

    def first(snap):
        assert snap.step == 1 and snap.images.device.type == "cpu"
        raise _FirstFrame

    for i in range(cfg.frame_repeats + 1):  # the first one warms the process up (traces, cuDNN)
        preset = get_preset("default", iters=100 + i)  # a new spec each time: never a cache hit
        sync(cfg.device)
        t = time.perf_counter()
        try:
            run(RunSpec.of(model, cfg.layer, image, seeds, preset, cfg.device), image, model, use_cache=False,
                callbacks=Callbacks(snapshot=first, progress=first), every=1)
        except _FirstFrame:
            pass
        sync(cfg.device)
        times.append(time.perf_counter() - t)
    warm = times[1:]
    log(f"  first frame: cold {times[0]:.3f} s, warm median {statistics.median(warm):.3f} s, max {max(warm):.3f} s")
    return {"seconds": statistics.median(warm), "max_s": max(warm), "cold_s": times[0], "all_s": times,
            "seeds": len(seeds), "size": cfg.size, "layer": cfg.layer}


def _draw(snap, hist: dict, seeds: list[int]) -> None:
    """What the Invert page's live view does with a snapshot, without Streamlit: enlarge and PNG-encode each
    seed's image, and build and serialise the distances chart (`ui.live.LiveView.update`)."""
    import io

    from core.report import trajectory_figure
    from ui.views import upscale

    for im in snap.images:
        upscale(im, 128).save(io.BytesIO(), "PNG")
    hist["step"].append(snap.step)
    hist["mg"].append(snap.embedding_l2)
    hist["mi"].append(snap.input_l2)
    if len(hist["step"]) > 1:
        trajectory_figure({"step": hist["step"], "embedding_l2": list(map(list, zip(*hist["mg"]))),
                           "input_l2": list(map(list, zip(*hist["mi"])))}, seeds, height=260).to_json()


def live_loop(cfg: Config) -> dict:
    """The Invert page's live loop: ResNet-50 `layer4`, 200 steps with a snapshot every 13 (the app's pick),
    each one drawn as the page draws it. Per option set, after a short warm-up run (recording, cuDNN's
    tuning), the run without the drawing and with it; *hidden* is the share of the drawing time the run did
    not pay for (1: the GPU worked on while the host drew; 0: the GPU waited for every drawing)."""
    steps = max(20, cfg.steps * 2 // 5)
    every = snapshot_every(None, steps)  # what the app's runs use
    model = load_model(cfg.arch, "untrained", cfg.size)
    image = load_image(str(IMAGE), cfg.size)
    seeds = list(range(cfg.seeds))
    preset = fixed(get_preset("default"), steps)
    auto = SpeedOptions.auto(cfg.device)
    out = {"steps": steps, "every": every, "seeds": len(seeds), "size": cfg.size}
    for name, opts in (("auto", auto), ("auto + async snapshots", auto.replace(async_snapshots=True)),
                       ("auto + cuda graphs", auto.replace(cuda_graphs=True)),
                       ("auto + cuda graphs + async snapshots", auto.replace(cuda_graphs=True, async_snapshots=True))):
        row = {}
        Inversion(model, cfg.layer, image, seeds, fixed(preset, 10), cfg.device, speed=opts).run()  # warm-up
        for drawing in (False, True):
            run = Inversion(model, cfg.layer, image, seeds, preset, cfg.device, speed=opts)
            hist, drawn = {"step": [], "mg": [], "mi": []}, 0.0
            sync(cfg.device)
            t = time.perf_counter()
            for snap in run.snapshots(every=every):
                if drawing:
                    t1 = time.perf_counter()
                    _draw(snap, hist, seeds)
                    drawn += time.perf_counter() - t1
            sync(cfg.device)
            row["with_drawing_s" if drawing else "without_s"] = time.perf_counter() - t
            if drawing:
                row["drawing_s"] = drawn
            free(cfg.device)
        row["hidden"] = max(0.0, min(1.0, (row["without_s"] + row["drawing_s"] - row["with_drawing_s"])
                                     / max(row["drawing_s"], 1e-9)))
        out[name] = row
        log(f"  {name}: {row['without_s']:.2f} s bare, {row['with_drawing_s']:.2f} s drawing "
            f"({row['drawing_s']:.2f} s of drawing, {100 * row['hidden']:.0f}% hidden)")
    return out


def out_of_time(cfg: Config) -> str | None:
    """Why a part must be skipped now (past HARD_STOP_S on the GPU), or None."""
    elapsed = time.perf_counter() - T0
    if cfg.dry or elapsed < HARD_STOP_S:
        return None
    return f"out of time: {elapsed:.0f} s spent (hard stop {HARD_STOP_S} s)"


def benchmark(cfg: Config, report: dict, save=lambda: None) -> None:
    """Fill report['benchmark'] part by part (saving after each), so an error in one part keeps the others."""
    bench = report["benchmark"]
    cuda = torch.device(cfg.device).type == "cuda"
    if cuda:
        DEFAULT_FLAGS.update(current_flags())
    else:
        DEFAULT_FLAGS.update(matmul_tf32=False, cudnn_tf32=False, cudnn_benchmark=False)

    def part(name, fn, optional: bool = False):
        log(f"benchmark: {name}")
        elapsed = time.perf_counter() - T0
        if optional and not cfg.dry and elapsed > OPTIONAL_BY_S:  # a skip, not an error
            bench[name] = {"skipped": f"{elapsed:.0f} s already spent (comparisons start before {OPTIONAL_BY_S} s)"}
            log(f"  skipped: {bench[name]['skipped']}")
            return
        late = out_of_time(cfg)
        if late:
            bench[name] = {"error": late}
            log(f"  skipped: {late}")
            return
        try:
            bench[name] = fn()
        except Exception as exc:  # noqa: BLE001
            bench[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}",
                           "traceback": traceback.format_exc()[-3000:]}
            log(f"  error: {bench[name]['error'][:300]}")
        free(cfg.device)
        save()

    def flops():
        out = {"r50": stop_flops(cfg.arch, cfg.curve_layers_r50, cfg.size),
               "lite0": stop_flops("efficientnet_lite0", cfg.curve_layers_lite0, cfg.size)}
        est = out["r50"].get(cfg.layer)
        try:  # the same step counted through the engine: a check of the hook count, and the set-up's FLOPs
            model = load_model(cfg.arch, "untrained", cfg.size)
            ex = out["exact_" + cfg.layer] = step_flops_exact(model, cfg.layer, load_image(str(IMAGE), cfg.size),
                                                              cfg.device)
            exact = f"{ex['step_per_seed'] / 1e9:.2f}"
        except Exception as exc:  # noqa: BLE001 - the hook count alone still gives every limit but the first frame
            out["exact_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            exact = out["exact_error"]
        log(f"  {cfg.arch} {cfg.layer} {cfg.size} px: {est / 1e9 if est else float('nan'):.2f} GFLOP per seed-step "
            f"(counted through the engine: {exact})")
        return out

    part("flops", flops)
    part("layer4", lambda: speed_variants(cfg, include_compile=False))
    # "on", which auto is on CUDA: the dry run on the CPU rehearses the batched path too
    part("curve_resnet50", lambda: curve_run(cfg, "resnet50", [("untrained", 0), ("untrained", 1)],
                                             cfg.curve_layers_r50, batch_stops="on"))
    part("curve_lite0", lambda: curve_run(cfg, "efficientnet_lite0", [("untrained", 0), ("trained", 0)],
                                          cfg.curve_layers_lite0, batch_stops="on"))
    part("first_frame", lambda: first_frame(cfg))
    # comparisons, after every target (a slow one must not push a target, or the load test, past the stops)
    part("live_loop", lambda: live_loop(cfg), optional=True)
    graphs = SpeedOptions.auto(cfg.device).replace(cuda_graphs=True)  # each target row takes the faster curve
    part("curve_resnet50_graphs", lambda: curve_run(cfg, "resnet50", [("untrained", 0), ("untrained", 1)],
                                                    cfg.curve_layers_r50, batch_stops="on", speed=graphs),
         optional=True)
    part("curve_lite0_graphs", lambda: curve_run(cfg, "efficientnet_lite0", [("untrained", 0), ("trained", 0)],
                                                 cfg.curve_layers_lite0, batch_stops="on", speed=graphs),
         optional=True)
    part("curve_resnet50_sequential", lambda: curve_run(cfg, "resnet50", [("untrained", 0), ("untrained", 1)],
                                                        cfg.curve_layers_r50, batch_stops="off"), optional=True)


# --------------------------------------------------------------------------- 3. load test


@contextlib.contextmanager
def shared_runtime():
    """Let AppTest sessions run in threads. Each `AppTest.run` installs a mock Runtime and sets it back
    to None when it ends, which would pull the runtime from under a session still running in another
    thread; here a session that finds none gets the last one installed (they are interchangeable)."""
    from streamlit.runtime.runtime import Runtime

    orig_instance, orig_exists = Runtime.__dict__["instance"], Runtime.__dict__["exists"]
    last: list = []

    def instance(cls):
        if cls._instance is not None:
            last[:] = [cls._instance]
            return cls._instance
        if last:
            return last[0]
        return orig_instance.__func__(cls)

    def exists(cls):
        return cls._instance is not None or bool(last)

    Runtime.instance, Runtime.exists = classmethod(instance), classmethod(exists)
    try:
        yield
    finally:
        Runtime.instance, Runtime.exists = orig_instance, orig_exists


def app_session(query: dict, timeout: float) -> dict:
    """One visitor: open the app with a link, let it run (a first visit runs by itself; else press Run)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    for k, v in {"image": "chelsea", "preset": "default", **query}.items():
        at.query_params[k] = str(v)
    t = time.perf_counter()
    out = {"config": query}
    try:
        at.run()

        def shown():
            try:
                return at.session_state["inv_result"]["result"]
            except (KeyError, TypeError):
                return None

        clicked = False
        if shown() is None and not at.exception:
            clicked = True
            at.button(key="inv_run").click().run()
        res = shown()
        out.update(seconds=time.perf_counter() - t, clicked_run=clicked,
                   errors=[e.value for e in at.error], exceptions=[str(e.value)[:500] for e in at.exception],
                   warnings=[w.value[:200] for w in at.warning])
        if res is not None:
            out.update(steps_done=res.steps_done, seeds=len(res.seeds), device=res.device,
                       engine_seconds=res.seconds, clarity=res.metrics.get("clarity"))
        out["ok"] = res is not None and not out["errors"] and not out["exceptions"]
    except Exception as exc:  # noqa: BLE001 - a session's crash is this session's result
        out.update(seconds=time.perf_counter() - t, ok=False, exceptions=[f"{type(exc).__name__}: {exc}"[:500]],
                   errors=[])
    return out


def load_test(cfg: Config) -> dict:
    """Four sessions, each alone (its own work), then all four at once through the app's shared device queue.

    Check: no session waits more than the sum of the others' work (wait = together - alone), no error.
    The result cache is emptied between the phases so the four really compute again.
    """
    import streamlit as st

    cache_dir = Path(tempfile.mkdtemp(prefix="gpu-check-runcache-"))
    os.environ["INVERSION_CACHE_DIR"] = str(cache_dir)  # before the app's first run builds its RunCache

    def empty_caches():
        shutil.rmtree(cache_dir, ignore_errors=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        st.cache_data.clear()  # the app's in-memory copies of cached results (and its estimates)

    sessions = cfg.sessions
    # st.cache_data.clear() outside a script run warns "missing ScriptRunContext" once per call: noise here
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
    try:
        with shared_runtime():
            log("  warm-up: each configuration once with 10 iterations (models, imports, cuDNN)")
            warm = [app_session({**q, "iters": 10}, cfg.session_timeout_s) for q in sessions]
            for w in warm:
                if not w.get("ok"):
                    log(f"    warm-up problem: {w.get('errors')} {w.get('exceptions')}")
            empty_caches()
            alone = []
            for i, q in enumerate(sessions):
                alone.append(app_session(q, cfg.session_timeout_s))
                log(f"  session {i} alone: {alone[-1]['seconds']:.2f} s ({'ok' if alone[-1]['ok'] else 'NOT ok'})")
            empty_caches()
            together: list = [None] * len(sessions)
            barrier = threading.Barrier(len(sessions) + 1)

            def worker(i):
                barrier.wait()
                together[i] = app_session(sessions[i], cfg.session_timeout_s)

            queue_seen = {"max_waiting": 0, "max_running": 0}
            threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(sessions))]
            for th in threads:
                th.start()
            barrier.wait()
            t = time.perf_counter()
            try:
                from core.runqueue import queue_for

                queue = queue_for(str(torch.device(sessions[0]["device"])))
            except Exception:  # noqa: BLE001 - the queue's state is evidence, not a requirement
                queue = None
            while any(th.is_alive() for th in threads):
                if queue is not None:
                    s = queue.state()
                    queue_seen["max_waiting"] = max(queue_seen["max_waiting"], s["waiting"])
                    queue_seen["max_running"] = max(queue_seen["max_running"], s["running"])
                time.sleep(0.01)
            wall = time.perf_counter() - t
            for th in threads:
                th.join()
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    rows, ok_all = [], True
    for i, (a, g) in enumerate(zip(alone, together)):
        others = sum(x["seconds"] for j, x in enumerate(alone) if j != i)
        waited = g["seconds"] - a["seconds"]
        error_free = bool(a.get("ok") and g.get("ok"))
        fine = error_free and waited <= others
        ok_all &= fine
        rows.append({"session": i, "config": sessions[i], "alone_s": a["seconds"], "together_s": g["seconds"],
                     "waited_s": waited, "others_work_s": others, "error_free": error_free, "ok": fine,
                     "alone": a, "together": g})
        log(f"  session {i}: alone {a['seconds']:.2f} s, together {g['seconds']:.2f} s, waited {waited:.2f} s "
            f"<= others' work {others:.2f} s: {waited <= others}; errors {g.get('errors')} {g.get('exceptions')}")
    log(f"  four at once: {wall:.2f} s wall; queue seen with up to {queue_seen['max_waiting']} waiting")
    return {"sessions": rows, "wall_s": wall, "queue": queue_seen, "pass": ok_all,
            "warmup": [{"ok": w.get("ok"), "seconds": w.get("seconds"), "errors": w.get("errors"),
                        "exceptions": w.get("exceptions")} for w in warm]}


# --------------------------------------------------------------------------- targets and report


def targets(cfg: Config, report: dict) -> list[dict]:
    """One row per target of issue 12: measured seconds, the FLOP limit and pass/fail."""
    b, peak = report["benchmark"], report["peak_tflops"]
    fl = b.get("flops") if isinstance(b.get("flops"), dict) and "error" not in b.get("flops", {}) else None
    rows = []

    def row(what, target, measured, flops, extra="", check=None):
        r = {"what": what, "target_s": target, "measured_s": measured, "note": extra}
        r.update(limit(flops, measured, peak))
        r["pass"] = None if measured is None or (target is None and check is None) else bool(
            check if check is not None else measured <= target)
        rows.append(r)

    per = (fl or {}).get("r50", {}).get(cfg.layer)
    l4 = b.get("layer4") or {}
    timed = {k: v for k, v in l4.items() if isinstance(v, dict) and "seconds" in v}
    comp = (b.get("compile") or {}).get("auto + compile") if isinstance(b.get("compile"), dict) else None
    if comp and "seconds" in comp:
        timed["auto + compile"] = comp
    if timed:
        best = min(timed, key=lambda k: timed[k]["seconds"])
        v = timed[best]
        fl4 = per * cfg.seeds * v["timed_steps"] if per else None
        row(f"ResNet-50 `{cfg.layer}` {cfg.size} px, {cfg.seeds} seeds x {v['timed_steps']} steps", 1.0,
            v["seconds"], fl4, f"best option: {best}" + (f"; auto {timed['auto']['seconds']:.3f} s"
                                                          if "auto" in timed and best != "auto" else ""))
    def faster(key):  # the batched curve, with CUDA graphs where that run replayed graphs and was faster
        plain, graphed = b.get(key) or {}, b.get(key + "_graphs") or {}
        replayed = (graphed.get("cuda_graphs") or {}).get("replays")
        if not replayed:
            failed = (graphed.get("cuda_graphs") or {}).get("failed")
            return plain, f"CUDA graphs failed to record: {failed[0][:120]}" if failed else ""
        if "seconds" in graphed and ("seconds" not in plain or graphed["seconds"] < plain["seconds"]):
            other = f"; without graphs {plain['seconds']:.2f} s" if "seconds" in plain else ""
            return graphed, "with CUDA graphs" + other
        other = f"; with CUDA graphs {graphed['seconds']:.2f} s" if "seconds" in graphed else ""
        return plain, other.lstrip("; ")

    for key, arch_key, what, target in (
            ("curve_resnet50", "r50", "ResNet-50 curve, {runs} runs (stops x 2 untrained inits), {seeds} seeds, "
                                      "{size} px, default preset", 15.0),
            ("curve_lite0", "lite0", "EfficientNet-Lite0 curve, {runs} runs (stops x untrained+trained), "
                                     "{seeds} seeds, {size} px, default preset", 10.0),
            ("curve_resnet50_sequential", "r50", "the same ResNet-50 curve one stop at a time (--batch-stops off)",
             None)):
        c, which = faster(key) if target is not None else (b.get(key) or {}, "")
        if "seconds" in c:
            per_stop = (fl or {}).get(arch_key, {})
            flops = None
            if per_stop and all(per_stop.get(r["layer"]) for r in c["rows"]):
                flops = sum(per_stop[r["layer"]] * r["steps_done"] * c["seeds"] for r in c["rows"])
            how = "stops of a checkpoint in one batch" if c.get("together") else "one stop at a time"
            row(what.format(**c), target, c["seconds"], flops,
                f"{how}; {c['seed_steps']} seed-steps; {c['engine_seconds']:.2f} s in the runs, summed"
                + (f"; {which}" if which else ""))
    f = b.get("first_frame") or {}
    if "seconds" in f:
        ex = (fl or {}).get("exact_" + cfg.layer) or {}
        flops = ex["build"] + ex["step_per_seed"] * f["seeds"] if ex else None
        row(f"first live frame after Run (ResNet-50 `{f['layer']}`, {f['size']} px, {f['seeds']} seeds)", 0.5,
            f["seconds"], flops, f"median of {len(f['all_s']) - 1} warm; cold {f['cold_s']:.3f} s")
    lt = report.get("load_test") or {}
    if "sessions" in lt:
        worst = max(lt["sessions"], key=lambda s: s["waited_s"] - s["others_work_s"])
        r = {"what": f"{len(lt['sessions'])} app sessions at once", "target_s": None, "measured_s": lt["wall_s"],
             "note": f"worst wait {worst['waited_s']:.2f} s vs others' work {worst['others_work_s']:.2f} s; "
                     f"sessions with an error: {sum(not s['error_free'] for s in lt['sessions'])}",
             **limit(None, None, peak), "pass": lt["pass"]}
        rows.append(r)
    return rows


def fmt_s(v) -> str:
    return "-" if v is None else (f"{v:.3f} s" if v < 10 else f"{v:.1f} s")


def markdown(cfg: Config, report: dict) -> str:
    """The GPU section of BENCHMARKS.md (between the gpu markers, so a rerun replaces it)."""
    peak, v = report["peak_tflops"], report["versions"]
    t = report.get("cuda_tests")
    tests = "not run (--skip)" if t is None else ("error: " + t["error"]) if "error" in t else (
        f"{t.get('passed', 0)} passed, {t.get('failed', 0)} failed, {t.get('errors', 0)} errors, "
        f"{t.get('skipped', 0)} skipped (`{t.get('cmd', '')}`)")
    lines = [GPU_START, "## GPU", "",
             f"Latest `make gpu-check`{' (DRY RUN on the CPU: not GPU numbers)' if cfg.dry else ''}: "
             f"{report['date']} on **{report['device']}**"
             + (f" ({report['memory_gb']:.0f} GB)" if report.get("memory_gb") else "") + ". "
             f"torch {v['torch']}, CUDA {v['cuda']}, cuDNN {v['cudnn']}, streamlit {v.get('streamlit')}. "
             f"Raw numbers: `{report['json']}`. Whole check: {report['seconds']:.0f} s.", "",
             f"CUDA tests: {tests}.", "",
             f"FLOP limit: FLOPs counted with `torch.utils.flop_counter.FlopCounterMode` (2 FLOP per multiply-add; "
             f"a step is the forward plus the input gradient, the weights being frozen) divided by the dense bf16 "
             f"peak, {peak['bf16']:.3g} TFLOP/s ({peak['source']}; TF32 is half that). *ratio* = measured / limit. "
             "Times are wall-clock with `torch.cuda.synchronize`, after a warm-up.", "",
             "| what | target | measured | FLOP limit | ratio | TFLOP/s (of bf16 peak) | pass | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["targets"]:
        ok = {True: "yes", False: "**no**", None: "-"}[r["pass"]]
        rate = "-" if r["tflops"] is None else f"{r['tflops']:.3g} ({100 * r['peak_fraction']:.1f}%)"
        lim = "-" if r["flop_limit_s"] is None else f"{r['flop_limit_s'] * 1000:.1f} ms"
        ratio = "-" if r["flop_ratio"] is None else f"{r['flop_ratio']:.0f}x"
        lines.append(f"| {r['what']} | {'-' if r['target_s'] is None else '≤ ' + fmt_s(r['target_s'])} | "
                     f"{fmt_s(r['measured_s'])} | {lim} | {ratio} | {rate} | {ok} | {r['note']} |")
    l4 = dict(report["benchmark"].get("layer4") or {})
    comp = report["benchmark"].get("compile")
    if isinstance(comp, dict):
        l4.update({"auto + compile": comp} if ("error" in comp or "skipped" in comp) else comp)
    if l4 and "error" not in l4:
        base = (l4.get("off (torch defaults)") or {}).get("seconds")
        lines += ["", f"### Speed options (ResNet-50 `{cfg.layer}`, {cfg.size} px, {cfg.seeds} seeds x {cfg.steps} "
                      f"steps, default preset, no early stop)", "",
                  f"Each option switched on by itself over `SpeedOptions.off()`, then `SpeedOptions.auto(\"cuda\")` "
                  f"(strict fp32 + cudnn.benchmark) and combinations; *cuda graphs* replays the step's encoder forward "
                  f"and backward from one recording (`core.cudagraphs`). Differences are against "
                  f"`{REF.get('name', 'the first row')}` after the same steps; *seed spread* (mean |pixel| between "
                  f"two seeds) is the run's own uncertainty.", "",
                  "| option | seconds | vs off | warm-up (compile) | peak MB | m_g rel. diff | clarity diff | "
                  "mean pixel diff (seed spread) |", "|---|---|---|---|---|---|---|---|"]
        for name, r in l4.items():
            if "seconds" not in r:
                why = f"skipped: {r['skipped']}" if "skipped" in r else f"error: {r.get('error', '?')[:150]}"
                lines.append(f"| {name} | {why} | | | | | | |")
                continue
            g = lambda k, f="{:.1e}": "-" if r.get(k) is None else f.format(r[k])  # noqa: E731
            vs = "-" if not base else f"{base / r['seconds']:.2f}x"
            graphs = r.get("cuda_graphs") or {}
            if graphs.get("failed"):
                name = f"{name} (recording failed, ran eagerly: {graphs['failed'][:120]})"
            lines.append(f"| {name} | {r['seconds']:.3f} | {vs} | {r['warmup_s']:.2f} s | {g('peak_mb', '{:.0f}')} | "
                         f"{g('m_g_rel_diff')} | {g('clarity_diff')} | {g('mean_pixel_diff')} "
                         f"({g('seed_spread_pixels')}) |")
    live = report["benchmark"].get("live_loop") or {}
    if "steps" in live:
        lines += ["", f"### Live loop (ResNet-50 `{cfg.layer}`, {live['size']} px, {live['seeds']} seeds x {live['steps']} "
                      f"steps, a snapshot every {live['every']}, each drawn as the Invert page draws it)", "",
                  "*hidden*: the share of the drawing time the run did not pay for (the GPU worked on while the host "
                  "drew).", "", "| options | bare | with drawing | drawing | hidden |", "|---|---|---|---|---|"]
        for name, r in live.items():
            if isinstance(r, dict) and "hidden" in r:
                lines.append(f"| {name} | {r['without_s']:.3f} s | {r['with_drawing_s']:.3f} s | {r['drawing_s']:.3f} s "
                             f"| {100 * r['hidden']:.0f}% |")
    lt = report.get("load_test") or {}
    if "sessions" in lt:
        lines += ["", "### App sessions at once (Streamlit AppTest sessions in threads, one shared device queue)", "",
                  f"Each alone first (its own work), then all at once: {lt['wall_s']:.2f} s wall; up to "
                  f"{lt['queue']['max_waiting']} runs seen waiting in the queue.", "",
                  "| session | configuration | alone | together | waited | others' work | ok |",
                  "|---|---|---|---|---|---|---|"]
        for s in lt["sessions"]:
            c = s["config"]
            conf = f"{c['model']} {c['ckpt']} {c['layer']} {c['size']} px, {c['seeds']} seeds x {c['iters']}"
            lines.append(f"| {s['session']} | {conf} | {s['alone_s']:.2f} s | {s['together_s']:.2f} s | "
                         f"{s['waited_s']:.2f} s | {s['others_work_s']:.2f} s | {'yes' if s['ok'] else '**no**'} |")
    later = [f"{k} ({v['skipped']})" for k, v in report["benchmark"].items()
             if isinstance(v, dict) and "skipped" in v and k != "compile"]
    if later:
        lines += ["", "Comparisons skipped for time: " + "; ".join(later)]
    errs = [f"{k}: {v['error']}" for k, v in report["sections"].items() if v.get("error")]
    if errs:
        lines += ["", "Sections that failed: " + "; ".join(e[:300] for e in errs)]
    lines += [GPU_END]
    return "\n".join(lines) + "\n"


def splice(text: str, block: str) -> str:
    """`text` with its GPU block replaced by `block` (appended when it has none)."""
    if GPU_START in text and GPU_END in text:
        head, rest = text.split(GPU_START, 1)
        return head + block.rstrip("\n") + rest.split(GPU_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block


def gpu_block(text: str) -> str | None:
    """The GPU block of a BENCHMARKS.md text, markers included (None without one): kept when the CPU
    benchmark rewrites the file."""
    if GPU_START in text and GPU_END in text:
        return GPU_START + text.split(GPU_START, 1)[1].split(GPU_END, 1)[0] + GPU_END + "\n"
    return None


# --------------------------------------------------------------------------- main


def run_section(report: dict, name: str, fn) -> None:
    log(f"== {name}")
    t = time.perf_counter()
    try:
        report[name] = fn()
        report["sections"][name] = {"seconds": time.perf_counter() - t}
    except Exception as exc:  # noqa: BLE001 - record and go on: the other sections' numbers still count
        err = f"{type(exc).__name__}: {str(exc)[:500]}"
        report[name] = {"error": err}
        report["sections"][name] = {"seconds": time.perf_counter() - t, "error": err,
                                    "traceback": traceback.format_exc()[-3000:]}
        log(f"  error: {err}")


def main(argv=None) -> int:  # noqa: C901
    """`python -m benchmarks --gpu [--dry-run] [--out DIR] [--hard-stop S]`.

    Args:
        argv: the arguments after `--gpu` (`--dry-run`, `--out DIR`, `--skip SECTION,...`).

    Returns:
        0 when every section ran and the CUDA tests passed; 1 when a section errored or a CUDA test
        failed (after the files are written); 2 when CUDA is missing (without --dry-run).
    """
    global HARD_STOP_S, TIME_BUDGET_S
    ap = argparse.ArgumentParser(prog="python -m benchmarks --gpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="rehearse on the CPU at tiny sizes; write to _scratch")
    ap.add_argument("--out", default=None, help="folder for the JSON (and, in a dry run, the markdown)")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out: "
                                               "cuda_tests,benchmark,load_test,compile")
    ap.add_argument("--hard-stop", type=float, default=None,
                    help=f"seconds after which no new part starts (default {HARD_STOP_S}); compile is skipped "
                         f"past {TIME_BUDGET_S} s or 60%% of this")
    args = ap.parse_args(argv)
    if args.hard_stop:
        HARD_STOP_S = float(args.hard_stop)
        TIME_BUDGET_S = min(TIME_BUDGET_S, 0.6 * HARD_STOP_S)
    if not args.dry_run and not torch.cuda.is_available():
        print("error: no CUDA GPU is visible (torch.cuda.is_available() is False): the GPU check needs one; "
              "rehearse with `python -m benchmarks --gpu --dry-run`", file=sys.stderr)
        return 2
    cfg = Config.rehearsal() if args.dry_run else Config.gpu()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    out_dir = Path(args.out) if args.out else (SCRATCH if cfg.dry else RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    cuda = torch.device(cfg.device).type == "cuda"  # (is_available creates no context: the tests get a clean GPU)
    log(f"GPU check{' (DRY RUN on the CPU)' if cfg.dry else ''}: device {cfg.device}, {cfg.size} px, "
        f"{cfg.seeds} seeds, {cfg.steps} steps")
    now = dt.datetime.now()
    report = {"date": now.isoformat(timespec="seconds"), "dry_run": cfg.dry, "device": "?", "config": asdict(cfg),
              "versions": versions(), "sections": {}, "benchmark": {}}
    # 1. the tests first: their subprocess gets the GPU before this process allocates anything on it
    if "cuda_tests" not in skip:
        run_section(report, "cuda_tests", lambda: cuda_tests(cfg, out_dir))
    report["device"] = device_name(cfg)
    if cuda:
        props = torch.cuda.get_device_properties(0)
        report["memory_gb"] = props.total_memory / 2**30
        report["capability"] = f"{props.major}.{props.minor}"
    report["peak_tflops"] = peak_tflops(cfg, report["device"])
    log(f"device {report['device']}; bf16 peak {report['peak_tflops']['bf16']:.3g} TFLOP/s "
        f"({report['peak_tflops']['source']})")
    json_path = out_dir / f"{slug(report['device'] if cuda else 'cpu-dry-run')}-{now:%Y-%m-%d}.json"
    try:
        report["json"] = str(json_path.relative_to(ROOT))
    except ValueError:
        report["json"] = str(json_path)

    def save(final: bool = False) -> None:
        """The JSON as it stands (after every part: a run killed later still leaves its numbers)."""
        report["partial"] = not final
        try:
            report["targets"] = targets(cfg, report)
        except Exception as exc:  # noqa: BLE001 - a partial report may lack what a target row needs
            report.setdefault("targets", [])
            if final:
                report["sections"]["targets"] = {"error": f"{type(exc).__name__}: {exc}"}
        report["seconds"] = time.perf_counter() - T0
        json_path.write_text(json.dumps(report, indent=1, default=str))

    save()
    if "benchmark" not in skip:
        run_section(report, "_bench", lambda: benchmark(cfg, report, save))
        report.pop("_bench", None)
        report["sections"]["benchmark"] = report["sections"].pop("_bench")
        for k, v in report["benchmark"].items():
            bad = [f"{n}: {r['error']}" for n, r in v.items() if isinstance(r, dict) and "error" in r] \
                if isinstance(v, dict) and "error" not in v else ([v["error"]] if isinstance(v, dict) else [])
            if bad:  # a part, or one speed option of the layer4 timing, that failed or was skipped for time
                report["sections"][f"benchmark.{k}"] = {"error": "; ".join(bad)}
        save()
    if "load_test" not in skip:
        late = out_of_time(cfg)
        if late:
            report["load_test"] = {"error": late}
            report["sections"]["load_test"] = {"error": late}
            log(f"== load_test skipped: {late}")
        else:
            run_section(report, "load_test", lambda: load_test(cfg))
        save()
    if "compile" not in skip:
        elapsed = time.perf_counter() - T0
        if elapsed > TIME_BUDGET_S and not cfg.dry:  # optional: a skip is not an error
            report["benchmark"]["compile"] = {"skipped": f"{elapsed:.0f} s already spent (budget {TIME_BUDGET_S} s)"}
            log(f"== compile skipped: {elapsed:.0f} s spent")
        else:
            # a compile error is recorded as a finding about torch.compile here, not as a failed check
            run_section(report, "compile_section", lambda: speed_variants(cfg, include_compile=True))
            report["benchmark"]["compile"] = report.pop("compile_section")
            report["sections"]["compile"] = report["sections"].pop("compile_section")
    save(final=True)
    block = markdown(cfg, report)
    md_path = (out_dir / "BENCHMARKS.md") if cfg.dry else BENCH_MD
    base = BENCH_MD.read_text() if BENCH_MD.exists() else "# Benchmarks\n"
    md_path.write_text(splice(base, block))
    # summary
    print(flush=True)
    print(f"GPU check on {report['device']}{' (DRY RUN)' if cfg.dry else ''}: {report['seconds']:.0f} s")
    for r in report["targets"]:
        ok = {True: "PASS", False: "MISS", None: "  - "}[r["pass"]]
        ratio = "" if r["flop_ratio"] is None else f"  ({r['flop_ratio']:.0f}x the FLOP limit)"
        tgt = "" if r["target_s"] is None else f" (target <= {fmt_s(r['target_s'])})"
        print(f"  {ok}  {r['what']}: {fmt_s(r['measured_s'])}{tgt}{ratio}")
    t = report.get("cuda_tests") or {}
    print(f"  CUDA tests: {t.get('passed', 0)} passed, {t.get('failed', 0)} failed, {t.get('errors', 0)} errors, "
          f"{t.get('skipped', 0)} skipped" + (f" (section error: {t['error']})" if "error" in t else ""))
    errors = {k: v["error"] for k, v in report["sections"].items() if v.get("error")}
    for k, e in errors.items():
        print(f"  ERROR in {k}: {e[:300]}")
    failed_tests = "cuda_tests" in report and not report["cuda_tests"].get("ok", False)
    print(f"wrote {json_path} and {md_path}", flush=True)
    return 1 if errors or failed_tests else 0
