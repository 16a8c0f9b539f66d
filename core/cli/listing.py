"""`python -m core models`, `presets` and `download`: what is installed, what each recipe does, and the
explicit download of trained weights.
"""

from __future__ import annotations

import json

from core.cli.args import ProgressBar
from core.errors import UserError
from core.models.checkpoints import download_trained, load_model, trained_status
from core.models.encoder import depth_stops, stop_shapes
from core.models.libraries import LIBRARIES, names
from core.models.registry import ARCHITECTURES, get_architecture
from core.recipe.presets import PRESETS


def describe_model(name: str, size: int) -> dict:
    """One model's entry for `models`: what it is, its input constraint, weights, and its depth stops with shapes
    at `size` px (the nearest size it takes)."""
    arch = get_architecture(name)
    size = arch.fixed_size or max(size, arch.min_size)
    size -= size % arch.size_multiple
    model = load_model(name, "untrained", size)
    shapes = stop_shapes(model, size)
    status = trained_status(name)
    return {
        "name": arch.name, "title": arch.title, "source": arch.source, "min_size": arch.min_size,
        "size_multiple": arch.size_multiple, "fixed_size": arch.fixed_size, "size_note": arch.size_note,
        "mean": list(arch.mean), "std": list(arch.std), "shape_size": size, "params": arch.params,
        "has_trained": arch.has_trained, "trained_cached": status["cached"], "trained_path": status["path"],
        "trained_size_mb": status["size_mb"], "stops_derived": arch.stops_of is None,
        "stops": [{"layer": s.node, "label": s.label, "shape": list(shapes[s.node])} for s in depth_stops(model)],
    }


def cmd_models(args) -> None:
    if args.all:
        listing = {"curated": list(ARCHITECTURES), **{lib: [f"{lib}:{n}" for n in names(lib)] for lib in LIBRARIES}}
        if args.json:
            print(json.dumps(listing, indent=2))
            return
        for group, items in listing.items():
            print(f"{group} ({len(items)}):")
            print("    " + " ".join(items))
        print("(`models --model NAME` lists one model's depth stops)")
        return
    chosen = [args.model] if args.model else list(ARCHITECTURES)
    listing = [describe_model(name, args.size) for name in chosen]
    if args.json:
        print(json.dumps(listing[0] if args.model else listing, indent=2))
        return
    for m in listing:
        if not m["has_trained"]:
            weights = "none"
        elif m["trained_cached"]:
            weights = "on disk"
        else:
            weights = f"not on disk ({m['trained_size_mb'] or '?'} MB download: `python -m core download {m['name']}`)"
        size = f"{m['fixed_size']} px only" if m["fixed_size"] else f"min {m['min_size']} px"
        print(f"{m['name']:<20} {m['title']:<26} {size}, trained weights {weights}")
        if args.model:  # one model: a stop per line, with its label
            derived = " (derived from its graph)" if m["stops_derived"] else ""
            print(f"    depth stops at {m['shape_size']} px{derived}:")
            for s in m["stops"]:
                print(f"    {s['layer']:<40} {s['label']:<36} {tuple(s['shape'])}")
        else:
            print("    " + ", ".join(f"{s['layer']} {tuple(s['shape'])}" for s in m["stops"]))


def cmd_presets(args) -> None:
    if args.json:
        print(json.dumps({name: p.to_dict() for name, p in PRESETS.items()}, indent=2))
        return
    for name, p in PRESETS.items():
        print(name)
        print(f"    {p.describe()}")
        if p.note:
            print(f"    {p.note}")
    print("(`presets --json` lists every field)")


def cmd_download(args) -> None:
    status = trained_status(args.model)
    if not status["exists"]:
        raise UserError(f"{args.model} has no trained weights in its library; use --checkpoint untrained or a "
                        "state-dict file")
    if status["cached"]:
        print(f"{args.model}: already at {status['path']}")
        return
    bars = []  # made at the first bytes: a download that fails at once prints its one error line only

    def progress(done, total):
        if not bars:
            bars.append(ProgressBar(False, 1, f"download {args.model}", unit="B"))
        bar = bars[0]
        if bar.bar:
            bar.bar.total = total or done
            bar.bar.n = done
            bar.bar.refresh()

    try:
        path = download_trained(args.model, progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"{args.model}: saved to {path}")
