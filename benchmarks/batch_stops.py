"""`python -m benchmarks batch-stops`: a whole clarity curve run one stop at a time against all stops in one batch.

Same image, seeds, recipe and device; `--batch-stops off` then `on` (`core.studies.curve.iter_curve`, no
cache). Prints the wall time of each, the speed-up, and the largest difference between the two
curves (clarity, and m_g relative to the sequential run's), stop by stop.

    python -m benchmarks batch-stops --cases resnet18:untrained:32,efficientnet_lite0:trained:64 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core import get_preset, load_image
from core.devices import describe, resolve_device
from core.engine.speed import SpeedOptions
from core.studies.curve import clarity_curve

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "assets" / "chelsea.png"


def compare(arch: str, checkpoint: str, size: int, seeds: list[int], device, iters: int | None) -> dict:
    """Time both ways of running every stop of `arch` and measure how far their curves differ."""
    preset = get_preset("default")
    if iters:
        preset = preset.replace(iters=iters)
    image = load_image(str(IMAGE), size)
    out = {"arch": arch, "checkpoint": checkpoint, "size": size, "seeds": len(seeds), "iters": preset.iters}
    rows = {}
    speed = SpeedOptions.auto(device)  # one thread pick for both ways: another count rounds differently
    for mode in ("off", "on"):
        t = time.perf_counter()
        rows[mode] = clarity_curve(arch, image, [checkpoint], None, seeds=seeds, preset=preset, device=device,
                                   use_cache=False, batch_stops=mode, speed=speed)
        out[f"{mode}_s"] = time.perf_counter() - t
    worst_c = worst_g = 0.0
    for a, b in zip(rows["off"], rows["on"]):
        ma, mb = a.result.metrics, b.result.metrics
        worst_c = max(worst_c, abs(ma["clarity"] - mb["clarity"]))
        worst_g = max(worst_g, max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(ma["embedding_l2"],
                                                                                   mb["embedding_l2"])))
    out.update(stops=len(rows["on"]), speedup=out["off_s"] / out["on_s"], clarity_diff=worst_c, mg_rel_diff=worst_g,
               steps=[r.result.steps_done for r in rows["on"]])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks batch-stops", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="resnet18:untrained:32,efficientnet_lite0:trained:64",
                    help="comma list of arch:checkpoint:size")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=None, help="step budget (default: the default recipe's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {describe(device)}")
    results = []
    for case in args.cases.split(","):
        arch, ck, size = case.split(":")
        r = compare(arch, ck, int(size), list(range(args.seeds)), device, args.iters)
        results.append(r)
        print(f"{arch} {ck} {size} px, {r['stops']} stops x {r['seeds']} seeds, budget {r['iters']}: "
              f"one by one {r['off_s']:.1f} s, one batch {r['on_s']:.1f} s ({r['speedup']:.2f}x); "
              f"largest difference: clarity {r['clarity_diff']:.1e}, m_g {r['mg_rel_diff']:.1e} (relative)",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": describe(device), "results": results}, indent=1))
    return 0
