"""`python -m benchmarks quality`: which recipe decodes best, measured on the shipped images.

For every recipe (preset) and every case of the issue's grid, one inversion with 2 seeds; a row
reports SSIM, clarity, the worst seed's m_g / m_r, the steps until every seed had m_g <= m_r,
the steps run and the seconds. Also:
- `speedup`: the default recipe against the paper's protocol as its script runs it (500 plain
  steps, one seed at a time, weight gradients computed), ResNet-18 untrained layer2, 128 px;
- a picture grid (recipes x stops) for ResNet-18 untrained at 224 px into docs/.

Cases can be split across machines (`--cases r18_224,r50_224 --device cuda`), each writing its
own JSON; `--markdown` merges every JSON in the results folder into BENCHMARKS.md's quality
section.

    python -m benchmarks quality --cases r18_64,lite0_64,vgg_vit_64 --device cpu
    python -m benchmarks quality --cases r18_224,r50_224,speedup --device cuda
    python -m benchmarks quality --markdown
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from pathlib import Path

import torch

from benchmarks.env import write_section
from core import Inversion, get_preset, load_image, load_model
from core.devices import describe, resolve_device
from core.jobs.pipeline import run
from core.jobs.spec import RunSpec
from core.studies.curve import resolve_layers

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RECIPES = ("paper", "mv", "natural", "default")
SEEDS = [0, 1]

# name -> list of (model, checkpoint, size, image, layers or "stops")
CASES = {
    "r18_64": [("resnet18", "untrained", 64, "astronaut", "stops")],
    "r18_224": [("resnet18", "untrained", 224, "astronaut", "stops")],
    "r50_224": [("resnet50", "untrained", 224, "astronaut", ["conv1", "layer1", "layer2", "layer3", "layer4"])],
    "lite0_64": [("efficientnet_lite0", ck, 64, "chelsea", "stops") for ck in ("untrained", "trained")],
    "vgg_vit_64": [("vgg16", "untrained", 64, "coffee", ["features.1", "features.9", "features.23", "classifier.6"]),
                   ("vit_b_16", "untrained", 64, "coffee",
                    ["conv_proj", "encoder.layers.encoder_layer_3", "encoder.layers.encoder_layer_11", "heads"])],
    "tiny": [("resnet18", "untrained", 32, "chelsea", ["conv1", "layer2"])],
}


def _run(model, node, image, preset, device):
    """One row's run through the app's pipeline (`core.jobs.pipeline.run`), never from the cache: the times are measured."""
    return run(RunSpec.of(model, node, image, SEEDS, preset, device), image, model, use_cache=False).result


def run_case(model_name, ck, size, image_name, layers, recipes, device, log, iters_cap=None, only=None):
    model = load_model(model_name, ck, size)
    image = load_image(str(ROOT / "assets" / f"{image_name}.png"), size)
    rows, pictures = [], {}
    for depth, node, label in resolve_layers(model, layers):
        if only and node not in only:
            continue
        for name in recipes:
            preset = get_preset(name, iters=iters_cap) if iters_cap else get_preset(name)
            t = time.perf_counter()
            res = _run(model, node, image, preset, device)
            sec = time.perf_counter() - t
            m = res.metrics
            reach = m["steps_to_reference"]
            row = {"model": model_name, "checkpoint": ck, "size": size, "image": image_name, "layer": node,
                   "depth": depth, "recipe": name, "ssim": sum(m["ssim"]) / len(m["ssim"]),
                   "clarity": m["clarity"], "mg_over_mr": None if m["mg_over_mr"] is None else max(m["mg_over_mr"]),
                   "converged": all(m["converged"]), "degenerate": m["degenerate"],
                   "steps_to_reference": None if None in reach else max(reach), "steps_done": res.steps_done,
                   "seconds": round(sec, 3), "device": res.device}
            rows.append(row)
            pictures[(node, name)] = res.images[0]
            log(f"  {model_name:>18} {ck:<9} {size:>3}px {node:<32} {name:<8} ssim {row['ssim']:.3f} "
                f"clarity {row['clarity']:.3f} m_g/m_r {row['mg_over_mr'] if row['mg_over_mr'] is None else round(row['mg_over_mr'], 2)} "
                f"steps {row['steps_done']} {sec:.1f}s")
    return rows, pictures, image


def speedup(device, log, size=128, iters=500):
    """Default (engine, early stop) vs the paper's script loop, ResNet-18 untrained layer2, 2 seeds."""
    from benchmarks.baselines import paper_style
    from core.metrics import ssim

    model = load_model("resnet18", "untrained", size)
    image = load_image(str(ROOT / "assets" / "astronaut.png"), size)
    t = time.perf_counter()
    res = _run(model, "layer2", image, get_preset("default"), device)
    d_sec = time.perf_counter() - t
    probe = Inversion(model, "layer2", image, SEEDS[:1], get_preset("paper"), device)
    t = time.perf_counter()
    hist, finals, _ = paper_style(model, "layer2", probe.y, SEEDS, size, iters, device)
    p_sec = time.perf_counter() - t
    p_ssim = [ssim(img.clamp(0, 1), probe.original) for img in finals]
    p_mg = [h[-1] / probe.m_r for h in hist]
    out = {"size": size, "default_seconds": round(d_sec, 3), "default_steps": res.steps_done,
           "default_ssim": sum(res.metrics["ssim"]) / 2, "default_converged": all(res.metrics["converged"]),
           "default_mg_over_mr": max(res.metrics["mg_over_mr"]),
           "paper_script_seconds": round(p_sec, 3), "paper_script_ssim": sum(p_ssim) / 2,
           "paper_script_mg_over_mr_at_last_step": max(p_mg), "speedup": p_sec / d_sec, "device": res.device}
    log(f"  speedup: default {d_sec:.2f}s ({res.steps_done} steps, SSIM {out['default_ssim']:.3f}, "
        f"converged {out['default_converged']}) vs paper script {p_sec:.2f}s (SSIM {out['paper_script_ssim']:.3f}): "
        f"{out['speedup']:.1f}x")
    return out


