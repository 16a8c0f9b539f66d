"""`python -m core manifold`: invert non-natural inputs at deep layers, untrained vs trained (finding 5).

    python -m core manifold --model efficientnet_lite0 --checkpoints untrained,trained \
        --layers blocks.3.0,blocks.5.0,conv_head --input noise,gaussian,shapes,flat --size 64 --seeds 2 \
        --iters 300 --out out/manifold

writes manifold.json (rows, validation, comparison), manifold.png and manifold.html (see `core.studies.manifold`).
`core/cli/main.py` registers it with `add_parser(sub)` and `COMMANDS["manifold"] = run`; until then
`python -m core.cli.manifold manifold ...` runs it with the same conventions (a fixable error: one line
`error: ...` on stderr, exit code 2).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from core.cli.args import ProgressBar, positive_int, preset_of, run_options, say_forecast, seed_list
from core.devices import describe, resolve_device
from core.errors import UserError
from core.jobs.forecast import NOTHING, plan_time
from core.jobs.pipeline import Callbacks
from core.studies.curve import resolve_layers
from core.models.checkpoints import load_model
from core.models.registry import get_architecture
from core.report.manifold import write_manifold
from core.studies.deep import deep_stops
from core.studies.manifold import Describer, default_size, iter_manifold, load_inputs, validate

INPUT_HELP = ("comma list of noise, gaussian, disc, stripes, checker (shapes = all three), flat, all, or image paths "
              "(default noise,gaussian,shapes,flat)")


def add_parser(subparsers) -> None:
    """Register the `manifold` subcommand on `python -m core`'s subparsers (its parser class raises UserError)."""
    p = subparsers.add_parser("manifold", help="invert noise, shapes and a flat colour at deep layers, untrained vs "
                                               "trained (finding 5), with descriptors of 'looks like training data'")
    p.add_argument("--model", default="efficientnet_lite0", help="architecture name (default efficientnet_lite0)")
    p.add_argument("--checkpoints", default="untrained,trained", help="comma list (default untrained,trained)")
    p.add_argument("--layers", default="deep", help="'deep' (the model's deep stops, the layers finding 5 tests; "
                                                    "Lite0: blocks.5.1, bn2) or a comma list of layers")
    p.add_argument("--input", default="noise,gaussian,shapes,flat", help=INPUT_HELP)
    p.add_argument("--input-seed", type=int, default=0, help="seed of the generated noise inputs (default 0)")
    p.add_argument("--size", type=positive_int, default=None,
                   help="square size in px (default: 224 on a GPU, 64 on a CPU)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1], help="seed count or comma list (default 2)")
    run_options(p)


def run(args) -> None:
    """The `manifold` command (args from `add_parser`'s parser)."""
    preset = preset_of(args)
    size = args.size or default_size(args.model)
    get_architecture(args.model).check_size(size)
    inputs = load_inputs(args.input, size, args.input_seed)  # a bad --input fails before any model is loaded
    checkpoints = [c.strip() for c in args.checkpoints.split(",") if c.strip()]
    if not checkpoints:
        raise UserError("--checkpoints needs at least one of untrained, trained or a path")
    layers = None if args.layers == "deep" else [s.strip() for s in args.layers.split(",") if s.strip()]
    device = resolve_device(args.device)
    models = [load_model(args.model, ck, size, args.init_seed) for ck in checkpoints]
    describer = Describer(args.model, size, trained=next((m for ck, m in zip(checkpoints, models)
                                                          if ck == "trained" and args.model == "efficientnet_lite0"),
                                                         None))
    nodes = [node for _, node, _ in resolve_layers(models[0], layers or deep_stops(models[0]))]
    say_forecast(args, lambda measure_at, is_cached: sum(  # every input is its own run at each layer
        (plan_time([(args.model, m, ck, nodes) for ck, m in zip(checkpoints, models)], x, args.seeds, preset, device,
                   measure_at, is_cached) for x in inputs.values()), NOTHING), len(args.seeds), preset, device)
    bar = ProgressBar(args.quiet, 1, "manifold")
    state, input_names = {"base": 0}, list(inputs)

    def on_run(done, total, ck, layer):
        state["base"] = done * preset.iters
        if bar.bar:
            bar.bar.total = total * preset.iters
            name = input_names[done % len(input_names)]  # inputs run in order within each layer
            bar.bar.set_description(f"{done}/{total} {ck}:{layer}:{name}" if layer else "done")

    t0 = time.perf_counter()
    try:
        rows = list(iter_manifold(args.model, inputs, checkpoints, layers, seeds=args.seeds, preset=preset,
                                  device=device, init_seed=args.init_seed, describer=describer, models=models,
                                  use_cache=not args.no_cache,
                                  callbacks=Callbacks(snapshot=lambda s: bar.update(s, state["base"]),
                                                      progress=lambda s: bar.update(s, state["base"]),
                                                      note=lambda t: print(f"note: {t}", file=sys.stderr),
                                                      next_run=on_run),
                                  every=max(1, preset.iters // 20)))
    finally:
        bar.close()
    validation = validate(size, describer, args.input_seed)
    settings = {"model": args.model, "checkpoints": checkpoints, "layers": list(dict.fromkeys(r.layer for r in rows)),
                "inputs": list(inputs), "input_seed": args.input_seed, "size": size, "seeds": args.seeds,
                "preset": preset.name, "preset_settings": preset.to_dict(), "iters": preset.iters,
                "device": describe(device), "init_seed": args.init_seed,
                "seconds": round(time.perf_counter() - t0, 3)}
    data = write_manifold(rows, inputs, validation, settings, Path(args.out))
    names = list(data["descriptors"])

    def num(v) -> str:
        return "n/a" if v is None else f"{v:.3g}"

    for r in data["rows"]:
        vals = "  ".join(f"{n} {num(r[n + '_mean'])} (input {num(r['input_' + n])})" for n in names)
        state_ = "converged" if r["converged"] else "NOT converged"
        print(f"{r['checkpoint']:>10} {r['layer']:<12} {r['input']:<9} clarity {r['clarity']:.2f} {state_:<13} {vals}"
              + ("  (cached)" if r["cached"] else ""))
    for line in data["summary"]:
        print(line)
    print(f"{len(rows)} runs in {settings['seconds']:.1f}s on {settings['device']} -> {args.out}")
