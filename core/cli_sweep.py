"""`python -m core sweep`: clarity over many images, models, checkpoints and layers (core/sweep.py)."""

from __future__ import annotations

import argparse
import sys

from core.errors import UserError


def add_parser(sub) -> None:
    from core.cli import batch_option

    p = sub.add_parser("sweep", help="clarity over many images x models x checkpoints x layers, with 95% intervals; "
                                     "resumable; local or on Ray")
    p.add_argument("--images", required=True,
                   help="'samples' (the shipped images), a folder (read recursively: png, jpg, webp) or a comma list")
    p.add_argument("--models", required=True, help="comma list of architectures (see `models`)")
    p.add_argument("--checkpoints", default="untrained", help="comma list: untrained, trained or paths "
                   "(a checkpoint a model cannot load is left out with a note)")
    p.add_argument("--layers", default="stops", help="'stops' (every depth stop of each model) or a comma list of "
                   "nodes present in every model")
    p.add_argument("--size", type=int, default=64, help="square input size in px (default 64)")
    p.add_argument("--seeds", default="2", help="seed count or comma list (default 2)")
    p.add_argument("--iters", type=int, default=None, help="step budget (default: the preset's)")
    p.add_argument("--preset", default="default", help="recipe (see `presets`)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (the local backend's device)")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the untrained initialisation")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per run (default: this machine's cores); fixed, and the same on both backends, "
                        "since the thread count changes rounding and so the numbers of long runs")
    p.add_argument("--out", required=True, help="output folder (results.parquet, summary.csv, summary.html)")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="ray: a running cluster's address (default: start a local Ray)")
    p.add_argument("--workers", type=int, default=None,
                   help="ray: CPUs of the local Ray (default: all); each run takes --threads of them")
    p.add_argument("--gpus-per-run", type=float, default=0.0,
                   help="ray: GPUs each task declares (fractions let several small runs share a GPU)")
    p.add_argument("--batch", type=int, default=8, help="ray: runs per task (they share one loaded model)")
    batch_option(p)
    p.add_argument("--retry-failed", action="store_true", help="run again the runs that failed last time")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _seeds(text: str) -> list[int]:
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        n = int(text)
    except ValueError:
        raise UserError(f"--seeds takes a count (e.g. 2) or a list (e.g. 0,5), got {text!r}") from None
    if n < 1:
        raise UserError(f"--seeds must be at least 1 (got {n})")
    return list(range(n))


def run(args: argparse.Namespace) -> None:
    from core.devices import resolve_device
    from core.presets import get_preset
    from core.sweep import Sweep, run_sweep

    if args.iters is not None and args.iters < 1:
        raise UserError(f"--iters must be a positive integer (got {args.iters})")
    if args.gpus_per_run < 0:
        raise UserError(f"--gpus-per-run must be >= 0 (got {args.gpus_per_run:g})")
    if args.backend == "local" and (args.address or args.gpus_per_run):
        raise UserError("--address and --gpus-per-run are for --backend ray")
    preset = get_preset(args.preset, iters=args.iters)
    device = "cuda" if args.gpus_per_run else resolve_device(args.device).type
    layers = "stops" if args.layers == "stops" else [s.strip() for s in args.layers.split(",") if s.strip()]
    sweep = Sweep.create(args.images, args.models.split(","), args.checkpoints.split(","), layers, args.size,
                         _seeds(args.seeds), preset, device, args.init_seed, args.threads, args.batch_stops)
    for path, why in sweep.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    bar = {"bar": None}

    def on_start(tasks, todo):
        print(f"{len(sweep.images)} images, {tasks} runs: {tasks - todo} done, {todo} to run ({args.backend} backend)",
              file=sys.stderr)
        if todo and not args.quiet:
            from tqdm import tqdm

            bar["bar"] = tqdm(total=todo, unit="run", file=sys.stderr, dynamic_ncols=True)

    def progress(done, total, task):
        if bar["bar"] is not None:
            bar["bar"].set_postfix_str(f"{task.spec.model} {task.spec.checkpoint} {task.spec.layer}", refresh=False)
            bar["bar"].update(1)

    try:
        outcome = run_sweep(sweep, args.out, args.backend, progress=progress, address=args.address,
                            workers=args.workers, gpus_per_run=args.gpus_per_run, batch_size=args.batch,
                            retry_failed=args.retry_failed, on_start=on_start)
    finally:
        if bar["bar"] is not None:
            bar["bar"].close()
    for note in outcome.notes:
        print(note, file=sys.stderr)
    errors = [r for r in outcome.rows if r.get("error")]
    rate = f", {outcome.runs_per_second:.2f} runs/s" if outcome.ran else ""
    print(f"{len(outcome.rows)} rows ({outcome.done_before} done before, {outcome.ran} run now{rate}, "
          f"{len(errors)} failed) in {outcome.seconds:.1f}s on {args.backend} -> {args.out}")
    for r in errors[:5]:
        print(f"  failed: {r['image']} {r['model']} {r['checkpoint']} {r['layer']}: {r['error']}")
    if outcome.interrupted:
        raise UserError(f"interrupted: {outcome.ran} runs finished and kept; rerun the same command to go on")
