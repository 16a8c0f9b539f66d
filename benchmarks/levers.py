"""`python -m benchmarks levers`: what each lever for a faster decoder gives, against today's default and the paper.

The issue asks for a converged answer in a tenth of the paper's time at equal or better reconstructions.
Each lever is one recipe (or one way of running it) tried on the same cases side by side in one process:
steps, seconds, whether every seed converged (m_g <= m_r), SSIM, clarity (core.measures), and the seeds'
spread (mean pairwise pixel L2 between seeds: non-uniqueness must stay visible). The paper's own loop
(`benchmarks.baselines.paper_style`: 500 plain steps per seed, batch 1, weight gradients) is timed on
the same case, so each row's `× paper` is a ratio measured in one run. A lever is kept only if it is at
least as close to the image under clarity and SSIM at every case.

    python -m benchmarks levers                       # ResNet-18 128 px, Lite0 trained 64 px early and late
    python -m benchmarks levers --cases lite0_224_early,lite0_224_late
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.env import versions
from core import Inversion, get_preset, load_image, load_model
from core.engine.speed import SpeedOptions
from core.threads import cpu_threads
from core.jobs.pipeline import run
from core.jobs.spec import RunSpec
from core.measures.judge import get_judge, judge_for

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SEEDS = [0, 1]

CASES = {
    "r18_128": ("resnet18", "untrained", 128, "astronaut", "layer2"),
    "lite0_64_early": ("efficientnet_lite0", "trained", 64, "chelsea", "blocks.1.1"),
    "lite0_64_late": ("efficientnet_lite0", "trained", 64, "chelsea", "blocks.5.0"),
    "lite0_224_early": ("efficientnet_lite0", "trained", 224, "chelsea", "blocks.1.1"),
    "lite0_224_late": ("efficientnet_lite0", "trained", 224, "chelsea", "blocks.5.0"),
}


def _blur(sigma: float) -> tuple:
    return ({"name": "blur", "kernel": 3, "sigma_start": sigma, "sigma_end": 0.0}, {"name": "clamp"})


def levers() -> dict:
    """name -> (what it changes, preset, speed options or None, coarse-to-fine start or None)."""
    d = get_preset("default")
    return {
        "default": ("today's default: Adam 0.2→0.01, blur fading over 200 steps", d, None, None),
        "short_100": ("schedule over 100 steps", d.replace(schedule_steps=100, stop_window=10), None, None),
        "short_100_lr": ("100 steps, lr 0.6, stop checked every 5",
                         d.replace(schedule_steps=100, stop_window=5, lr_start=0.6), None, None),
        "short_60_lr": ("60 steps, lr 0.8, stop checked every 5",
                        d.replace(schedule_steps=60, stop_window=5, lr_start=0.8), None, None),
        "short_120_lr": ("120 steps, lr 0.3, stop checked every 5",
                         d.replace(schedule_steps=120, stop_window=5, lr_start=0.3), None, None),
        "coarse_start": ("150 steps at half size, then 60 at full size (blur 1.2→0)",
                         d.replace(schedule_steps=60, stop_window=5, transforms=_blur(1.2)), None,
                         d.replace(schedule_steps=150, iters=150, early_stop=False)),
        "channels_last": ("today's default, NHWC convolutions", d, "channels_last", None),
        "fold_bn": ("today's default, BatchNorm folded into the convolutions", d, "fold_bn", None),
    }


def _run(model, node, image, preset, speed, coarse):
    """One lever's run; a coarse start first inverts the half-size image, then starts every seed from its
    upsampled result (the measures' zero points stay the random starts a_0)."""
    if coarse is None:
        spec = RunSpec.of(model, node, image, SEEDS, preset, "cpu")
        return run(spec, image, model, use_cache=False, speed=speed).result
    small = F.interpolate(image[None], scale_factor=0.5, mode="area")[0]
    first = Inversion(model, node, small, SEEDS, coarse, "cpu", speed=speed)
    first.run()
    start = F.interpolate(first.state.image().detach(), scale_factor=2, mode="bilinear", align_corners=False)
    inv = Inversion(model, node, image, SEEDS, preset, "cpu", speed=speed)
    inv.state = preset.param.create(start.clamp(0, 1))
    return inv.run()


def paper_seconds(model, node, image) -> float:
    from benchmarks.baselines import paper_style

    probe = Inversion(model, node, image, SEEDS[:1], get_preset("paper"), "cpu")
    t = time.perf_counter()
    paper_style(model, node, probe.y, SEEDS, image.shape[-1], 500, torch.device("cpu"))
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks levers", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="r18_128,lite0_64_early,lite0_64_late", help=f"comma list of {', '.join(CASES)}")
    ap.add_argument("--levers", default=",".join(levers()), help="comma list of levers")
    ap.add_argument("--out", default=str(RESULTS / "levers.json"))
    args = ap.parse_args(argv)
    table = levers()
    names = [n for n in args.levers.split(",") if n]
    bad = [n for n in names if n not in table] + [c for c in args.cases.split(",") if c not in CASES]
    if bad:
        ap.error(f"unknown lever or case: {', '.join(bad)}")
    threads = cpu_threads()
    base = SpeedOptions(threads=threads)
    rows = []
    report = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "threads": threads, "load_start": os.getloadavg()[0],
              "versions": versions(), "rows": rows}
    print(f"CPU, {threads} thread(s), load {os.getloadavg()[0]:.1f}", flush=True)
    for case in args.cases.split(","):
        mname, ck, size, img, node = CASES[case]
        model = load_model(mname, ck, size)
        image = load_image(str(ROOT / "assets" / f"{img}.png"), size)
        get_judge(judge_for(mname))  # loaded once per process, outside every timing
        paper = paper_seconds(model, node, image)
        print(f"{case}: {mname} {ck} {node} {size} px; the paper's loop {paper:.2f} s", flush=True)
        for name in names:
            what, preset, option, coarse = table[name]
            speed = base.replace(**{option: True}) if option else base
            t = time.perf_counter()
            res = _run(model, node, image, preset, speed, coarse)
            sec = time.perf_counter() - t
            m = res.metrics
            row = {"case": case, "lever": name, "what": what, "seconds": round(sec, 2), "steps": res.steps_done,
                   "paper_seconds": round(paper, 2), "x_paper": round(paper / sec, 1),
                   "converged": all(m["converged"]), "ssim": round(sum(m["ssim"]) / len(m["ssim"]), 3),
                   "clarity": round(m["clarity"], 3), "spread": round(m["seed_spread_input"], 2)}
            rows.append(row)
            print(f"  {name:<14} {row['steps']:>4} steps {sec:6.2f} s  {row['x_paper']:5.1f}x paper  "
                  f"converged {row['converged']!s:<5}  SSIM {row['ssim']:.3f}  clarity {row['clarity']:.3f}  "
                  f"seed spread {row['spread']:.1f}", flush=True)
    report["load_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"load at the end {report['load_end']:.1f}; wrote {args.out}")
    return 0
