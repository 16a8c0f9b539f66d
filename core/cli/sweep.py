"""`python -m core sweep`: clarity over many images, models, checkpoints and layers (core/studies/sweep.py)."""

from __future__ import annotations

import argparse
import os
import sys

from core.cli.args import ProgressBar, batch_option, model_file_option, preset_of, run_options, say_forecast, seeds_option, size_option
from core.devices import resolve_device
from core.errors import SweepStopped, UserError
from core.report.sweep import write_sweep
from core.studies.curve import batched
from core.studies.forecasts import sweep_time
from core.studies.sweep import Sweep, run_sweep


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="clarity over many images x models x checkpoints x layers, with 95%% intervals; "
                                     "resumable; local or on Ray")
    p.add_argument("--images", required=True,
                   help="'samples' (the shipped images), a folder (read recursively: png, jpg, webp) or a comma list")
    p.add_argument("--models", default="", help="comma list of architectures (see `models`; torchvision:NAME and "
                   "timm:NAME too)")
    model_file_option(p)
    p.add_argument("--checkpoints", default="untrained", help="comma list: untrained, trained or paths "
                   "(a checkpoint a model cannot load is left out with a note)")
    p.add_argument("--layers", default="stops", help="'stops' (every depth stop of each model) or a comma list of "
                   "nodes present in every model")
    size_option(p, 64)
    seeds_option(p)
    run_options(p, out_help="output folder (results.parquet, summary.csv, summary.html)", cache=False)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per run, fixed, and the same on both backends, since the thread count changes "
                        "rounding and so the numbers of long runs (default: OMP_NUM_THREADS if set, else each run "
                        "follows the load)")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="ray: a running cluster's address (default: start a local Ray)")
    p.add_argument("--workers", type=int, default=None,
                   help="ray: CPUs of the local Ray (default: all); each run takes --threads of them")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="ray: GPUs each task declares (fractions let several small runs share a GPU)")
    p.add_argument("--batch", type=int, default=8, help="ray: runs per task (they share one loaded model)")
    batch_option(p, sweep=True)
    p.add_argument("--retry-failed", action="store_true", help="run again the runs that failed last time")


def run(args: argparse.Namespace) -> None:
    if args.gpus_per_run < 0:
        raise UserError(f"--gpus-per-run must be >= 0 (got {args.gpus_per_run:g})")
    if args.backend == "local" and (args.address or args.gpus_per_run):
        raise UserError("--address and --gpus-per-run are for --backend ray")
    preset = preset_of(args)
    device = "cuda" if args.gpus_per_run else resolve_device(args.device).type
    layers = "stops" if args.layers == "stops" else [s.strip() for s in args.layers.split(",") if s.strip()]
    sweep = Sweep.create(args.images, args.models.split(","), args.checkpoints.split(","), layers, args.size,
                         args.seeds, preset, device, args.init_seed, args.threads, args.batch_stops)
    for path, why in sweep.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if args.backend == "local":  # a cluster's time depends on its workers, not on this machine's steps
        say_forecast(args, lambda measure_at, is_cached: sweep_time(sweep, measure_at, is_cached), len(sweep.seeds),
                     preset, device, together=batched(sweep.batch_stops, resolve_device(device), sweep.size),
                     what=f"over {len(sweep.images)} images")
    bar = {"bar": ProgressBar(True, 0)}

    def on_start(tasks, todo):
        print(f"{len(sweep.images)} images, {tasks} runs: {tasks - todo} done, {todo} to run ({args.backend} backend)",
              file=sys.stderr)
        if todo:
            bar["bar"] = ProgressBar(args.quiet, todo, unit="run")
            bar["done"] = 0

    def progress(done, total, task):
        bar["done"] = bar.get("done", 0) + 1
        bar["bar"].to(bar["done"], f"{task.spec.model} {task.spec.checkpoint} {task.spec.layer}")

    try:
        outcome = run_sweep(sweep, args.out, args.backend, progress=progress, address=args.address,
                            workers=args.workers, gpus_per_run=args.gpus_per_run, batch_size=args.batch,
                            retry_failed=args.retry_failed, on_start=on_start,
                            quiet=not os.environ.get("CORE_DEBUG"))
    except SweepStopped as exc:  # a lost node or connection: keep what finished; main prints the one line
        bar["bar"].close()
        if exc.outcome is not None and exc.outcome.rows:
            write_sweep(exc.outcome, sweep, args.out)
        raise
    finally:
        bar["bar"].close()
    write_sweep(outcome, sweep, args.out)
    for note in outcome.notes:
        print(note, file=sys.stderr)
    errors = [r for r in outcome.rows if r.get("error")]
    rate = f", {outcome.runs_per_second:.2f} runs/s" if outcome.ran else ""
    retried = f", {outcome.retried} retried after a lost worker or node" if outcome.retried else ""
    print(f"{len(outcome.rows)} rows ({outcome.done_before} done before, {outcome.ran} run now{rate}, "
          f"{len(errors)} failed{retried}) in {outcome.seconds:.1f}s on {args.backend} -> {args.out}")
    for r in errors[:5]:
        print(f"  failed: {r['image']} {r['model']} {r['checkpoint']} {r['layer']}: {r['error']}")
    if outcome.interrupted:
        raise UserError(f"interrupted: {outcome.ran} runs finished and kept; rerun the same command to go on")