def picture_grid(pictures, image, recipes, path: Path):
    """Rows: recipes; columns: the original, then every stop."""
    from core.report.draw import labelled_grid

    layers = list(dict.fromkeys(node for node, _ in pictures))
    blank = image * 0 + 1
    rows = [[image] + [pictures.get((layer, r), blank) for layer in layers] for r in recipes]
    canvas = labelled_grid(rows, ["original", *layers], list(recipes), side=70)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


# --------------------------------------------------------------------------- the report


def spearman(a, b) -> float | None:
    if len(a) < 3:
        return None
    ra = torch.tensor(a).argsort().argsort().double()
    rb = torch.tensor(b).argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))


def markdown(reports: list[dict]) -> str:
    rows = [r for rep in reports for r in rep.get("rows", [])]
    speed = [rep["speedup"] for rep in reports if rep.get("speedup")]
    lines = ["## Reconstruction quality by recipe (`python -m benchmarks quality`)", "",
             "2 seeds per run, shipped images. SSIM is the mean over seeds; `m_g/m_r` the worst seed "
             "(≤ 1: converged; `deg` = degenerate layer, m_r ≈ 0); *reach* = steps until every seed had "
             "m_g ≤ m_r; *steps* = steps run (the default stops early, the paper runs 500). "
             "Machines: " + "; ".join(sorted({f"{rep['device']} ({', '.join(rep['cases'])})" for rep in reports})) + ".",
             ""]
    groups = {}
    for r in rows:
        groups.setdefault((r["model"], r["checkpoint"], r["size"], r["image"]), []).append(r)
    summary = []
    for (model, ck, size, image), rs in groups.items():
        recipes = list(dict.fromkeys(r["recipe"] for r in rs))
        lines += [f"### {model} {ck}, {size} px, {image}", "",
                  "| stop | " + " | ".join(f"{n} SSIM / m_g/m_r / reach / steps / s" for n in recipes) + " |",
                  "|---|" + "---|" * len(recipes)]
        by = {(r["layer"], r["recipe"]): r for r in rs}
        for layer in dict.fromkeys(r["layer"] for r in rs):
            cells = []
            for n in recipes:
                r = by.get((layer, n))
                if r is None:
                    cells.append("-")
                    continue
                ratio = "deg" if r["mg_over_mr"] is None else f"{r['mg_over_mr']:.2f}"
                mark = "" if r["converged"] else " ✗"
                reach = "n/a" if r.get("from_log") else ("—" if r["steps_to_reference"] is None else r["steps_to_reference"])
                cells.append(f"{r['ssim']:.3f} / {ratio}{mark} / {reach}"
                             f" / {r['steps_done']} / {r['seconds']:.1f}")
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
        lines.append("")
        d = [r for r in rs if r["recipe"] == "default"]
        p = {r["layer"]: r for r in rs if r["recipe"] == "paper"}
        unconv = [r["layer"] for r in d if not r["converged"]]
        worse = [r["layer"] for r in d if r["layer"] in p and p[r["layer"]]["ssim"] >= 0.3
                 and r["ssim"] < p[r["layer"]]["ssim"]]
        rho = spearman([r["clarity"] for r in d], [r["ssim"] for r in d])
        summary.append(f"- {model} {ck} {size} px: default converged at {len(d) - len(unconv)}/{len(d)} stops"
                       + (f" (not: {', '.join(unconv)})" if unconv else "")
                       + "; below the paper's SSIM where the paper is recognisable (SSIM ≥ 0.3): "
                       + (", ".join(worse) if worse else "none")
                       + (f"; Spearman(clarity, SSIM) over stops {rho:.2f}" if rho is not None else ""))
    lines += ["### Summary", ""] + summary + [""]
    grids = sorted((ROOT / "docs").glob("quality_grid_*.png"))
    if grids:
        lines += ["Pictures (rows: recipes; columns: the original, then every stop; first seed): "
                  + ", ".join(f"[`{g.name}`](docs/{g.name})" for g in grids) + ".", ""]
    notes = [rep["note"] for rep in reports if rep.get("note")]
    lines += [f"Note: {n}." for n in notes] + ([""] if notes else [])
    for s in speed:
        lines += [f"**Early stopping, {s['size']} px ResNet-18 untrained layer2, 2 seeds ({s['device']}):** default "
                  f"{s['default_seconds']:.2f} s ({s['default_steps']} steps, SSIM {s['default_ssim']:.3f}, "
                  f"m_g/m_r {s['default_mg_over_mr']:.2f}) vs the paper's script loop {s['paper_script_seconds']:.2f} s "
                  f"(500 steps per seed, SSIM {s['paper_script_ssim']:.3f}, m_g/m_r {s['paper_script_mg_over_mr_at_last_step']:.2f}): "
                  f"**{s['speedup']:.1f}× sooner** (the issue's target is ≥ 10×: "
                  f"{'met' if s['speedup'] >= 10 else 'not met'}).", ""]
    return "\n".join(lines)


