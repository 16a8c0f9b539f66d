"""`python -m core models`, `presets` and `download`: what is installed, what each recipe does, and the
explicit download of trained weights.
"""

from __future__ import annotations

import json

from core.cli.args import ProgressBar
from core.models.checkpoints import download_trained, load_model, trained_status
from core.models.encoder import depth_stops, stop_shapes
from core.models.registry import ARCHITECTURES
from core.recipe.presets import PRESETS


def cmd_models(args) -> None:
    listing = []
    for name, arch in ARCHITECTURES.items():
        size = max(args.size, arch.min_size)
        size -= size % arch.size_multiple
        model = load_model(name, "untrained", size)
        shapes = stop_shapes(model, size)
        status = trained_status(name)
        listing.append({
            "name": name, "title": arch.title, "source": arch.source, "min_size": arch.min_size,
            "size_multiple": arch.size_multiple, "size_note": arch.size_note,
            "mean": list(arch.mean), "std": list(arch.std), "shape_size": size,
            "trained_cached": status["cached"], "trained_path": status["path"], "trained_size_mb": status["size_mb"],
            "stops": [{"layer": s.node, "label": s.label, "shape": list(shapes[s.node])} for s in depth_stops(model)],
        })
    if args.json:
        print(json.dumps(listing, indent=2))
        return
    for m in listing:
        weights = "on disk" if m["trained_cached"] else f"not on disk ({m['trained_size_mb'] or '?'} MB download)"
        print(f"{m['name']:<20} {m['title']:<26} min {m['min_size']} px, trained weights {weights}")
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
    if status["cached"]:
        print(f"{args.model}: already at {status['path']}")
        return
    bar = ProgressBar(False, 1, f"download {args.model}", unit="B")

    def progress(done, total):
        if bar.bar:
            bar.bar.total = total or done
            bar.bar.n = done
            bar.bar.refresh()

    try:
        path = download_trained(args.model, progress)
    finally:
        bar.close()
    print(f"{args.model}: saved to {path}")
