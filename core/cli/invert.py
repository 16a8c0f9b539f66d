"""`python -m core invert` (one layer, several seeds) and `python -m core score` (any reconstruction against
an image).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.args import ProgressBar, preset_of
from core.engine.loop import start_images
from core.engine.run_reading import reading
from core.errors import UserError
from core.images import MAX_PIXELS, load_image
from core.jobs.pipeline import Callbacks, run
from core.jobs.spec import RunSpec
from core.measures import MEASURES, score
from core.metrics import psnr
from core.models.checkpoints import load_model
from core.models.registry import get_architecture
from core.recipe.presets import get_preset
from core.report.files import write_inversion


def _stop_text(reason: str | None, early_stop: bool, steps: int, budget: int) -> str:
    if reason == "converged":
        rule = "every seed converged (m_g <= m_r) and its SSIM to the image settled"
        return f"stopped early: {rule}" if steps < budget else f"the convergence rule was met at the last step: {rule}"
    if reason == "budget":
        return ("ran the whole budget (early stop off)" if not early_stop
                else "ran the whole budget (the convergence rule was not met sooner)")
    return "stopped before the end"


def cmd_invert(args) -> None:
    preset = preset_of(args)
    get_architecture(args.model).check_size(args.size)  # before any work on the image
    image = load_image(args.image, args.size)
    model = load_model(args.model, args.checkpoint, args.size, args.init_seed)
    spec = RunSpec.of(model, args.layer, image, args.seeds, preset, args.device)
    for steps in args.cont:
        spec = spec.then(steps)
    bar = ProgressBar(args.quiet, spec.steps, f"{args.model}:{args.layer}")
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
    others = ", ".join(f"{MEASURES[n][2].split(' (')[0]} {m[n]:.3f}" for n in MEASURES if n != m["clarity_measure"])
    print(f"{args.model} {args.checkpoint} {args.layer}: clarity {m['clarity']:.3f} "
          f"({MEASURES[m['clarity_measure']][2].split(' (')[0]}; {others}), "
          f"m_g {sum(m['embedding_l2']) / len(m['embedding_l2']):.4g} vs m_r {m['reference_l2']:.4g}, "
          f"{took} on {result.device} -> {args.out}")
    print(f"  {reading(result)}")
    if spec.continued:
        print(f"  steps {result.steps_done}: the {preset.iters}-step run, then continued by "
              f"{' + '.join(map(str, spec.continued))}")
    else:
        stop = _stop_text(m.get("stop_reason"), preset.early_stop, result.steps_done, preset.iters)
        print(f"  steps {result.steps_done} of {preset.iters}: {stop}")


def _square_side(path: str) -> int:
    """The side of the centred square `load_image` crops from this image (its width when square)."""
    from PIL import Image


    try:
        with Image.open(path) as img:
            return min(img.size)  # EXIF rotation swaps width and height, not the shorter side
    except Exception:  # missing, unreadable, refused: load_image says which, in one line
        pass
    load_image(path, 1)
    raise UserError(f"could not read the size of image {path!r}")


SCORE_MIN_SIZE = 3  # SSIM needs a window of at least 3 x 3 pixels


def cmd_score(args) -> None:
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
    out = score(reconstruction, image, start, args.model or "")
    out.update(psnr=psnr(reconstruction, image), input_l2=float((reconstruction - image).norm()), size=size,
               start=start_name)
    print(json.dumps(out))
