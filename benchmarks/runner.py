"""Run the suite, print the table, write benchmarks/results/<device>-<date>.json and BENCHMARKS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path

import torch

from benchmarks.baselines import library_style, paper_style
from benchmarks.env import cpu_name, sync, versions
from benchmarks.gpu_section import gpu_block
from core import Inversion, get_preset, load_image, load_model
from core.devices import resolve_device
from core.engine.speed import SpeedOptions
from core.jobs.executor import activation_bytes, plan_chunks, seed_step_bytes

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "assets" / "chelsea.png"

# (model, layer, size): the throughput grid. efficientnet_lite0: blocks.1.0 early, blocks.5.0 late.
FULL_GRID = [("resnet18", l, 96) for l in ("layer1", "layer3", "layer4")] + \
            [("resnet50", l, 96) for l in ("layer1", "layer3", "layer4")] + \
            [("efficientnet_lite0", l, 96) for l in ("blocks.1.0", "blocks.5.0")]
QUICK_GRID = [("resnet18", "layer1", 64), ("resnet18", "layer4", 64), ("efficientnet_lite0", "blocks.5.0", 64)]
TINY_GRID = [("resnet18", "layer1", 32)]
# time to quality: (model, layer, size); both presets reach m_g <= m_r at resnet18 layer1
FULL_TTQ = [("resnet18", "layer1", 64), ("resnet18", "layer2", 64)]
QUICK_TTQ = [("resnet18", "layer1", 64)]
MODES = {  # grid, seeds, iters per throughput case, time-to-quality cases, preset iters cap for ttq
    "full": (FULL_GRID, 4, 16, FULL_TTQ, None),
    "quick": (QUICK_GRID, 4, 8, QUICK_TTQ, None),
    "tiny": (TINY_GRID, 2, 3, [("resnet18", "layer1", 32)], 20),
}


# --------------------------------------------------------------------------- memory


class PeakMemory:
    """Peak memory of a block: max_memory_allocated on CUDA; on the CPU the process's peak RSS
    (VmHWM, reset through /proc/self/clear_refs) or, where that is not allowed, a 5 ms RSS sampler."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, None

    @staticmethod
    def _status(key: str) -> int | None:
        try:
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def __enter__(self):
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self.sampled, self._stop = 0, threading.Event()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.hwm = True
        except OSError:
            self.hwm = False
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.sampled = max(self.sampled, self._status("VmRSS") or 0)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            sync(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        if self.hwm:
            peak = self._status("VmHWM")
        else:
            self._stop.set()
            self._thread.join()
            peak = self.sampled
        self.mb = round(peak / 2**20, 1) if peak else None


# --------------------------------------------------------------------------- cases


def engine_throughput(model, layer, image, seeds, preset, iters, device, speed):
    Inversion(model, layer, image, seeds, preset.replace(iters=2), device, speed=speed).run()  # warm-up
    with PeakMemory(device) as mem:
        run = Inversion(model, layer, image, seeds, preset.replace(iters=iters), device, speed=speed)
        sync(device)
        t = time.perf_counter()
        run.run()
        sync(device)
        seconds = time.perf_counter() - t
    return {"seed_iters_per_s": len(seeds) * iters / seconds, "seconds": seconds, "peak_mb": mem.mb}


def baseline_throughput(fn, model, layer, y, seeds, size, preset, iters, device):
    fn(model, layer, y, seeds[:1], size, 2, device)  # warm-up
    with PeakMemory(device) as mem:
        sync(device)
        t = time.perf_counter()
        fn(model, layer, y, seeds, size, iters, device)
        sync(device)
        seconds = time.perf_counter() - t
    return {"seed_iters_per_s": len(seeds) * iters / seconds, "seconds": seconds, "peak_mb": mem.mb}


def throughput_case(arch, layer, size, seeds, iters, device, speed, log):
    model = load_model(arch, "untrained", size)
    image = load_image(str(IMAGE), size)
    preset = get_preset("paper")  # equal settings: the paper's loss, step and blur in all three
    eng = engine_throughput(model, layer, image, seeds, preset, iters, device, speed)
    y = Inversion(model, layer, image, seeds[:1], preset, device, speed=speed).y
    row = {"model": arch, "layer": layer, "size": size, "seeds": len(seeds), "iters": iters, "engine": eng}
    if speed.autocast_dtype is None and device.type == "cpu":
        row["engine_bf16"] = engine_throughput(model, layer, image, seeds, preset, iters, device,
                                               speed.replace(autocast_dtype=torch.bfloat16))
    row["paper"] = baseline_throughput(paper_style, model, layer, y, seeds, size, preset, iters, device)
    row["library"] = baseline_throughput(library_style, model, layer, y, seeds, size, preset, iters, device)
    row["engine_vs_paper"] = eng["seed_iters_per_s"] / row["paper"]["seed_iters_per_s"]
    row["engine_vs_library"] = eng["seed_iters_per_s"] / row["library"]["seed_iters_per_s"]
    log(f"  {arch:>18} {layer:<11} {size:>4}px  engine {eng['seed_iters_per_s']:8.1f}  "
        f"paper {row['paper']['seed_iters_per_s']:7.1f} ({row['engine_vs_paper']:.1f}x)  "
        f"library {row['library']['seed_iters_per_s']:7.1f} ({row['engine_vs_library']:.1f}x)")
    return row


def _reach(hist_seed, m_r):
    return next((i for i, v in enumerate(hist_seed) if v <= m_r), None)


def ttq_case(arch, layer, size, seeds, device, speed, iters_cap, log):
    """Wall time and iterations until m_g <= m_r (every seed), for the paper and default presets."""
    model = load_model(arch, "untrained", size)
    image = load_image(str(IMAGE), size)
    out = {"model": arch, "layer": layer, "size": size, "seeds": len(seeds)}
    for name in ("default", "paper"):
        preset = get_preset(name, iters=iters_cap)
        with PeakMemory(device) as mem:
            run = Inversion(model, layer, image, seeds, preset, device, speed=speed)
            t = time.perf_counter()
            res = run.run()
            seconds = time.perf_counter() - t
        steps = res.metrics["steps_to_reference"]
        done = None if None in steps else max(steps)
        out[f"engine_{name}"] = {"iters": done, "seconds": None if done is None else seconds * done / res.steps_done,
                                 "run_iters": res.steps_done, "run_seconds": seconds, "peak_mb": mem.mb,
                                 "steps_to_reference": steps}
    preset = get_preset("paper", iters=iters_cap)
    probe = Inversion(model, layer, image, seeds[:1], preset, device, speed=speed)
    with PeakMemory(device) as mem:
        hist, _, times = paper_style(model, layer, probe.y, seeds, size, preset.iters, device, m_r=probe.m_r)
    reach = [_reach(h, probe.m_r) for h in hist]
    total = None if None in reach else sum(sum(ts[: r + 1]) for ts, r in zip(times, reach))
    out["paper_style_paper"] = {"iters": None if None in reach else max(reach), "seconds": total,
                                "steps_to_reference": reach, "peak_mb": mem.mb}
    d, p = out["engine_default"]["seconds"], out["paper_style_paper"]["seconds"]
    out["default_vs_paper_style"] = p / d if d and p else None
    pe = out["engine_paper"]["seconds"]
    out["default_vs_engine_paper"] = pe / d if d and pe else None
    fmt = lambda v: "never" if v is None else f"{v:.2f}s"  # noqa: E731
    log(f"  {arch} {layer} {size}px: default {fmt(d)} ({out['engine_default']['iters']} it) | "
        f"paper preset in engine {fmt(pe)} ({out['engine_paper']['iters']} it) | "
        f"paper style {fmt(p)} ({out['paper_style_paper']['iters']} it)")
    return out


def chunking_table(arch="resnet50", size=224, seeds=4, memories=(16, 40, 80)):
    """Seeds per batch for every depth stop of a ResNet50 224 px curve on 16/40/80 GB (fp32)."""
    from core.models.encoder import depth_stops

    model = load_model(arch, "untrained", size)
    stops = [s.node for s in depth_stops(model)]
    acts = activation_bytes(model, stops, size)
    wbytes = sum(p.numel() * 4 for p in model.module.parameters())
    rows = []
    for s in stops:
        per = seed_step_bytes(acts[s], size)
        rows.append({"layer": s, "per_seed_mb": round(per / 2**20, 1),
                     **{f"{g}GB": plan_chunks(per, seeds, g, wbytes).seeds_per_batch for g in memories},
                     **{f"{g}GB_max": plan_chunks(per, 64, g, wbytes).seeds_per_batch for g in memories}})
    return {"model": arch, "size": size, "seeds": seeds, "weights_mb": round(wbytes / 2**20, 1), "stops": rows}


def technique_checks(device, speed, log, size=64, iters=40):
    """Each speed option against the plain engine: throughput and how far results move."""
    model = load_model("resnet18", "untrained", size)
    image = load_image(str(IMAGE), size)
    preset = get_preset("default", iters=iters)
    base_opts = SpeedOptions(threads=speed.threads)
    variants = {"plain fp32": base_opts, "channels_last": base_opts.replace(channels_last=True),
                "fold_bn": base_opts.replace(fold_bn=True),
                "bf16 autocast": base_opts.replace(autocast_dtype=torch.bfloat16)}
    if device.type == "cpu":
        variants[f"threads={os.cpu_count()} (torch default)"] = base_opts.replace(threads=os.cpu_count())
    out, ref = {}, None
    for name, opts in variants.items():
        its = iters if "threads" not in name else 6  # a contended all-core run can be ~30x slower
        p = preset.replace(iters=its)
        Inversion(model, "layer2", image, [0, 1], p.replace(iters=2), device, speed=opts).run()
        run = Inversion(model, "layer2", image, [0, 1], p, device, speed=opts)
        t = time.perf_counter()
        res = run.run()
        sec = time.perf_counter() - t
        row = {"seed_iters_per_s": 2 * its / sec}
        if ref is None:
            ref = res
        if its == iters:
            mg, mg0 = res.metrics["embedding_l2"], ref.metrics["embedding_l2"]
            row.update(max_pixel_diff=float((res.images - ref.images).abs().max()),
                       mean_pixel_diff=float((res.images - ref.images).abs().mean()),
                       m_g_rel_diff=max(abs(a - b) / b for a, b in zip(mg, mg0)),
                       clarity_diff=abs(res.metrics["clarity"] - ref.metrics["clarity"]))
        out[name] = row
        torch.set_num_threads(speed.threads or torch.get_num_threads())
        log(f"  {name:<28} {row['seed_iters_per_s']:7.1f} seed-it/s  "
            + ("" if "max_pixel_diff" not in row else
               f"max|dx| {row['max_pixel_diff']:.2e}  mean|dx| {row['mean_pixel_diff']:.2e}  "
               f"m_g rel {row['m_g_rel_diff']:.2e}"))
    return {"model": "resnet18", "layer": "layer2", "size": size, "iters": iters, "variants": out}


# --------------------------------------------------------------------------- report


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores"


def table(rows) -> str:
    head = ("| model | layer | px | engine seed-it/s | engine bf16 | paper-style | library-style | "
            "engine/paper | engine/library | peak MB engine / paper / library |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        bf = r.get("engine_bf16", {}).get("seed_iters_per_s")
        lines.append(
            f"| {r['model']} | {r['layer']} | {r['size']} | {r['engine']['seed_iters_per_s']:.1f} | "
            f"{'-' if bf is None else f'{bf:.1f}'} | {r['paper']['seed_iters_per_s']:.1f} | "
            f"{r['library']['seed_iters_per_s']:.1f} | {r['engine_vs_paper']:.2f}x | {r['engine_vs_library']:.2f}x | "
            f"{r['engine']['peak_mb']} / {r['paper']['peak_mb']} / {r['library']['peak_mb']} |")
    return "\n".join(lines)


def ttq_table(rows) -> str:
    f = lambda e: "not reached" if e["seconds"] is None else f"{e['seconds']:.2f} s / {e['iters']} it"  # noqa: E731
    lines = ["| model | layer | px | default (engine) | paper preset (engine) | paper preset (paper style) | "
             "paper-style / default |", "|" + "---|" * 7]
    for r in rows:
        ratio = r["default_vs_paper_style"]
        lines.append(f"| {r['model']} | {r['layer']} | {r['size']} | {f(r['engine_default'])} | "
                     f"{f(r['engine_paper'])} | {f(r['paper_style_paper'])} | "
                     f"{'-' if ratio is None else f'{ratio:.1f}x'} |")
    return "\n".join(lines)


def chunk_md(ch) -> str:
    lines = [f"{ch['model']}, {ch['size']} px, {ch['seeds']} seeds, fp32 (weights {ch['weights_mb']} MB); "
             "seeds per batch (and the most that fit, of 64):", "",
             "| stop | est. MB per seed | 16 GB | 40 GB | 80 GB |", "|---|---|---|---|---|"]
    for s in ch["stops"]:
        lines.append(f"| {s['layer']} | {s['per_seed_mb']} | {s['16GB']} ({s['16GB_max']}) | "
                     f"{s['40GB']} ({s['40GB_max']}) | {s['80GB']} ({s['80GB_max']}) |")
    return "\n".join(lines)


def tech_rows(tech) -> str:
    f = lambda x, k: "-" if k not in x else f"{x[k]:.1e}"  # noqa: E731
    return "\n".join(f"| {k} | {x['seed_iters_per_s']:.1f} | {f(x, 'max_pixel_diff')} | {f(x, 'mean_pixel_diff')} | "
                     f"{f(x, 'm_g_rel_diff')} |" for k, x in tech["variants"].items())


def write_markdown(report: dict, path: Path) -> None:
    r = report
    v = ", ".join(f"{k} {x}" for k, x in r["versions"].items())
    targets = r["targets"]
    text = f"""# Benchmarks

Latest run: {r['date']} on **{r['device']}** ({r['mode']} mode, `python -m benchmarks{'' if r['mode'] == 'full' else ' --' + r['mode']}`).
Versions: {v}. Engine speed options: `{r['speed']}`. Torch threads during the run: {r['threads']}
(load average at start: {r['loadavg']}). Raw numbers: `{r['json']}`.

All three loops run in one process with the same model (untrained weights), layer, image size,
seeds, iterations and preset (`paper`: summed L1, plain step, blur every step), one after another.
*paper style*: batch 1 per seed, weights trainable (their gradients computed), truncated model.
*library style* (Lucent-like): whole model forward every step, forward hook, batch 1 per seed,
weights as the library leaves them (trainable). *engine bf16*: the engine with
`SpeedOptions(autocast_dtype=torch.bfloat16)` (opt-in, lossy). Peak memory is the process's peak
RSS during each measurement on CPU (it includes the ~0.5 GB of the Python process and libraries)
and `max_memory_allocated` on CUDA.

## Throughput (seed-iterations per second, higher is better)

{table(r['throughput'])}

## Time to quality (until every seed has m_g <= m_r)

{ttq_table(r['time_to_quality'])}

## Targets (CPU)

- engine >= 3x paper style: {targets['paper_3x']}
- engine >= 4x library style: {targets['library_4x']}
- default reaches m_g <= m_r >= 5x sooner than paper (where both reach it): {targets['ttq_5x']}

## Speed options (resnet18 layer2, {r['techniques']['size']} px, default preset, 2 seeds, vs plain fp32)

| option | seed-it/s | max abs pixel diff | mean abs pixel diff | max rel. m_g diff |
|---|---|---|---|---|
""" + tech_rows(r["techniques"]) + f"""

## Memory-aware chunking

{chunk_md(r['chunking'])}
"""
    block = gpu_block(path.read_text()) if path.exists() else None
    path.write_text(text + ("\n" + block if block else ""))  # the GPU section (make gpu-check) survives


def targets(report) -> dict:
    tp = report["throughput"]
    ok = lambda c: "holds" if c else "does NOT hold"  # noqa: E731
    pap = [r["engine_vs_paper"] for r in tp]
    lib = [r["engine_vs_library"] for r in tp]
    ttq = [r["default_vs_paper_style"] for r in report["time_to_quality"] if r["default_vs_paper_style"]]
    return {
        "paper_3x": f"{ok(min(pap) >= 3)} (min {min(pap):.2f}x, median {sorted(pap)[len(pap) // 2]:.2f}x)",
        "library_4x": f"{ok(min(lib) >= 4)} (min {min(lib):.2f}x, median {sorted(lib)[len(lib) // 2]:.2f}x)",
        "ttq_5x": "no case where both reach it" if not ttq else f"{ok(min(ttq) >= 5)} (min {min(ttq):.1f}x)",
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--gpu" in argv:  # the GPU check has its own options (benchmarks/gpu.py)
        from benchmarks.gpu import main as gpu_main

        return gpu_main([a for a in argv if a != "--gpu"])
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--gpu", action="store_true",
                    help="the GPU check instead (make gpu-check; add --dry-run to rehearse it on the CPU)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_const", dest="mode", const="quick", help="a 1-2 minute subset")
    g.add_argument("--tiny", action="store_const", dest="mode", const="tiny", help="seconds; for tests")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the JSON")
    ap.add_argument("--markdown", default=None, help="BENCHMARKS.md path (default: repo root; 'none' to skip)")
    ap.add_argument("--no-chunking", action="store_true", help="skip the ResNet50 224 px chunking table")
    ap.add_argument("--no-speed", action="store_true", help="run the engine with SpeedOptions.off()")
    args = ap.parse_args(argv)
    mode = args.mode or "full"
    grid, nseeds, iters, ttq_cases, cap = MODES[mode]
    device = resolve_device(args.device)
    speed = SpeedOptions.off() if args.no_speed else SpeedOptions.auto(device)
    speed.apply_global(device)
    log = lambda s: print(s, flush=True)  # noqa: E731
    seeds = list(range(nseeds))
    loadavg = [round(x, 2) for x in os.getloadavg()]
    log(f"benchmarks ({mode}) on {device_label(device)}; speed {speed.to_dict()}; threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    log("throughput (seed-iterations/s):")
    tp = [throughput_case(a, l, s, seeds, iters, device, speed, log) for a, l, s in grid]
    log("time to quality:")
    tq = [ttq_case(a, l, s, seeds[:2], device, speed, cap, log) for a, l, s in ttq_cases]
    log("speed options:")
    tech = technique_checks(device, speed, log, size=32 if mode == "tiny" else 64, iters=6 if mode == "tiny" else 40)
    chunk = None if args.no_chunking or mode == "tiny" else chunking_table()
    if chunk is None:
        chunk = chunking_table("resnet18", 32) if mode == "tiny" else {"model": "-", "size": 0, "seeds": 0,
                                                                          "weights_mb": 0, "stops": []}
    now = dt.datetime.now()
    dev_key = "cuda" if device.type == "cuda" else "cpu"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{dev_key}-{now:%Y-%m-%d}.json"
    report = {"date": now.isoformat(timespec="seconds"), "mode": mode, "device": device_label(device),
              "versions": versions(), "speed": speed.to_dict(), "threads": torch.get_num_threads(),
              "loadavg": loadavg, "throughput": tp, "time_to_quality": tq, "techniques": tech, "chunking": chunk,
              "seconds": round(time.perf_counter() - t0, 1)}
    report["targets"] = targets(report)
    try:
        report["json"] = str(json_path.relative_to(ROOT))
    except ValueError:
        report["json"] = str(json_path)
    json_path.write_text(json.dumps(report, indent=1, default=str))
    print()
    print(table(tp))
    print()
    print(ttq_table(tq))
    print()
    for k, v in report["targets"].items():
        print(f"target {k}: {v}")
    if chunk["stops"]:
        print()
        print(chunk_md(chunk))
    md = args.markdown or str(ROOT / "BENCHMARKS.md")
    if md != "none":
        write_markdown(report, Path(md))
    print(f"\nwrote {json_path}" + ("" if md == "none" else f" and {md}") + f" in {report['seconds']} s")
    return 0
