"""Command line of the invertibility lab: `python -m core lab {mlp,jacobian}` (see core/studies/lab.py).

    python -m core lab mlp --widths 0.5,1,2,4 --activations linear,relu --depths 1,3 --image assets/chelsea.png \\
        --size 16 --seeds 2 --out out/lab
    python -m core lab jacobian --model resnet18 --checkpoint untrained --layers stops --image assets/chelsea.png \\
        --size 32 --out out/jac [--clarity]

`add_parser(subparsers)` registers `lab` on core/cli/main.py's parser and `run(args)` runs it; the same
conventions hold (a UserError prints one line, `error: ...`, and exits 2). `python -m core.cli.lab
mlp ...` runs the same commands on their own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.cli.args import MODEL_HELP, ProgressBar, model_file_option, positive_int, seed_list
from core.devices import describe, resolve_device
from core.errors import UserError
from core.images import load_image
from core.jobs.pipeline import Callbacks
from core.models.checkpoints import load_model
from core.models.registry import get_architecture
from core.paths import ASSETS
from core.report.lab import write_jacobian, write_lab
from core.studies.lab import (
    ACTIVATIONS,
    DEFAULT_DEPTHS,
    DEFAULT_WIDTHS,
    LAB_ITERS,
    LAB_SIZE,
    MAX_JACOBIAN_MB,
    MAX_SIZE,
    MIN_SIZE,
    TOP_K,
    add_clarity,
    iter_jacobian,
    iter_mlp_lab,
    plan_mlp,
)

DEFAULT_IMAGE = str(ASSETS / "chelsea.png")


def _list(kind, what: str):
    def parse(text: str) -> list:
        try:
            out = [kind(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} takes a comma list, got {text!r}") from None
        if not out:
            raise argparse.ArgumentTypeError(f"{what} needs at least one value")
        return out
    return parse


def _activations(text: str) -> list[str]:
    out = _list(str, "--activations")(text)
    bad = [a for a in out if a not in ACTIVATIONS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown activation(s) {', '.join(bad)}: choose from "
                                         f"{', '.join(ACTIVATIONS)}")
    return out


def _add_commands(parser: argparse.ArgumentParser) -> None:
    """The `mlp` and `jacobian` commands, under `parser` (core/cli/main.py's `lab`, or the stand-alone one)."""
    sub = parser.add_subparsers(dest="lab_command", metavar="{mlp,jacobian}", required=True,
                                parser_class=type(parser))
    p = sub.add_parser("mlp", help="invert untrained MLPs of several widths, activations and depths on a grey image")
    p.add_argument("--widths", type=_list(float, "--widths"), default=list(DEFAULT_WIDTHS),
                   help="hidden width as multiples of the input, comma list (default 0.5,1,2,4)")
    p.add_argument("--activations", type=_activations, default=["linear", "relu", "leaky_relu", "tanh"],
                   help="comma list of linear, relu, leaky_relu, tanh (default all four)")
    p.add_argument("--depths", type=_list(int, "--depths"), default=list(DEFAULT_DEPTHS),
                   help="numbers of hidden layers, comma list (default 1,3)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="path to an image (made grey; default assets/chelsea.png)")
    p.add_argument("--size", type=positive_int, default=LAB_SIZE, help="the grey image's side in px (default 16)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1], help="seed count or comma list (default 2)")
    p.add_argument("--iters", type=positive_int, default=LAB_ITERS,
                   help=f"step budget (default {LAB_ITERS}); a run stops sooner once every seed has converged")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the networks' initialisation (default 0)")
    p.add_argument("--no-early-stop", action="store_true",
                   help="run the whole budget (ill-conditioned networks keep improving after m_g <= m_r)")
    p.add_argument("--blur", action="store_true",
                   help="add the default recipe's blur prior (it fills what the network leaves undetermined)")
    p.add_argument("--device", default="cpu", help="cpu (default: these networks are tiny), auto, cuda, mps")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-cache", action="store_true", help="compute even when the run cache holds a run")

    p = sub.add_parser("jacobian", help="the Jacobian of each depth stop at the image: rank, singular values, "
                                        "condition number")
    p.add_argument("--model", default=None, help=MODEL_HELP)
    model_file_option(p)
    p.add_argument("--checkpoint", default="untrained", help="untrained, trained or a state-dict path")
    p.add_argument("--layers", default="stops", help="'stops' (all depth stops) or a comma list of layers")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="path to an image (default assets/chelsea.png)")
    p.add_argument("--size", type=positive_int, default=32,
                   help="square input size in px (default 32; the cost grows with its fourth to sixth power)")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the untrained initialisation")
    p.add_argument("--k", type=positive_int, default=TOP_K, help=f"singular values kept at each end (default {TOP_K})")
    p.add_argument("--max-mb", type=positive_int, default=MAX_JACOBIAN_MB,
                   help=f"largest Jacobian in float64 MB (default {MAX_JACOBIAN_MB})")
    p.add_argument("--clarity", action="store_true",
                   help="also the clarity curve of the same stops (core.studies.curve, the default preset)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1], help="seeds of the clarity runs (default 2)")
    p.add_argument("--iters", type=positive_int, default=None, help="step budget of the clarity runs")
    p.add_argument("--device", default="auto", help="device of the clarity runs (the Jacobians use the CPU)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-cache", action="store_true", help="recompute the clarity runs even when cached")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `lab` (with `mlp` and `jacobian`) on core/cli/main.py's subparsers; returns its parser."""
    p = subparsers.add_parser("lab", help="invertibility lab: MLP widths and depths, Jacobian rank and conditioning")
    _add_commands(p)
    return p


def cmd_mlp(args) -> None:
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise UserError(f"--size {args.size}: the lab's grey image is {MIN_SIZE}-{MAX_SIZE} px")
    configs = plan_mlp(args.widths, args.activations, args.depths, args.size)  # validated before any work
    image = load_image(args.image, args.size)
    device = resolve_device(args.device)
    bar = ProgressBar(args.quiet, len(configs), "lab mlp", unit="run")

    def on_config(done, total, name, _node):
        bar.to(done, desc=name or "done")

    t0 = time.perf_counter()
    try:
        rows = list(iter_mlp_lab(image, args.widths, args.activations, args.depths, seeds=args.seeds,
                                 iters=args.iters, init_seed=args.init_seed, device=device, blur=args.blur,
                                 early_stop=not args.no_early_stop, use_cache=not args.no_cache,
                                 callbacks=Callbacks(next_run=on_config)))
    finally:
        bar.close()
    settings = {"kind": "mlp", "image": str(args.image), "size": args.size, "widths": args.widths,
                "activations": args.activations, "depths": args.depths, "seeds": args.seeds, "iters": args.iters,
                "init_seed": args.init_seed, "blur": args.blur, "early_stop": not args.no_early_stop,
                "preset": rows[0].result.preset.to_dict(),
                "device": describe(device), "seconds": round(time.perf_counter() - t0, 3)}
    write_lab(rows, settings, image, Path(args.out))
    print(f"{'activation':<11}{'depth':>5}{'width':>7}{'units':>6}  {'clarity':>7} {'pinv':>6} {'rank':>9} "
          f"{'cond':>9}  conv  steps")
    for r in rows:
        d = r.to_json()
        cond = f"{d['condition_number']:.3g}" if d["condition_number"] is not None else "inf"
        pinv = f"{d['pinv_clarity']:.3f}" if d["pinv_clarity"] is not None else "-"
        print(f"{d['activation']:<11}{d['depth']:>5}{d['width']:>6g}x{d['units']:>6}  {d['clarity']:>7.3f} "
              f"{pinv:>6} {d['jacobian_rank']:>4}/{d['input_dim']:<4} {cond:>9}  {d['converged_seeds']}/"
              f"{len(d['seeds'])}  {d['steps']}" + ("  (cached)" if d["cached"] else ""))
    print(f"{len(rows)} networks in {settings['seconds']:.1f}s on {settings['device']} -> {args.out}")


def cmd_jacobian(args) -> None:
    import torch


    get_architecture(args.model).check_size(args.size)
    image = load_image(args.image, args.size)
    model = load_model(args.model, args.checkpoint, args.size, args.init_seed)
    layers = "stops" if args.layers == "stops" else [s.strip() for s in args.layers.split(",") if s.strip()]

    def on_layer(done, total, _name, node):
        if not args.quiet and node:
            print(f"[{done + 1}/{total}] {node}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    rows = list(iter_jacobian(model, image, layers, max_mb=args.max_mb, callbacks=Callbacks(next_run=on_layer)))
    jac_s = time.perf_counter() - t0
    settings = {"kind": "jacobian", "model": args.model, "checkpoint": args.checkpoint, "init_seed": args.init_seed,
                "image": str(args.image), "size": args.size, "dtype": "float64", "input": "raw [0, 1] pixels",
                "rank_tolerance": "sigma_max * max(m, n) * eps(float64)", "k": args.k,
                "torch_threads": torch.get_num_threads(), "seconds": round(jac_s, 3)}
    if args.clarity:
        from core.recipe.presets import get_preset
        from core.studies.curve import iter_curve

        preset = get_preset("default", iters=args.iters)
        device = resolve_device(args.device)
        stop = Callbacks(next_run=lambda d, t, ck, layer: on_layer(d, t, ck, f"clarity {layer}" if layer else ""))
        curve = list(iter_curve(args.model, image, [args.checkpoint], [r.layer for r in rows], seeds=args.seeds,
                                preset=preset, device=device, init_seed=args.init_seed, models=[model],
                                use_cache=not args.no_cache, callbacks=stop))
        add_clarity(rows, curve)
        settings.update({"clarity_preset": preset.to_dict(), "clarity_seeds": args.seeds,
                         "clarity_device": describe(device)})
    for r in rows:
        r.k = args.k
    data = write_jacobian(rows, settings, Path(args.out))
    print(f"{'layer':<14}{'outputs':>8}{'rank':>12}  {'sigma_max':>9} {'sigma_min':>9} {'cond':>9} "
          f"{'clarity':>7} {'seconds':>8}")
    for d in data["rows"]:
        cond = f"{d['condition_number']:.3g}" if d["condition_number"] is not None else "inf"
        clar = f"{d['clarity']:.3f}" if d.get("clarity") is not None else "-"
        print(f"{d['layer']:<14}{d['output_dim']:>8}{d['rank']:>6}/{d['input_dim']:<5}  {d['sigma_max']:>9.3g} "
              f"{d['sigma_min']:>9.3g} {cond:>9} {clar:>7} {d['seconds']:>8.1f}")
    print(f"{len(rows)} Jacobians in {jac_s:.1f}s (float64, CPU, {settings['torch_threads']} threads) -> {args.out}")


def run(args) -> None:
    """core/cli/main.py's entry for `lab`: dispatch on the sub-command."""
    {"mlp": cmd_mlp, "jacobian": cmd_jacobian}[args.lab_command](args)
