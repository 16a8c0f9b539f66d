"""`python -m core curve`: clarity at every depth stop, per checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.cli.args import ProgressBar, preset_of, say_forecast
from core.devices import describe, resolve_device
from core.engine.run_reading import status
from core.errors import UserError
from core.images import load_image
from core.jobs.forecast import plan_time
from core.jobs.pipeline import Callbacks
from core.models.checkpoints import load_model
from core.models.registry import get_architecture
from core.report.files import write_curve
from core.studies.curve import batched, iter_curve, resolve_layers


def cmd_curve(args) -> None:
    preset = preset_of(args)
    get_architecture(args.model).check_size(args.size)
    image = load_image(args.image, args.size)
    checkpoints = [c.strip() for c in args.checkpoints.split(",") if c.strip()]
    if not checkpoints:
        raise UserError("--checkpoints needs at least one of untrained, trained or a path")
    layers = "stops" if args.layers == "stops" else [s.strip() for s in args.layers.split(",") if s.strip()]
    device = resolve_device(args.device)

    def forecast(measure_at, is_cached):
        lines = []
        for ck in checkpoints:
            model = load_model(args.model, ck, args.size, args.init_seed)
            lines.append((args.model, model, ck, [node for _, node, _ in resolve_layers(model, layers)]))
        return plan_time(lines, image, args.seeds, preset, device, measure_at, is_cached)

    say_forecast(args, forecast, len(args.seeds), preset, device, together=batched(args.batch_stops, device))
    bar = ProgressBar(args.quiet, 1, "curve")
    state = {"base": 0}

    def on_stop(done, total, ck, layer):
        state["base"] = done * preset.iters
        if bar.bar:
            bar.bar.total = total * preset.iters
            bar.bar.set_description(f"{done}/{total} {ck}:{layer}" if layer else "done")

    def on_snapshot(snap):
        bar.update(snap, state["base"])

    t0 = time.perf_counter()
    try:
        cb = Callbacks(next_run=on_stop, snapshot=on_snapshot, progress=on_snapshot)
        rows = list(iter_curve(args.model, image, checkpoints, layers, seeds=args.seeds, preset=preset, device=device,
                               init_seed=args.init_seed, callbacks=cb, every=max(1, preset.iters // 20),
                               use_cache=not args.no_cache, batch_stops=args.batch_stops))
    finally:
        bar.close()
    settings = {"model": args.model, "checkpoints": checkpoints, "size": args.size, "seeds": args.seeds,
                "preset": preset.name, "preset_settings": preset.to_dict(), "iters": preset.iters,
                "device": describe(device), "init_seed": args.init_seed, "image": str(args.image),
                "batch_stops": args.batch_stops, "seconds": round(time.perf_counter() - t0, 3)}
    write_curve(rows, settings, image, Path(args.out))
    states = [status(r.result.metrics) for r in rows]
    for r, st in zip(rows, states):
        print(f"{r.checkpoint:>10} {r.layer:<32} clarity {r.result.metrics['clarity']:.3f}  {st:<13} "
              f"steps {r.result.steps_done}/{preset.iters}" + ("  (cached)" if r.cached else ""))
    hits = sum(r.cached for r in rows)
    print(f"{len(rows)} runs in {settings['seconds']:.1f}s" + (f" ({hits} from the cache)" if hits else "")
          + f" -> {args.out}")
    bad, borderline = states.count("not converged"), states.count("borderline")
    line = f"{bad} of {len(rows)} rows not converged"
    if borderline:
        line += f", {borderline} borderline"
    if bad or borderline:
        line += ": raise --iters before reading those pictures as the layer's answer"
    print(line)
