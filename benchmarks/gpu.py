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

The parts live by job: `gpu_config` (sizes, paths, log), `gpu_speed` (timings, FLOPs, curves, live loop),
`gpu_app` (the load test), `gpu_section` (the BENCHMARKS.md block); this module runs them and reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path

import torch

from benchmarks.env import cpu_name, versions
from benchmarks.gpu_app import load_test
from benchmarks.gpu_config import BENCH_MD, IMAGE, RESULTS, ROOT, SCRATCH, T0, Config, free, log
from benchmarks.gpu_section import GPU_END, GPU_START, gpu_block, splice  # noqa: F401 - gpu_block: kept on this face
from benchmarks.gpu_speed import (
    DEFAULT_FLAGS,
    REF,
    current_flags,
    curve_run,
    first_frame,
    limit,
    live_loop,
    peak_tflops,
    speed_variants,
    step_flops_exact,
    stop_flops,
)
from core import load_image, load_model
from core.engine.speed import SpeedOptions

TIME_BUDGET_S = 330  # torch.compile (last, optional) is skipped past this: the whole must stay < 8 min
HARD_STOP_S = 520  # any part not yet started by then is skipped, so the files are written before a 10 min kill
OPTIONAL_BY_S = 300  # the benchmark's comparisons (live loop, curves with graphs, sequential) not started past this:
# the load test after them is a target


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def device_name(cfg: Config) -> str:
    if torch.device(cfg.device).type == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{cpu_name()} (CPU dry run)"


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
                  f"and backward from one recording (`core.engine.cudagraphs`). Differences are against "
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
              "versions": versions(gpu=True), "sections": {}, "benchmark": {}}
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
