"""`python -m benchmarks findings`: how long a whole findings report takes, from an empty cache.

The issue's case: EfficientNet-Lite0 untrained and trained at 64 px on the four sample images, 2 seeds, the default
recipe; aim: at most 10 minutes on this CPU, at most 60 s on a GPU at 224 px. It times the whole report, findings 5
(the manifold's inputs) and 6 (the MLP lab) included, as the CLI runs it. The report runs through the same
`core.studies.findings.run_findings` as the CLI and the page, into a temporary run cache (nothing reused), and
its verdicts go into the markdown section with the time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks.env import cpu_name, versions, write_section
from benchmarks.runner import ROOT
from core.devices import describe, resolve_device
from core.jobs import RunCache
from core.recipe.presets import get_preset
from core.report.findings import findings_md, write_findings
from core.studies.findings import FindingsPlan, run_findings



def write_markdown(path: Path, text: str) -> None:
    write_section(path, "findings", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks findings", description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="efficientnet_lite0")
    ap.add_argument("--checkpoints", default="untrained,trained")
    ap.add_argument("--images", default="samples")
    ap.add_argument("--size", default=None, help="comma list (default: 64 on a CPU, 224 on a GPU)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=None, help="step budget (default: the preset's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--target-s", type=float, default=None, help="the aim (default: 600 on a CPU, 60 on a GPU)")
    ap.add_argument("--out", default=None, help="keep the report here (default: a temporary folder)")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    ap.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"), help="'none' to skip")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    sizes = [int(s) for s in (args.size or ("224" if gpu else "64")).split(",")]
    target = args.target_s or (60.0 if gpu else 600.0)
    preset = get_preset("default", **({"iters": args.iters} if args.iters else {}))
    where = describe(device)
    with tempfile.TemporaryDirectory(prefix="bench-findings-") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "report"
        cache = RunCache(Path(tmp) / "runs")
        plan = FindingsPlan.create(args.images, args.models.split(","), args.checkpoints.split(","), sizes,
                                   list(range(args.seeds)), preset, device.type)
        t0 = time.perf_counter()
        report = run_findings(plan, out, cache=cache)
        seconds = time.perf_counter() - t0
        write_findings(report, out)
    runs = sum(report.runs().values())
    steps = sum(int(r.get("steps_done") or 0) for r in report.all_rows())
    print(f"{where}: {runs} runs, {steps} steps in {seconds:.0f} s ({seconds / max(1, runs):.1f} s a run); "
          f"aim {target:.0f} s: {'met' if seconds <= target else 'NOT met'}")
    for v in report.verdicts:
        place = "16 px grey MLPs" if v.id == "6" else f"{v.model} {v.evidence.get('size')} px"
        print(f"  finding {v.id} {place}: {v.verdict} ({v.why})")
    numbers = {"date": dt.datetime.now().isoformat(timespec="seconds"), "device": where, "cpu": cpu_name(),
               "cores": os.cpu_count(), "versions": versions(), "models": plan.models, "checkpoints": plan.checkpoints,
               "sizes": sizes, "seeds": args.seeds, "iters": preset.iters, "runs": runs, "steps": steps,
               "seconds": seconds, "target_s": target, "met": seconds <= target,
               "verdicts": [v.to_dict() for v in report.verdicts]}
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=1, default=str))
    if args.markdown != "none":
        text = (f"## Findings report (`python -m benchmarks findings`)\n\n{numbers['date']} on **{where}** "
                f"({numbers['cpu']}, {numbers['cores']} cores): {', '.join(plan.models)} "
                f"{' + '.join(plan.checkpoints)} at {', '.join(f'{s} px' for s in sizes)} on the sample images, "
                f"{args.seeds} seeds, the default recipe (budget {preset.iters} steps, early stop), from an empty "
                f"cache: **{runs} runs, {steps} steps in {seconds:.0f} s** ({seconds / max(1, runs):.1f} s a run); "
                f"the aim is {target:.0f} s: **{'met' if seconds <= target else 'not met'}**.\n\n"
                + findings_md(report))
        write_markdown(Path(args.markdown), text)
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
