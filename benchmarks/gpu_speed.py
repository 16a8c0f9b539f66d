"""The GPU check's timings: the speed options one by one, the FLOP limit, the clarity curves (with and
without CUDA graphs), the first live frame and the Invert page's live loop."""

from __future__ import annotations

import contextlib
import copy
import functools
import statistics
import time
import traceback

import torch

from benchmarks.env import sync
from benchmarks.gpu_config import IMAGE, Config, fixed, free, log
from core import Inversion, get_preset, load_image, load_model
from core.devices import resolve_device
from core.engine.speed import SpeedOptions
from core.jobs.pipeline import snapshot_every
from core.studies.curve import batched, iter_curve

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets; TF32 is half.
PEAK_BF16 = [("gh200", 989.0), ("h200", 989.0), ("h100 nvl", 835.0), ("h100 pcie", 756.0), ("h100", 989.0),
             ("a100", 312.0), ("l40s", 362.0), ("l4", 121.0), ("a10", 125.0)]


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



# --------------------------------------------------------------------------- timings


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
    # machine is ~30x slower and would only measure the contention (see core.engine.speed.pick_cpu_threads)
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
    from core.engine.cudagraphs import STATS

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
    """Run pressed in a warm app (model loaded): `core.jobs.pipeline.run` (cache lookup, queue, memory plan, engine)
    until its first snapshot (every=1) is on the host; the run is then abandoned, as a rerun would."""
    from core.jobs.pipeline import Callbacks, run
    from core.jobs.spec import RunSpec

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

    from core.images import upscale
    from core.report.figures import trajectory_figure

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
