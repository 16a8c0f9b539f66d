"""`python -m core compare`: the clarity curves of several models on one relative-depth axis.

    python -m core compare --models resnet18,vgg16,vit_b_16 --checkpoints untrained,trained --layers 6 \\
        --image assets/chelsea.png --size 32 --seeds 2 --iters 150 --out out/compare

writes compare.json, compare.csv, compare.html and gallery.png (see `core.report.compare.write_compare`).
A model × checkpoint whose trained weights are not on disk is skipped with a one-line note on stderr.

Wired into `core.cli` by `add_parser(sub)` and `COMMANDS["compare"] = run`; until then (or on its own)
`python -m core.cli.compare ...` runs the same command with the same conventions (one-line `error:`, exit 2).
`core.cli` is imported inside the functions only, so `core.cli` may import this module at its top.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.cli.args import (ProgressBar, batch_option, model_file_option, preset_of, run_options, say_forecast,
                           seeds_option,
                           size_option)
from core.devices import describe, resolve_device
from core.images import load_image
from core.jobs.forecast import plan_time
from core.jobs.pipeline import Callbacks
from core.studies.curve import batched
from core.report.compare import write_compare
from core.report.text import unconverged_text
from core.studies.compare import check_sizes, iter_compare, parse_models, plan_compare


def _layers(text: str):
    """'stops' (every stop), a number k (k stops spread over each model) or a comma list of nodes."""
    text = text.strip()
    if text == "stops":
        return "stops"
    if text.isdigit():
        if int(text) < 1:
            raise argparse.ArgumentTypeError("--layers: a number of stops per model must be at least 1")
        return int(text)
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--layers takes 'stops', a number of stops per model, or a comma list")
    return names


def _bins(text: str) -> list[float]:
    """A count n (columns at 1/n, 2/n ... 1) or a comma list of relative depths in (0, 1]."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return [round(k / n, 3) for k in range(1, n + 1)]
        values = sorted({float(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bins takes a count (e.g. 10) or relative depths (e.g. 0.25,0.5,1), "
                                         f"got {text!r}") from None
    if not values or not all(0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"--bins: relative depths lie between 0 and 1, got {text!r}")
    return values


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `compare` on `core.cli`'s subparsers (the arguments mirror `curve`'s) and return its parser."""
    p = subparsers.add_parser("compare", help="clarity curves of several models on one relative-depth axis")
    p.add_argument("--models", default="", help="comma list of architectures (see `models`; torchvision:NAME and "
                   "timm:NAME too), e.g. resnet18,vgg16,timm:resnet26d")
    model_file_option(p)
    p.add_argument("--checkpoints", default="untrained",
                   help="comma list of untrained, trained or state-dict paths, tried on every model (default "
                        "untrained); trained weights not on disk skip that model with a note")
    p.add_argument("--layers", type=_layers, default="stops",
                   help="'stops' (every depth stop, default), a number k (k stops spread evenly over each model, "
                        "the first and the logits included) or a comma list of nodes every model has")
    p.add_argument("--bins", type=_bins, default=None,
                   help="gallery columns: a count n (relative depths 1/n ... 1) or a comma list such as 0.25,0.5,1 "
                        "(default: 0.1, 0.2 ... 1 for all stops; for k stops per model, where the models' k stops sit)")
    p.add_argument("--image", required=True, help="path to an image (PNG, JPEG, GIF, TIFF, BMP, WebP)")
    size_option(p, 64, help="square input size in px, one for every model (default 64)")
    seeds_option(p)
    run_options(p)
    batch_option(p)
    return p


def run(args) -> None:
    """The `compare` command: plan (sizes, weights, layers: all checked before any run), run, write, summarise."""
    preset = preset_of(args)
    check_sizes(parse_models(args.models), args.size)  # before any work on the image or the models
    image = load_image(args.image, args.size)
    checkpoints = [c.strip() for c in args.checkpoints.split(",") if c.strip()]
    lines, skipped = plan_compare(args.models, checkpoints, args.size, args.layers, args.init_seed)
    for note in skipped:
        print(f"note: {note}", file=sys.stderr)
    device = resolve_device(args.device)
    say_forecast(args, lambda measure_at, is_cached: plan_time(
        [(line.model, line.loaded, line.checkpoint, line.nodes) for line in lines], image, args.seeds, preset, device,
        measure_at, is_cached), len(args.seeds), preset, device, together=batched(args.batch_stops, device))
    total = sum(len(line.plan) for line in lines)
    bar = ProgressBar(args.quiet, total * preset.iters, "compare")
    state = {"base": 0}

    def on_stop(done, total_, name, layer):
        state["base"] = done * preset.iters
        if bar.bar:
            bar.bar.set_description(f"{done}/{total_} {name}:{layer}" if layer else "done")

    def on_snapshot(snap):
        bar.update(snap, state["base"])

    t0 = time.perf_counter()
    try:
        cb = Callbacks(next_run=on_stop, snapshot=on_snapshot, progress=on_snapshot,
                       note=lambda t: print(f"note: {t}", file=sys.stderr))
        rows = list(iter_compare(lines, image, seeds=args.seeds, preset=preset, device=device, callbacks=cb,
                                 every=max(1, preset.iters // 20), use_cache=not args.no_cache,
                                 batch_stops=args.batch_stops))
    finally:
        bar.close()
    models = list(dict.fromkeys(line.model for line in lines))
    settings = {"models": models, "checkpoints": checkpoints, "lines": [line.name for line in lines],
                "layers": args.layers, "stops": {line.name: line.nodes for line in lines},
                "n_stops": {line.model: line.n_stops for line in lines}, "size": args.size, "seeds": args.seeds,
                "preset": preset.name, "preset_settings": preset.to_dict(), "iters": preset.iters,
                "device": describe(device), "init_seed": args.init_seed, "image": str(args.image),
                "relative_depth": "(stop index + 1) / the model's number of depth stops: 0 input, 1 logits",
                "seconds": round(time.perf_counter() - t0, 3)}
    data = write_compare(rows, settings, image, Path(args.out), skipped, args.bins)
    width = max(len(line.name) for line in lines)
    for r in data["rows"]:
        line = f"{r['model']} · {r['checkpoint']}"
        print(f"{line:<{width}} {r['relative_depth']:.2f} {r['layer']:<32} clarity {r['clarity']:.3f}  "
              f"{r['status']:<13} steps {r['steps_done']}/{preset.iters}")
    hits = sum(r.cached for r in rows)
    print(f"{len(rows)} runs over {len(lines)} model × checkpoint lines in {settings['seconds']:.1f}s"
          + (f" ({hits} from the cache)" if hits else "") + f" -> {args.out}")
    bad = unconverged_text(data["rows"])
    n_bad = sum(r["status"] != "converged" for r in data["rows"])
    if bad:
        print(f"{n_bad} of {len(rows)} rows not converged, borderline or degenerate (hollow on the chart, framed red "
              f"in the gallery): {bad}; raise --iters before reading those pictures as the layer's answer")
    else:
        print(f"every one of {len(rows)} rows converged")
    if skipped:
        print(f"skipped {len(skipped)} model × checkpoint line(s): see the notes above")
