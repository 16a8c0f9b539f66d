"""How well each measure of what a reconstruction keeps agrees with the eye, and how it answers known changes.

    python -m benchmarks measures [--write]     # prints both tables; --write puts them in BENCHMARKS.md

1. The judged set (tests/fixtures/judged, made by `python -m benchmarks judged-set`): pairs of real
   reconstructions a person judged by eye (`judgements.json`: "a", "b" keeps more of the image, or "unclear").
   A measure agrees on a pair when it scores the judged one higher; a tie is no answer and counts against it.
2. Controlled changes with a known answer, on the four bundled samples at 64 px: noise and blur ladders
   (each step should score lower), brightness, contrast, colour and a one-pixel shift (the content is kept:
   should score high), phase scrambling and shuffled patches (the content is lost, the statistics kept:
   should score low).
Every number comes from `core.measures`, the panel the runs use, normalised against the run's start.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.env import cpu_name, write_section
from benchmarks.judged_set import load_png
from core.engine.loop import start_images
from core.images import load_image, sample_images
from core.measures import MEASURES, baseline, measure
from core.recipe.presets import DEFAULT

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "judged"
NAMES = (*MEASURES,)  # the panel, in order; clarity is one of them (core.measures.CLARITY)


def judged_scores(fixture: Path = FIXTURE) -> dict[str, dict[str, float]]:
    """run id -> {measure: 0-1} for every run of the judged set (each against its image and the common start)."""
    runs = json.loads((fixture / "runs.json").read_text())
    start = load_png(fixture / "start.png").unsqueeze(0)
    out: dict[str, dict[str, float]] = {}
    by_image_model: dict[tuple[str, str], list[str]] = {}
    for rid, r in runs.items():
        by_image_model.setdefault((r["image"], r["model"]), []).append(rid)
    for (image, model), rids in by_image_model.items():
        base = baseline(load_png(fixture / f"image-{image}.png"), start, model)
        for rid in rids:
            m = measure(load_png(fixture / f"{rid}.png").unsqueeze(0), base)
            out[rid] = {name: m[name] for name in NAMES}
    return out


def agreement(fixture: Path = FIXTURE, scores: dict | None = None, names=NAMES) -> dict[str, dict]:
    """measure -> {"n", "agree", "share", "disagree": [pair ids], "unclear": {pair id: the measure's pick}}."""
    judged = json.loads((fixture / "judgements.json").read_text())["pairs"]
    scores = scores or judged_scores(fixture)
    out = {}
    for name in names:
        agree, wrong, unclear = 0, [], {}
        for p in judged:
            va, vb = scores[p["a"]][name], scores[p["b"]][name]
            pick = "a" if va > vb + 1e-9 else "b" if vb > va + 1e-9 else "tie"
            if p["judgement"] == "unclear":
                unclear[p["id"]] = pick
            elif pick == p["judgement"]:
                agree += 1
            else:
                wrong.append(p["id"])
        n = agree + len(wrong)
        out[name] = {"n": n, "agree": agree, "share": agree / n if n else float("nan"), "disagree": wrong,
                     "unclear": unclear}
    return out


# ------------------------------------------------------------------ controlled changes


def _phase_scramble(img: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The image's amplitude spectrum with random phases (one phase field for all channels): statistics kept."""
    g = torch.Generator().manual_seed(seed)
    f = torch.fft.fft2(img)
    noise = torch.fft.fft2(torch.rand(img.shape[-2:], generator=g))
    out = torch.fft.ifft2(f.abs() * torch.exp(1j * (torch.angle(f) + torch.angle(noise)))).real
    return out.clamp(0, 1)


def _shuffle_patches(img: torch.Tensor, patch: int = 8, seed: int = 0) -> torch.Tensor:
    c, h, w = img.shape
    tiles = img.unfold(1, patch, patch).unfold(2, patch, patch).reshape(c, -1, patch, patch)
    perm = torch.randperm(tiles.shape[1], generator=torch.Generator().manual_seed(seed))
    n = h // patch
    return tiles[:, perm].reshape(c, n, n, patch, patch).permute(0, 1, 3, 2, 4).reshape(c, h, w)


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    from skimage.filters import gaussian
    return torch.from_numpy(gaussian(img.permute(1, 2, 0).numpy(), sigma=sigma, channel_axis=-1)).permute(2, 0, 1).float()


def _noise(img: torch.Tensor, std: float) -> torch.Tensor:
    return (img + std * torch.randn(img.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)


# change -> (what should happen, the change): "kept" should score high, "lost" low, ladders fall step by step
CHANGES = {
    "identical": ("kept", lambda x: x),
    "noise 0.05": ("ladder", lambda x: _noise(x, 0.05)),
    "noise 0.1": ("ladder", lambda x: _noise(x, 0.1)),
    "noise 0.2": ("ladder", lambda x: _noise(x, 0.2)),
    "noise 0.4": ("ladder", lambda x: _noise(x, 0.4)),
    "blur 0.5": ("ladder", lambda x: _blur(x, 0.5)),
    "blur 1": ("ladder", lambda x: _blur(x, 1)),
    "blur 2": ("ladder", lambda x: _blur(x, 2)),
    "blur 4": ("ladder", lambda x: _blur(x, 4)),
    "brightness +0.2": ("kept", lambda x: (x + 0.2).clamp(0, 1)),
    "contrast x0.5": ("kept", lambda x: (x - x.mean()) * 0.5 + x.mean()),
    "colour (RGB -> BRG)": ("kept", lambda x: x[[2, 0, 1]]),
    "shift 1 px": ("kept", lambda x: torch.roll(x, shifts=(1, 1), dims=(1, 2))),
    "phase scrambled": ("lost", _phase_scramble),
    "patches shuffled (8 px)": ("lost", _shuffle_patches),
}


def controlled(size: int = 64) -> dict[str, dict[str, float]]:
    """change -> {measure: mean over the four samples}, each against the image and the default start."""
    starts = start_images([0], size, DEFAULT).clamp(0, 1)
    per: dict[str, dict[str, list[float]]] = {c: {n: [] for n in NAMES} for c in CHANGES}
    for path in sample_images().values():
        img = load_image(path, size)
        base = baseline(img, starts, "efficientnet_lite0")
        for change, (_, fn) in CHANGES.items():
            m = measure(fn(img).unsqueeze(0), base)
            for n in NAMES:
                per[change][n].append(m[n])
    return {c: {n: float(np.mean(v)) for n, v in d.items()} for c, d in per.items()}


def answers(table: dict[str, dict[str, float]]) -> dict[str, dict[str, bool]]:
    """measure -> {"ladders fall", "kept above lost"}: whether it answers the known changes right."""
    out = {}
    for n in NAMES:
        falls = all(all(a[n] > b[n] for a, b in zip(lad, lad[1:]))
                    for lad in ([table[f"noise {s}"] for s in ("0.05", "0.1", "0.2", "0.4")],
                                [table[f"blur {s}"] for s in ("0.5", "1", "2", "4")]))
        kept = [table[c][n] for c, (k, _) in CHANGES.items() if k == "kept" and c != "identical"]
        lost = [table[c][n] for c, (k, _) in CHANGES.items() if k == "lost"]
        out[n] = {"ladders fall": falls, "kept above lost": min(kept) > max(lost)}
    return out


def cost(repeats: int = 3) -> dict:
    """The panel's share of a default 64 px Invert run (trained Lite0, stage 6 block 1, coffee, 3 seeds).

    The judge is loaded once per process (timed apart: `judge_load_s`); each run then pays for the baseline
    (the image and the starts, when the run is built) and the measures of its result, never per step.
    """
    from core.measures.judge import get_judge, judge_for
    from core.models import load_model
    from core.engine.loop import invert

    t = time.perf_counter()
    get_judge(judge_for("efficientnet_lite0"))
    load_s = time.perf_counter() - t
    model = load_model("efficientnet_lite0", "trained", 64)
    image = load_image(sample_images()["coffee"], 64)
    runs, panels = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        r = invert(model, "blocks.5.0", image, [0, 1, 2], DEFAULT, progress=False)
        runs.append(time.perf_counter() - t)
        t = time.perf_counter()
        base = baseline(image, start_images([0, 1, 2], 64, DEFAULT).clamp(0, 1), model.name)
        measure(r.images.clamp(0, 1), base)
        panels.append(time.perf_counter() - t)
    run_s, panel_s = float(np.median(runs)), float(np.median(panels))
    return {"judge_load_s": load_s, "run_s": run_s, "panel_s": panel_s, "share": panel_s / run_s,
            "steps": r.steps_done}


def _describe(pair_id: str, fixture: Path = FIXTURE) -> str:
    """"p22 (efficientnet_lite0, rocket: trained blocks.3.0 / untrained blocks.3.0; judged: the first)"."""
    pairs = {p["id"]: p for p in json.loads((fixture / "judgements.json").read_text())["pairs"]}
    runs = json.loads((fixture / "runs.json").read_text())
    p = pairs[pair_id]
    a, b = runs[p["a"]], runs[p["b"]]
    won = {"a": "the first", "b": "the second"}.get(p["judgement"], "unclear")
    return (f"{pair_id} ({a['model']}, {a['image']}: {a['checkpoint']} {a['layer']} / {b['checkpoint']} {b['layer']}; "
            f"judged: {won})")


def report(agree: dict, table: dict, seconds: float, price: dict | None = None) -> str:
    from core.measures import CLARITY
    import os
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [f"Machine: {cpu_name()}, {torch.get_num_threads()} threads, load average at start {load}; {seconds:.0f} s. "
             f"Clarity is `{CLARITY}`.", "",
             "Judged set (tests/fixtures/judged: a person's judgement of which of two reconstructions keeps more "
             "of the image; a tie counts against the measure):", "",
             "| measure | agrees | share | disagrees on |", "| --- | --- | --- | --- |"]
    for n in NAMES:
        a = agree[n]
        named = a["disagree"] if len(a["disagree"]) > 6 else [_describe(p) for p in a["disagree"]]
        lines.append(f"| {n} | {a['agree']}/{a['n']} | {a['share']:.0%} | {', '.join(named) or '-'} |")
    lines += ["", "Controlled changes (mean over the four samples, 64 px; 0 = the run's start, 1 = the image):", "",
              "| change | expected | " + " | ".join(NAMES) + " |", "| --- | --- | " + " | ".join("---" for _ in NAMES) + " |"]
    for change, (kind, _) in CHANGES.items():
        exp = {"kept": "high (content kept)", "lost": "low (content lost)", "ladder": "falls down the ladder"}[kind]
        lines.append(f"| {change} | {exp} | " + " | ".join(f"{table[change][n]:.2f}" for n in NAMES) + " |")
    ans = answers(table)
    lines += ["", "| measure | ladders fall | every kept change above every lost one |", "| --- | --- | --- |"]
    lines += [f"| {n} | {'yes' if a['ladders fall'] else 'no'} | {'yes' if a['kept above lost'] else 'no'} |"
              for n, a in ans.items()]
    if price:
        lines += ["", f"Cost: a default 64 px Invert run (trained Lite0, stage 6 block 1, coffee, 3 seeds, "
                  f"{price['steps']} steps) took {price['run_s']:.2f} s (median of 3) of which the panel (baseline and "
                  f"measures) {price['panel_s']:.3f} s: **{price['share']:.1%}** (aim: at most 10%). Loading the judge "
                  f"once per process: {price['judge_load_s']:.2f} s."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks measures")
    ap.add_argument("--write", action="store_true", help="put the tables in BENCHMARKS.md")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    price = cost()  # first: it times loading the judge
    agree = agreement()
    table = controlled()
    text = report(agree, table, time.perf_counter() - t, price)
    print(text)
    if args.write:
        write_section(Path(__file__).resolve().parents[1] / "BENCHMARKS.md", "measures", text)
    return 0
