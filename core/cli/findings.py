"""`python -m core findings`: do the paper's findings hold for these models, on these images, and how sure are we?

One sweep per image size (cached and resumable like `sweep`, whose options it shares), then a verdict per
finding (`core.studies.verdicts`), written as findings.json, findings.md and a self-contained report.html.

    python -m core findings --models efficientnet_lite0 --checkpoints untrained,trained --images samples \\
        --size 64 --seeds 2 --out runs/findings-lite0
"""

from __future__ import annotations

import argparse
import sys

from core.cli.args import (ProgressBar, batch_option, model_file_option, preset_of, run_options, say_forecast, seeds_option,
                           typed)
from core.devices import resolve_device
from core.errors import SweepStopped, UserError
from core.report.findings import write_findings
from core.studies.curve import batched
from core.studies.findings import FindingsPlan, run_findings
from core.studies.forecasts import findings_time
from core.studies.verdicts import OWN_SCALE, runs_of


def sizes_list(text: str) -> list[int]:
    """"64,224" -> [64, 224] (each checked against the size setting's limits)."""
    parse = typed("size")
    try:
        sizes = [parse(s.strip()) for s in str(text).split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size, e.g. 64 or 64,224")
    return sizes


def add_parser(sub) -> None:
    p = sub.add_parser("findings", help="test the paper's findings on your models and images: a verdict per "
                                        "finding (holds, does not hold, inconclusive) with its confidence interval")
    p.add_argument("--images", default="samples",
                   help="'samples' (the shipped images, default), a folder or a comma list of image files")
    p.add_argument("--models", default="", help="comma list of architectures (curated, torchvision:NAME, timm:NAME)")
    model_file_option(p)
    p.add_argument("--findings", default="all", help="which findings to test: all (default) or a comma list of 1-7; "
                   "only their runs are made (5: generated inputs at deep stops, 6: the lab's MLPs)")
    p.add_argument("--checkpoints", default="untrained,trained",
                   help="comma list: untrained, trained or state-dict paths (finding 4 needs untrained and trained)")
    p.add_argument("--size", type=sizes_list, default=[64], help="image size in px, or a comma list (e.g. 64,224): "
                   "each size is a sweep of its own, and finding 4 says whether its verdict depends on the size")
    seeds_option(p)
    run_options(p, out_help="output folder (findings.json, findings.md, report.html)", cache=False)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per run, fixed for the report (default: OMP_NUM_THREADS if set, else each run "
                        "follows the load)")
    p.add_argument("--backend", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="ray: a running cluster's address (default: start a local Ray)")
    p.add_argument("--workers", type=int, default=None, help="ray: CPUs of the local Ray (default: all)")
    batch_option(p, sweep=True)


def run(args: argparse.Namespace) -> None:
    if args.backend == "local" and args.address:
        raise UserError("--address is for --backend ray")
    preset = preset_of(args)
    device = resolve_device(args.device).type
    plan = FindingsPlan.create(args.images, args.models.split(","), args.checkpoints.split(","), args.size,
                               args.seeds, preset, device, args.init_seed, args.threads, args.batch_stops,
                               findings=args.findings)
    if args.backend == "local":  # a cluster's time depends on its workers, not on this machine's steps
        six = "".join(f" (finding {f}'s {OWN_SCALE[f]} not measured)" for f in runs_of("lab", plan.findings))
        first = plan.sweeps[0] if plan.sweeps else None
        together = first is not None and batched(first.batch_stops, resolve_device(device), first.size)
        say_forecast(args, lambda measure_at, is_cached: findings_time(plan, measure_at, is_cached),
                     len(plan.seeds), preset, device, together=together, what=f"of these findings{six}")
    bars = {}

    def progress(part, done, total, what):
        if part not in bars:
            bars[part] = ProgressBar(args.quiet, total, part, unit="run")
        bars[part].to(done, what)

    kwargs = {"address": args.address, "workers": args.workers} if args.backend == "ray" else {}
    try:
        report = run_findings(plan, args.out, args.backend, progress=progress, **kwargs)
    except SweepStopped as exc:  # Ray lost a node: write what was judged before it, then the one error line
        if exc.report is not None:
            write_findings(exc.report, args.out)  # the error stays one line; the report says the size was cut
        raise
    finally:
        for bar in bars.values():
            bar.close()
    paths = write_findings(report, args.out)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    for v in report.verdicts:
        where = OWN_SCALE.get(v.id) or f"{(v.evidence or {}).get('size')} px"
        print(f"finding {v.id} · {v.model or 'lab MLPs'} {v.checkpoint or ''} · {where}: {v.verdict} — {v.why}")
    for fid, why in report.not_here.items():
        print(f"finding {fid}: no verdict ({why})")
    print(f"{sum(report.runs().values())} runs in {report.seconds:.0f} s -> {paths['html']}")