def write_markdown(path: Path, text: str) -> None:
    write_section(path, "quality", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks quality", description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="r18_64,lite0_64,vgg_vit_64,speedup",
                    help=f"comma list of {', '.join(CASES)}, speedup")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(RESULTS), help="folder for quality-<device>-<cases>.json")
    ap.add_argument("--grid", default=None, help="write the recipes x stops picture of the first case here")
    ap.add_argument("--iters-cap", type=int, default=None, help="cap every recipe's budget (rehearsals only)")
    ap.add_argument("--only-layers", default=None, help="comma list: run only these stops of the cases")
    ap.add_argument("--markdown", nargs="?", const=str(ROOT / "BENCHMARKS.md"), default=None,
                    help="merge every quality JSON in --out into this BENCHMARKS.md and stop")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.markdown:
        reports = [json.loads(p.read_text()) for p in sorted(out.glob("quality-*.json"))]
        write_markdown(Path(args.markdown), markdown(reports))
        print(f"wrote the quality section of {args.markdown} from {len(reports)} report(s)")
        return 0
    device = resolve_device(args.device)
    recipes = [r for r in args.recipes.split(",") if r]
    cases = [c for c in args.cases.split(",") if c]
    log = lambda s: print(s, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "device": describe(device),
              "cases": cases, "recipes": recipes, "rows": [], "speedup": None, "seconds": 0.0}
    out.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", describe(device).lower()).strip("-")[:40]
    tag = "-".join(cases) + (f"-{len(args.only_layers.split(','))}layers-{'-'.join(recipes)}" if args.only_layers else "")
    path = out / f"quality-{slug}-{tag}.json"
    for i, c in enumerate(cases):
        if c == "speedup":
            log("speedup:")
            report["speedup"] = speedup(device, log)
        else:
            log(f"{c}:")
            for j, case in enumerate(CASES[c]):
                only = set(args.only_layers.split(",")) if args.only_layers else None
                r, pics, image = run_case(*case, recipes, device, log, args.iters_cap, only)
                report["rows"] += r
                if args.grid and i == 0 and j == 0:
                    picture_grid(pics, image, recipes, Path(args.grid))
        report["seconds"] = round(time.perf_counter() - t0, 1)
        path.write_text(json.dumps(report, indent=1))  # after every case: a run cut short keeps what it has
    print(markdown([report]))
    print(f"\nwrote {path} in {report['seconds']:.0f}s")
    return 0
