"""The runs findings 5 and 6 need, as rows their verdicts read (`core.studies.verdicts.finding_5`, `finding_6`).

Findings 1-4 and 7 read the clarity of a sweep over every depth stop (`core.studies.findings`). Finding 5 asks
what a model's deep layers do to inputs that are not natural images, so it inverts the manifold study's
generated inputs (`core.studies.manifold`) at the model's deep stops with both checkpoints; finding 6 is about
fully connected layers, so it runs the invertibility lab's MLPs (`core.studies.lab`) on the report's images made
grey at 16 px. Both go through `core.jobs.pipeline.run`, the one run pipeline, so they are cached like every run:
a rerun reads them back at once.

    rows = manifold_rows("efficientnet_lite0", 64, seeds=[0, 1], preset=get_preset("default"))
    finding_5(rows, "efficientnet_lite0")
    finding_6(lab_rows(["assets/chelsea.png", "assets/coffee.png"], seeds=[0, 1]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch

from core.engine.speed import SpeedOptions
from core.engine.run_reading import status
from core.images import load_image
from core.jobs.pipeline import Callbacks
from core.models.checkpoints import load_model
from core.models.encoder import depth_stops
from core.recipe.presets import Preset
from core.studies.curve import relative_depth
from core.studies.deep import deep_stops
from core.studies.lab import LAB_ITERS, LAB_SIZE, iter_mlp_lab
from core.studies.manifold import SLOPE, finite_mean, iter_manifold, make_input, spectral_slope
from core.studies.verdicts import UNIQUE_CLARITY

FIVE_INPUTS = ("noise", "gaussian", "disc", "stripes", "checker")  # the manifold's kinds with a spectral slope
SIX_WIDTHS = (0.5, 1.0, 2.0, 4.0)  # hidden width / input width: two below the input's, two at or above 2x
SIX_ACTIVATIONS = ("linear", "relu")

Progress = Callable[[int, int, str], None]  # (runs done, runs in all, what runs next)


def _slopes(images: torch.Tensor) -> dict:
    x = images.detach().float().cpu().clamp(0, 1)
    x = x.unsqueeze(0) if x.dim() == 3 else x
    return {SLOPE.name: [spectral_slope(im) for im in x]}


def manifold_rows(arch: str, size: int, seeds: Sequence[int], preset: Preset, device: str = "cpu",
                  init_seed: int = 0, inputs: Sequence[str] = FIVE_INPUTS, load=None, cache=None,
                  progress: Progress | None = None, threads: int | None = None) -> list[dict]:
    """Finding 5's rows: each generated input inverted at `arch`'s deep stops, untrained and trained.

    A row's `naturalness` is the spectral slope's score, -|slope - 2| (natural images sit near 2), of the
    seed-mean slope of the reconstructions: it needs no trained network, so it does not favour one checkpoint.

    Args:
        arch: the architecture.
        size: image side in px.
        seeds, preset, device, init_seed: as for `core.jobs.spec.RunSpec.of`.
        inputs: manifold kinds (`core.studies.manifold.KINDS`; "flat" has no slope).
        load: `load(arch, checkpoint, size, init_seed)` (default `load_model`; the app passes its cached one).
        cache: the run cache (default: the project's).
        progress: `progress(done, total, what)` before each run and once at the end.
        threads: CPU threads for every run (the sweep's: one report, one count; None: a timing probe picks). At a
            head stop, where many inputs match, the reconstruction follows rounding: with the probe picking run by
            run, Lite0's finding 5 value was -0.29 in one report and -0.31 in another (BENCHMARKS.md).

    Returns:
        One dict per (checkpoint, layer, input): model, checkpoint, layer, label, relative_depth, input,
        input_kind, naturalness, spectral_slope, input_spectral_slope, clarity, converged, status, steps_done,
        seconds, cached.
    """
    load = load or load_model
    models = [load(arch, ck, size, init_seed) for ck in ("untrained", "trained")]
    n_stops = len(depth_stops(models[0]))
    tensors = {k: make_input(k, size, init_seed) for k in inputs}

    def on_stop(done, total, ck, layer):
        if progress:
            progress(done, total, f"{ck} {layer} {list(tensors)[done % len(tensors)]}" if layer else "")

    rows, speed = [], SpeedOptions.with_threads(device, threads)
    for r in iter_manifold(arch, tensors, ["untrained", "trained"], deep_stops(models[0]), seeds=list(seeds),
                           preset=preset, device=device, init_seed=init_seed, describer=_slopes, models=models,
                           cache=cache, callbacks=Callbacks(next_run=on_stop), speed=speed):
        m = r.result.metrics
        slope = finite_mean(r.descriptors.get(SLOPE.name) or [])
        rows.append({"model": arch, "checkpoint": r.checkpoint, "layer": r.layer, "label": r.label,
                     "relative_depth": relative_depth(r.depth, n_stops), "input": r.input, "input_kind": r.input,
                     "naturalness": SLOPE.naturalness(slope), "spectral_slope": slope,
                     "input_spectral_slope": r.input_descriptors.get(SLOPE.name), "clarity": m["clarity"],
                     "converged": all(m["converged"]), "status": status(m), "steps_done": r.result.steps_done,
                     "seconds": round(r.result.seconds, 3), "cached": r.cached})
    return rows


def lab_rows(images: Sequence[str | Path], seeds: Sequence[int], device: str = "cpu", init_seed: int = 0,
             widths: Sequence[float] = SIX_WIDTHS, activations: Sequence[str] = SIX_ACTIVATIONS,
             iters: int = LAB_ITERS, cache=None, progress: Progress | None = None,
             threads: int | None = None) -> list[dict]:
    """Finding 6's rows: the lab's one-hidden-layer MLPs inverted on each image made grey at 16 px.

    A configuration is `unique` when every seed recovers the image (its lowest clarity >= 0.95): seeds that land
    on different inputs with the embedding matched are the non-uniqueness the finding is about. `rank_deficient`
    (the Jacobian at the image has rank below the 256 inputs) proves non-uniqueness without the optimiser
    (`verdicts.finding_6`).

    Args:
        images: image files (the report's).
        seeds, device, init_seed, cache: as for `iter_mlp_lab`.
        widths, activations, iters: the lab's settings (widths as multiples of the 256 inputs).
        progress: `progress(done, total, what)` before each run and once at the end.
        threads: CPU threads for every run (as for `manifold_rows`).

    Returns:
        One dict per (image, configuration): image, width_ratio, activation, unique, clarity, clarity_min,
        jacobian_rank, rank_fraction, input_dim, rank_deficient, converged, status, steps_done, cached.
    """
    rows, total = [], len(images) * len(widths) * len(activations)
    for i, path in enumerate(images):
        name = Path(path).stem

        def on_stop(done, n, cfg, layer, i=i, name=name):
            if progress and layer:
                progress(i * n + done, total, f"{name} {cfg}")

        image = load_image(path, LAB_SIZE)
        for r in iter_mlp_lab(image, widths, activations, (1,), seeds=list(seeds), iters=iters, init_seed=init_seed,
                              device=device, cache=cache, callbacks=Callbacks(next_run=on_stop),
                              speed=SpeedOptions.with_threads(device, threads)):
            d = r.to_json()
            rows.append({"image": name, "width_ratio": d["width"], "activation": d["activation"],
                         "unique": d["clarity_min"] >= UNIQUE_CLARITY, "clarity": d["clarity"],
                         "clarity_min": d["clarity_min"], "jacobian_rank": d["jacobian_rank"],
                         "rank_fraction": d["rank_fraction"], "input_dim": d["input_dim"],
                         "rank_deficient": d["jacobian_rank"] < d["input_dim"], "converged": d["converged"],
                         "status": status(r.result.metrics), "steps_done": d["steps"], "cached": d["cached"]})
    if progress:
        progress(total, total, "")
    return rows
