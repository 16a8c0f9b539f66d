"""What every subcommand shares: the argument parser that fails in one line, argument types, the run options,
the preset built from them, and the terminal progress bar.
"""

from __future__ import annotations

import argparse
import sys

from core.errors import UserError
from core.jobs.settings import SETTINGS, RunSettings
from core.recipe.presets import PRESETS
from core.studies.curve import BATCH_STOPS


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2, no usage dump
        raise UserError(message)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def typed(name: str):
    """The argparse type of the declared setting `name` (`core.jobs.settings.SETTINGS`): its type and limits."""
    declared = SETTINGS[name]

    def parse(text: str):
        try:
            return declared.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name
    return parse


def seed_list(text: str) -> list[int]:
    """`4` means seeds 0..3; `3,7,11` lists them (at most `SETTINGS["seeds"].hi` either way)."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
            SETTINGS["seeds"].check(len(seeds))
            return seeds
        return list(range(SETTINGS["seeds"].parse(text)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--seeds takes a count (e.g. 4) or a list (e.g. 0,5,9) of "
                                         f"{SETTINGS['seeds'].range_text()} seeds, got {text!r}") from exc


def steps_list(text: str) -> list[int]:
    """`100` or `100,50`: the steps of each continuation."""
    try:
        return [positive_int(s.strip()) for s in text.split(",") if s.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"--continue takes positive step counts (e.g. 100 or 100,50), got {text!r}")


def preset_names() -> list[str]:
    return list(PRESETS)


def run_options(p: argparse.ArgumentParser, out_help: str = "output folder", cache: bool = True) -> None:
    """The options every inverting subcommand shares: budget, early stop, preset, lr, device, init seed, output,
    progress bar and (with `cache`) --no-cache: `invert`, `curve`, `compare`, `manifold`, and `sweep` and
    `findings` without --no-cache (they are built on the cache: a rerun makes only what it lacks)."""
    p.add_argument("--iters", type=typed("iters"), default=SETTINGS["iters"].default,
                   help="step budget (default: the preset's); a run may stop sooner, see --no-early-stop")
    p.add_argument("--no-early-stop", action="store_true",
                   help="run the whole --iters budget instead of stopping once every seed has converged")
    p.add_argument("--preset", default=SETTINGS["preset"].default,
                   help=f"{', '.join(preset_names())} (default: default; see `presets`)")
    p.add_argument("--lr", type=typed("lr"), default=SETTINGS["lr"].default,
                   help="starting learning rate (overrides the preset's; 0: the preset's own)")
    p.add_argument("--device", default=SETTINGS["device"].default, help=SETTINGS["device"].help)
    p.add_argument("--init-seed", type=typed("init_seed"), default=SETTINGS["init_seed"].default,
                   help="seed of the untrained initialisation")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if cache:
        p.add_argument("--no-cache", action="store_true",
                       help="compute even when the run cache ($INVERSION_CACHE_DIR, else .cache/runs) holds this "
                            "run, and do not store it")


def batch_option(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    """--batch-stops, for the subcommands that run many stops of one model (`curve`, `compare`; `sweep` and
    `findings` with `sweep=True`, whose auto also batches on the CPU at small sizes: `core.studies.curve.batched`)."""
    auto = "on for CUDA and, up to 64 px, on the CPU" if sweep else "on for CUDA"
    p.add_argument("--batch-stops", choices=BATCH_STOPS, default="auto",
                   help="run a checkpoint's stops as one optimisation, every stop's seeds in one batch "
                        f"(on), or one stop after another (off); auto: {auto} (default auto)")


MODEL_HELP = ("architecture: a curated name (see `models`), torchvision:NAME or timm:NAME (any classifier of "
              "either library: `models --all`)")
MODEL_FILE_HELP = ("your own network: PATH.py:FUNCTION, a function returning a torch.nn.Module (it may take the image "
                   "size); this runs the file's code. The run cache knows it by the file's hash: a module it imports "
                   "is not hashed, so after changing one, change the file too (or use --no-cache)")


def model_file_option(p: argparse.ArgumentParser) -> None:
    """--model-file PATH.py:FUNCTION: a user's network instead of (or, for several models, beside) --model(s)."""
    p.add_argument("--model-file", default=None, metavar="PATH.py:FUNCTION", help=MODEL_FILE_HELP)


