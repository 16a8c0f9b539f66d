"""Command line: `python -m core {models,presets,invert,curve,score,download,compare,manifold,sweep,lab}`.

Errors the user can fix print one line, `error: ...`, on stderr and exit with code 2. Library
warnings (torch, Pillow...) are silenced while a command runs so that line stands alone; set
CORE_DEBUG=1 to see them (and tracebacks of internal errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from core.architectures import get_architecture
from core.errors import UserError


from core import cli_compare, cli_lab, cli_manifold, cli_sweep  # noqa: E402  (subcommands in their own modules)

_EXTRA_NAMES = ["compare", "lab", "manifold", "sweep"]
_EXTRA = [cli_compare, cli_lab, cli_manifold, cli_sweep]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2, no usage dump
        raise UserError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed_list(text: str) -> list[int]:
    """`4` means seeds 0..3; `3,7,11` lists them."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return list(range(_positive_int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes a count (e.g. 4) or a list (e.g. 0,5,9), got {text!r}")


def _steps_list(text: str) -> list[int]:
    """`100` or `100,50`: the steps of each continuation."""
    try:
        return [_positive_int(s.strip()) for s in text.split(",") if s.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--continue takes positive step counts (e.g. 100 or 100,50), got {text!r}")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _preset_names() -> list[str]:
    from core.presets import PRESETS

    return list(PRESETS)


def run_options(p: argparse.ArgumentParser) -> None:
    """The options every inverting subcommand shares: budget, early stop, preset, lr, device, init seed, output,
    progress bar and cache (`invert`, `curve`, `compare`, `manifold`)."""
    p.add_argument("--iters", type=_positive_int, default=None,
                   help="step budget (default: the preset's); a run may stop sooner, see --no-early-stop")
    p.add_argument("--no-early-stop", action="store_true",
                   help="run the whole --iters budget instead of stopping once every seed has converged")
    p.add_argument("--preset", default="default", help=f"{', '.join(_preset_names())} (default: default; "
                   "see `presets`)")
    p.add_argument("--lr", type=_float, default=None, help="starting learning rate (overrides the preset)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the untrained initialisation")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-cache", action="store_true",
                   help="compute even when the run cache ($INVERSION_CACHE_DIR, else .cache/runs) holds this run, "
                        "and do not store it")


