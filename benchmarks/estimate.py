"""`python -m benchmarks estimate`: the time estimate of the app's default run against the run itself, idle and loaded.

The default Invert run (trained EfficientNet-Lite0 `blocks.1.1`, chelsea, 64 px, seeds 0 and 1, the default
recipe with a 150-step budget, early stop, CPU) three ways: as the machine is; with one CPU-bound process beside
it; with one per core. Each way it measures the estimate the app shows (`core.jobs.estimate.measure`, on the
run's image, counting the app's snapshots), runs the real thing through `core.jobs.pipeline.run` (no cache,
snapshots every `snapshot_every` steps as the app takes them) and prints estimate, actual, their ratio and
whether the estimate is within 2x. Each finished run is recorded (`record_actual`), so the later runs also
show the calibrated estimate (`calibrated`: the median actual / estimated of the recent runs).

    python -m benchmarks estimate                     # 2 runs per way, writes the BENCHMARKS.md section
    python -m benchmarks estimate --runs 3 --markdown none --json /tmp/estimate.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.env import cpu_name, versions, write_section
from core import get_preset, load_image, load_model
from core.devices import cpu_cores, describe, resolve_device
from core.jobs.estimate import calibrated, forget, measure, plan_seconds, record_actual
from core.jobs.pipeline import Callbacks, run, snapshot_every
from core.jobs.spec import RunSpec

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "assets" / "chelsea.png"
HOG = "while True: pass"


def hogs(n: int) -> list[subprocess.Popen]:
    """`n` CPU-bound processes (a busy loop each)."""
    return [subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:  # by its own pid, each one this benchmark started
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def one_run(model, layer: str, image, size: int, seeds: list[int], preset, device, pin: bool = True) -> dict:
    """The estimate as the app takes it (measure, then calibrated), then the run as the app makes it (`run(...,
    estimate=)`: the estimate's thread count, its real time recorded), or with `pin` False the engine's own
    thread pick (recorded here); both timed."""
    every = snapshot_every(None, preset.iters)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t = time.perf_counter()
    est = measure(model, layer, size, len(seeds), preset, device, image=image, every=every)
    probe_s = time.perf_counter() - t
    cal = calibrated(est, device)
    spec = RunSpec.of(model, layer, image, seeds, preset, str(device))
    shown = []
    t = time.perf_counter()
    job = run(spec, image, model, use_cache=False, every=every, callbacks=Callbacks(snapshot=shown.append),
              estimate=est if pin else None)
    actual = time.perf_counter() - t
    r = job.result
    if not pin:
        record_actual(est, actual, device, steps=r.steps_done)
    return {
        "load_1min": load, "probe_s": probe_s, "probe_threads": est.threads, "run_threads": torch.get_num_threads(),
        "steps_measured": est.steps_measured, "probe_step_ms": est.step_s * 1000, "setup_s": est.setup_s,
        "warmup_s": est.warmup_s, "finish_s": est.finish_s,
        "estimate_s": est.seconds, "estimate_for_steps_s": est.for_steps(r.steps_done),
        "calibrated_s": cal.for_steps(r.steps_done), "calibration": cal.calibration,
        "actual_s": actual, "steps": r.steps_done, "stop_reason": r.metrics.stop_reason,
        "run_step_ms": r.seconds / max(1, r.steps_done) * 1000, "outside_loop_s": actual - r.seconds,
        "snapshots": len(shown),
    }


def curve_run(size: int = 32, seeds: list[int] = (0, 1), iters: int = 80, device="cpu") -> dict:
    """The Clarity curve page's default (Lite0 untrained and trained at its CPU stops, chelsea, 32 px, 2 seeds, 80
    steps, stops batched as `auto` does) estimated as the page does (`plan_seconds`, one probe step at the first and
    last stop) and then run (`iter_curve`, no cache); both timed."""
    from core import get_architecture
    from core.studies import iter_curve

    arch = "efficientnet_lite0"
    nodes = list(get_architecture(arch).cpu_stops)
    preset = get_preset("default", iters=iters)
    models = [load_model(arch, ck, size) for ck in ("untrained", "trained")]
    image = load_image(str(IMAGE), size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t = time.perf_counter()
    measured = {}

    def at(node):
        if node not in measured:
            measured[node] = measure(models[0], node, size, len(seeds), preset, device, probe_steps=1)
        return measured[node]

    est = plan_seconds([(nodes, list(range(len(nodes))))] * len(models), at)
    probe_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = list(iter_curve(arch, image, ["untrained", "trained"], nodes, seeds=list(seeds), preset=preset,
                           device=str(device), models=models, use_cache=False, batch_stops="auto"))
    actual = time.perf_counter() - t
    return {"load_1min": load, "probe_s": probe_s, "estimate_s": est, "actual_s": actual, "runs": len(rows),
            "steps": sum(r.result.steps_done for r in rows)}


def within(ratio: float) -> bool:
    return 0.5 <= ratio <= 2.0


def markdown(report: dict) -> str:
    pinned = report.get("pinned_threads", True)
    intro = (
        f"{report['date']} on **{report['device']}** ({report['cpu']}, {report['cores']} cores). Other people's work "
        "(tests, app sessions, browsers) was running on the same cores, so *busy 0* means no busy process of the "
        "benchmark's own, not an idle machine; *busy*: CPU-bound processes (`while True: pass`) beside the run; "
        "*load avg*: the 1-minute load average before the run. The app's default run: trained EfficientNet-Lite0 "
        "`blocks.1.1`, chelsea, 64 px, seeds 0 and 1, default recipe with 150 steps (early stop), snapshots every "
        "10 steps. *estimate*: `measure` (fast steps probed for 0.5 s, none started after 1.5 s, the mean of the "
        "steps at the thread count it keeps, the final metrics timed once) for the steps the run took; "
        "*calibrated*: the same times the median actual / estimated of the runs before it in this process "
        "(`calibrated`, clipped to [0.5, 4]); *actual*: `core.jobs.pipeline.run` without cache, from the call to "
        "the result, " + ("with the estimate's thread count (`speed_for`)" if pinned else
                          "NOT pinned to the estimate's thread count (`--no-pin`: the engine's own pick)") +
        ". Ratio = actual / estimate; *within 2x*: 0.5 <= ratio <= 2."
        + (f" Raw numbers: `{report['json']}`." if report.get("json") else ""))
    lines = [
        "## Time estimates (`python -m benchmarks estimate`)", "", intro, "",
        ("| busy | run | load avg | threads probe/run | probe | probe step | run step | estimate | calibrated "
         "| actual | ratio | within 2x | calibrated ratio |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for way in report["ways"]:
        for i, r in enumerate(way["runs"], 1):
            ratio, cratio = r["actual_s"] / r["estimate_for_steps_s"], r["actual_s"] / r["calibrated_s"]
            lines.append(
                f"| {way['busy_processes']} | {i} | {r['load_1min']:.1f} | {r['probe_threads']}/{r['run_threads']} | "
                f"{r['probe_s']:.2f} s | {r['probe_step_ms']:.1f} ms | {r['run_step_ms']:.1f} ms | "
                f"{r['estimate_for_steps_s']:.2f} s | {r['calibrated_s']:.2f} s | {r['actual_s']:.2f} s | "
                f"{ratio:.2f} | {'yes' if within(ratio) else 'NO'} | {cratio:.2f} |")
    s = report["summary"]
    lines += ["", (f"Within 2x: {s['within']} of {s['runs']} estimates, {s['within_calibrated']} of {s['runs']} "
                   "calibrated ones.")]
    return "\n".join(lines)


def write_markdown(path: Path, text: str) -> None:
    write_section(path, "estimate", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks estimate", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="runs per way (the later ones show the calibration)")
    ap.add_argument("--ways", default="idle,one,per-core", help="comma list of idle, one, per-core")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--no-pin", dest="pin", action="store_false",
                    help="let the run pick its own thread count (the engine's small probe) instead of the estimate's")
    ap.add_argument("--curve", action="store_true", help="the Clarity curve page's default instead, each way: its "
                    "estimate (`plan_seconds`) against the curve itself")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"),
                    help="write the section into this file ('none' to skip)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if args.curve:
        return curve_main(args, device)
    size, layer, seeds = args.size, "blocks.1.1", [0, 1]
    preset = get_preset("default", iters=args.iters)
    model = load_model("efficientnet_lite0", "trained", size)
    image = load_image(str(IMAGE), size)
    cores = cpu_cores()
    busy = {"idle": 0, "one": 1, "per-core": cores}
    where = describe(device).split(" (")[0]  # not the thread count: the probe sets it run by run
    print(f"device: {where}, {cores} cores; load average {os.getloadavg()}", flush=True)
    forget(device)
    measure(model, layer, size, len(seeds), preset.replace(iters=3), device)  # first-use costs out of the way
    ways = []
    for name in args.ways.split(","):
        procs = hogs(busy[name])
        try:
            time.sleep(1.0 if procs else 0.0)  # let them get going
            runs = []
            for i in range(args.runs):
                r = one_run(model, layer, image, size, seeds, preset, device, args.pin)
                runs.append(r)
                ratio = r["actual_s"] / r["estimate_for_steps_s"]
                print(f"{name:>8} run {i + 1}: estimate {r['estimate_for_steps_s']:.2f} s "
                      f"(probe {r['probe_s']:.2f} s, {r['steps_measured']} steps of {r['probe_step_ms']:.1f} ms, "
                      f"{r['probe_threads']} threads), calibrated {r['calibrated_s']:.2f} s, actual {r['actual_s']:.2f} s "
                      f"({r['steps']} steps of {r['run_step_ms']:.1f} ms, {r['run_threads']} threads, "
                      f"{r['outside_loop_s']:.2f} s outside the loop), ratio {ratio:.2f}, "
                      f"{'within' if within(ratio) else 'NOT within'} 2x; calibrated ratio "
                      f"{r['actual_s'] / r['calibrated_s']:.2f}; load {r['load_1min']:.1f}", flush=True)
        finally:
            stop(procs)
        ways.append({"name": name, "busy_processes": busy[name], "runs": runs})
    all_runs = [r for w in ways for r in w["runs"]]
    summary = {"runs": len(all_runs),
               "within": sum(within(r["actual_s"] / r["estimate_for_steps_s"]) for r in all_runs),
               "within_calibrated": sum(within(r["actual_s"] / r["calibrated_s"]) for r in all_runs)}
    print(f"within 2x: {summary['within']} of {summary['runs']} estimates, {summary['within_calibrated']} of "
          f"{summary['runs']} calibrated", flush=True)
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "device": where, "cpu": cpu_name(),
              "cores": cores, "versions": versions(), "size": size, "iters": args.iters, "pinned_threads": args.pin,
              "ways": ways,
              "summary": summary}
    if args.json:
        report["json"] = args.json
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.markdown != "none":
        write_markdown(Path(args.markdown), markdown(report))
        print(f"wrote {args.markdown}")
    return 0


def curve_main(args, device) -> int:
    busy = {"idle": 0, "one": 1, "per-core": cpu_cores()}
    print(f"Clarity curve page default, {describe(device).split(' (')[0]}; load average {os.getloadavg()}", flush=True)
    curve_run(device=device)  # first-use costs (model building, the judge) out of the way
    out = []
    for name in args.ways.split(","):
        procs = hogs(busy[name])
        try:
            time.sleep(1.0 if procs else 0.0)
            for i in range(args.runs):
                r = curve_run(device=device)
                ratio = r["actual_s"] / r["estimate_s"]
                out.append({"way": name, **r})
                print(f"{name:>8} curve {i + 1}: estimate up to {r['estimate_s']:.1f} s (probes {r['probe_s']:.1f} s), "
                      f"actual {r['actual_s']:.1f} s ({r['runs']} runs, {r['steps']} steps), ratio {ratio:.2f}, "
                      f"{'within' if within(ratio) else 'NOT within'} 2x; load {r['load_1min']:.1f}", flush=True)
        finally:
            stop(procs)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