def use_model_file(args) -> None:
    """Register `--model-file`'s network (`core.models.custom.file_architecture`) and put its name where the
    subcommand reads its model: `args.model`, or appended to the comma list `args.models`."""
    spec = getattr(args, "model_file", None)
    if hasattr(args, "models"):
        if spec:
            from core.models.custom import file_architecture

            name = file_architecture(spec).name
            args.models = ",".join([m for m in (args.models or "").split(",") if m.strip()] + [name])
        elif not args.models:
            raise UserError("give --models (a comma list) or --model-file PATH.py:FUNCTION")
        return
    if not hasattr(args, "model"):
        return
    if spec:
        if args.model:
            raise UserError("give --model or --model-file, not both")
        from core.models.custom import file_architecture

        args.model = file_architecture(spec).name
    elif not args.model and getattr(args, "model_required", True):
        raise UserError("give --model NAME (see `python -m core models`) or --model-file PATH.py:FUNCTION")


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help=MODEL_HELP)
    model_file_option(p)
    p.add_argument("--image", required=True, help="path to an image (PNG, JPEG, GIF, TIFF, BMP, WebP)")
    size_option(p, SETTINGS["size"].default)
    seeds_option(p)
    run_options(p)


def size_option(p: argparse.ArgumentParser, default: int | None, help: str | None = None) -> None:
    p.add_argument("--size", type=typed("size"), default=default,
                   help=help or f"square input size in px, {SETTINGS['size'].range_text()} (default {default})")


def seeds_option(p: argparse.ArgumentParser, help: str | None = None) -> None:
    n = SETTINGS["seeds"].default
    p.add_argument("--seeds", type=seed_list, default=list(range(n)),
                   help=help or f"seed count or comma list (default {n})")


def settings_of(args, **more) -> RunSettings:
    """The `RunSettings` of a subcommand's run options (UserError for a value out of its limits)."""
    return RunSettings(preset=args.preset, iters=args.iters, lr=args.lr, early_stop=not args.no_early_stop,
                       init_seed=args.init_seed, device=args.device, **more)


def preset_of(args):
    return settings_of(args).recipe()


class ProgressBar:
    """Every command's terminal progress bar (tqdm on stderr; nothing with --quiet): steps fed from snapshots
    (`update`), or runs and bytes counted (`to`)."""

    def __init__(self, quiet: bool, total: int, desc: str = "", unit: str = "step"):
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc or None, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                            leave=False, dynamic_ncols=True)

    def update(self, snap, offset: int = 0):
        """A snapshot of a run: its step (after `offset` steps of earlier runs) and its mean m_g."""
        if self.bar:
            self.bar.set_postfix(m_g=f"{sum(snap.embedding_l2) / len(snap.embedding_l2):.3g}", refresh=False)
            self.bar.update(offset + snap.step - self.bar.n)

    def to(self, done: int, what: str = "", desc: str | None = None):
        """`done` of the total (runs, bytes), with what runs now beside it."""
        if self.bar:
            if desc is not None:
                self.bar.set_description(desc or None, refresh=False)
            self.bar.set_postfix_str(what, refresh=False)
            self.bar.update(max(0, done - self.bar.n))

    def close(self):
        if self.bar:
            self.bar.close()


def say_forecast(args, forecast_of, seeds: int, preset, device, together: bool = False, what: str = "") -> None:
    """Print on stderr how long the command's runs take here now (`core.jobs.time_text`), before they run.

    Args:
        args: the command's arguments (`--quiet` skips the forecast and its few measured steps; `--no-cache`
            counts every run as to be made).
        forecast_of: `(measure_at, is_cached) -> PlanTime` (e.g. `core.jobs.plan_time` or
            `core.studies.sweep_time` on the command's plan).
        seeds, preset, device: the runs' seed count, recipe and device.
        together: a model's stops run as one batch.
        what: words after the count of runs.
    """
    if getattr(args, "quiet", False):
        return
    from core.jobs.forecast import Probe, time_text
    from core.jobs.pipeline import default_cache

    cache = None if getattr(args, "no_cache", False) else default_cache()
    try:
        forecast = forecast_of(Probe(seeds, preset, device),
                               lambda spec: cache is not None and cache.has(spec.key()))
    except Exception:  # noqa: BLE001 - a forecast is a nicety: the run itself reports what is wrong
        return
    print(time_text(forecast, preset, device, together, what), file=sys.stderr, flush=True)