def batch_option(p: argparse.ArgumentParser) -> None:
    """--batch-stops, for the subcommands that run many stops of one model (`curve`, `compare`)."""
    from core.curve import BATCH_STOPS

    p.add_argument("--batch-stops", choices=BATCH_STOPS, default="auto",
                   help="run a checkpoint's stops as one optimisation, every stop's seeds in one batch "
                        "(on), or one stop after another (off); auto: on for CUDA (default auto)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="architecture name (see `models`)")
    p.add_argument("--image", required=True, help="path to an image (PNG, JPEG, GIF, TIFF, BMP, WebP)")
    p.add_argument("--size", type=_positive_int, default=64, help="square input size in px (default 64)")
    p.add_argument("--seeds", type=_seed_list, default=[0, 1], help="seed count or comma list (default 2)")
    run_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Feature inversion of vision models (Badger 2022).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("models", help="list architectures, depth stops and weights")
    p.add_argument("--json", action="store_true")
    p.add_argument("--size", type=_positive_int, default=224, help="input size for the listed shapes")
    p = sub.add_parser("presets", help="list the presets (recipes) with all their settings")
    p.add_argument("--json", action="store_true", help="a JSON object: name -> every field of the preset")
    p = sub.add_parser("invert", help="invert one layer from several seeds")
    _common(p)
    p.add_argument("--checkpoint", default="untrained", help="untrained, trained or a state-dict path")
    p.add_argument("--layer", required=True, help="depth stop or graph node name")
    p.add_argument("--continue", dest="cont", type=_steps_list, default=[], metavar="STEPS",
                   help="continue the finished run by STEPS more (a comma list: one continuation after another), "
                        "as the app's Continue does; the app's link keeps these as cont=")
    p = sub.add_parser("curve", help="clarity at every depth stop, per checkpoint")
    _common(p)
    p.add_argument("--checkpoints", default="untrained,trained", help="comma list (default untrained,trained)")
    p.add_argument("--layers", default="stops", help="'stops' (all) or a comma list of layers")
    batch_option(p)
    p = sub.add_parser("score", help="clarity, SSIM, PSNR and m_i of a reconstruction against an image")
    p.add_argument("--image", required=True, help="the original image")
    p.add_argument("--reconstruction", required=True, help="the reconstruction to score")
    p.add_argument("--size", type=_positive_int, default=None,
                   help="square size both are cropped and resized to (default: the reconstruction's own)")
    p.add_argument("--start", default=None,
                   help="the run's start image, clarity's zero (default: the default preset's a_0 for seed 0)")
    p = sub.add_parser("download", help="fetch torchvision's trained weights into its cache")
    p.add_argument("model")
    for module in _EXTRA:
        module.add_parser(sub)
    return parser


def _preset(args):
    from core.presets import get_preset

    preset = get_preset(args.preset, iters=args.iters)
    if args.no_early_stop:
        preset = preset.replace(early_stop=False)
    return preset if args.lr is None else preset.with_lr(args.lr)


class _Bar:
    """A terminal progress bar (tqdm) fed from snapshots."""

    def __init__(self, quiet: bool, total: int, desc: str, unit: str = "step"):
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", file=sys.stderr, leave=False)

    def update(self, snap, offset: int = 0):
        if self.bar:
            self.bar.set_postfix(m_g=f"{sum(snap.embedding_l2) / len(snap.embedding_l2):.3g}", refresh=False)
            self.bar.update(offset + snap.step - self.bar.n)

    def close(self):
        if self.bar:
            self.bar.close()


def cmd_models(args) -> None:
    from core.architectures import ARCHITECTURES
    from core.checkpoints import load_model, trained_status
    from core.encoder import depth_stops, stop_shapes

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
    from core.presets import PRESETS

    if args.json:
        print(json.dumps({name: p.to_dict() for name, p in PRESETS.items()}, indent=2))
        return
    for name, p in PRESETS.items():
        print(name)
        print(f"    {p.describe()}")
        if p.note:
            print(f"    {p.note}")
    print("(`presets --json` lists every field)")


def _stop_text(reason: str | None, early_stop: bool, steps: int, budget: int) -> str:
    if reason == "converged":
        rule = "every seed converged (m_g <= m_r) and its SSIM to the image settled"
        return f"stopped early: {rule}" if steps < budget else f"the stopping rule was met at the last step: {rule}"
    if reason == "budget":
        return ("ran the whole budget (early stop off)" if not early_stop
                else "ran the whole budget (the stopping rule was not met sooner)")
    return "stopped before the end"


def cmd_invert(args) -> None:
    from core.checkpoints import load_model
    from core.images import load_image
    from core.jobs import Callbacks, RunSpec, run
    from core.report import write_inversion
    from core.verdict import reading

    preset = _preset(args)
    get_architecture(args.model).check_size(args.size)  # before any work on the image
    image = load_image(args.image, args.size)
    model = load_model(args.model, args.checkpoint, args.size, args.init_seed)
    spec = RunSpec.of(model, args.layer, image, args.seeds, preset, args.device)
    for steps in args.cont:
        spec = spec.then(steps)
    bar = _Bar(args.quiet, spec.steps, f"{args.model}:{args.layer}")
    try:
        job = run(spec, image, model, use_cache=not args.no_cache, every=max(1, preset.iters // 50),
                  callbacks=Callbacks(snapshot=bar.update, progress=bar.update,
                                      note=lambda t: print(f"note: {t}", file=sys.stderr)))
    finally:
        bar.close()
    result = job.result
    write_inversion(result, Path(args.out))
    m = result.metrics
    took = "cached (computed earlier; --no-cache recomputes)" if job.cached else f"{result.seconds:.1f}s"
    print(f"{args.model} {args.checkpoint} {args.layer}: clarity {m['clarity']:.3f}, "
          f"m_g {sum(m['embedding_l2']) / len(m['embedding_l2']):.4g} vs m_r {m['reference_l2']:.4g}, "
          f"{took} on {result.device} -> {args.out}")
    print(f"  {reading(result)}")
    if spec.continued:
        print(f"  steps {result.steps_done}: the {preset.iters}-step run, then continued by "
              f"{' + '.join(map(str, spec.continued))}")
    else:
        stop = _stop_text(m.get("stop_reason"), preset.early_stop, result.steps_done, preset.iters)
        print(f"  steps {result.steps_done} of {preset.iters}: {stop}")


def cmd_curve(args) -> None:
    from core.curve import iter_curve
    from core.devices import describe, resolve_device
    from core.images import load_image
    from core.report import write_curve
    from core.verdict import status

    preset = _preset(args)
    get_architecture(args.model).check_size(args.size)
    image = load_image(args.image, args.size)
    checkpoints = [c.strip() for c in args.checkpoints.split(",") if c.strip()]
    if not checkpoints:
        raise UserError("--checkpoints needs at least one of untrained, trained or a path")
    layers = "stops" if args.layers == "stops" else [s.strip() for s in args.layers.split(",") if s.strip()]
    device = resolve_device(args.device)
    bar = _Bar(args.quiet, 1, "curve")
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
        rows = list(iter_curve(args.model, image, checkpoints, layers, args.seeds, preset, device,
                               args.init_seed, on_stop, on_snapshot, every=max(1, preset.iters // 20),
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


def _square_side(path: str) -> int:
    """The side of the centred square `load_image` crops from this image (its width when square)."""
    from PIL import Image

    from core.images import load_image

    try:
        with Image.open(path) as img:
            return min(img.size)  # EXIF rotation swaps width and height, not the shorter side
    except Exception:  # missing, unreadable, refused: load_image says which, in one line
        pass
    load_image(path, 1)
    raise UserError(f"could not read the size of image {path!r}")


SCORE_MIN_SIZE = 3  # SSIM needs a window of at least 3 x 3 pixels


def cmd_score(args) -> None:
    from core.engine import start_images
    from core.images import MAX_PIXELS, load_image
    from core.metrics import score
    from core.presets import get_preset

    size = args.size or _square_side(args.reconstruction)
    largest = int(MAX_PIXELS ** 0.5)
    if not SCORE_MIN_SIZE <= size <= largest:
        where = "--size" if args.size else "the reconstruction's size"
        raise UserError(f"{where} {size} px cannot be scored: use --size between {SCORE_MIN_SIZE} and {largest}")
    image = load_image(args.image, size)
    reconstruction = load_image(args.reconstruction, size)
    if args.start:
        start, start_name = load_image(args.start, size), str(args.start)
    else:
        start = start_images([0], size, get_preset("default"))[0].clamp(0, 1)
        start_name = "default preset a_0, seed 0"
    out = score(reconstruction, image, start)
    out.update(size=size, start=start_name)
    print(json.dumps(out))


def cmd_download(args) -> None:
    from core.checkpoints import download_trained, trained_status

    status = trained_status(args.model)
    if status["cached"]:
        print(f"{args.model}: already at {status['path']}")
        return
    bar = _Bar(False, 1, f"download {args.model}", unit="B")

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


COMMANDS = {"models": cmd_models, "presets": cmd_presets, "invert": cmd_invert, "curve": cmd_curve,
            "score": cmd_score, "download": cmd_download}
COMMANDS.update({name: module.run for name, module in zip(_EXTRA_NAMES, _EXTRA)})


def main(argv=None) -> int:
    with warnings.catch_warnings():
        if not os.environ.get("CORE_DEBUG"):
            warnings.simplefilter("ignore")  # library warnings would surround the one-line error
        return _main(argv)


def _main(argv) -> int:
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not bad input: still one line, but a different exit code
        if os.environ.get("CORE_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
              "rerun with CORE_DEBUG=1 for a traceback", file=sys.stderr)
        return 1
    return 0
