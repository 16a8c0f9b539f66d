"""The clarity curve: invert one image at every depth stop, for each checkpoint.

Rows arrive stop by stop (`iter_curve`), so a UI or a terminal can show progress and partial
results; `clarity_curve` collects them. Each checkpoint's model is loaded once and reused for
all of its stops; every stop is one `core.jobs.pipeline.run` (cache, queue, memory plan, store), so the
CLI and the app share finished stops.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from core.devices import resolve_device
from core.engine.result import InversionResult
from core.engine.speed import SpeedOptions
from core.engine.run_reading import status
from core.errors import UserError
from core.jobs.pipeline import Callbacks, run, run_stops
from core.jobs.spec import RunSpec
from core.models.checkpoints import LoadedModel, load_model
from core.measures import MEASURES
from core.models.encoder import depth_stops, forward_position, resolve_layer
from core.recipe.presets import DEFAULT, Preset


def _measure_cols(m, name: str) -> dict:
    """A measure's mean and its seeds' min and max (None for a result stored before the panel)."""
    per = m.get(f"{name}_per_seed")
    return {name: m.get(name), f"{name}_min": min(per) if per else None, f"{name}_max": max(per) if per else None}


@dataclass
class CurveRow:
    checkpoint: str
    layer: str
    depth: float  # index of the stop among the model's depth stops; other graph nodes sit at +0.5 after one
    label: str
    result: InversionResult
    cached: bool = False  # came from the run cache

    def to_json(self) -> dict:
        m = self.result.metrics
        ssim = m["ssim"]
        return {
            "checkpoint": self.checkpoint, "layer": self.layer, "depth": self.depth, "label": self.label,
            "clarity": m["clarity"],
            "status": status(m), "converged": all(m["converged"]), "converged_seeds": sum(m["converged"]),
            "degenerate": m["degenerate"],
            "mg_over_mr_max": None if m["mg_over_mr"] is None else max(m["mg_over_mr"]),
            "steps_done": self.result.steps_done, "stop_reason": m.get("stop_reason"),
            "ssim_mean": statistics.fmean(ssim), "ssim_std": statistics.pstdev(ssim),
            "psnr_mean": statistics.fmean(m["psnr"]),
            "clarity_min": min(m["clarity_per_seed"]), "clarity_max": max(m["clarity_per_seed"]),
            "clarity_measure": m.get("clarity_measure"), "judge": m.get("judge"),
            **{k: v for name in MEASURES for k, v in _measure_cols(m, name).items()},
            "input_l2_mean": statistics.fmean(m["input_l2"]),
            "embedding_l2_mean": statistics.fmean(m["embedding_l2"]),
            "reference_l2": m["reference_l2"], "shift_input_l2": m["shift_input_l2"],
            "seed_spread_input": m["seed_spread_input"], "seed_spread_embedding": m["seed_spread_embedding"],
            "signal_rms": (m.get("signal") or {}).get("rms"),
            "signal_flat_fraction": (m.get("signal") or {}).get("flat_fraction"),
            "seconds": round(self.result.seconds, 4),
        }


def relative_depth(depth: float, n_stops: int) -> float:
    """Where a row sits between the input (0) and the logits (1), so models of any depth share one axis.

    Args:
        depth: the row's stop index (`resolve_layers`; other graph nodes sit at +0.5).
        n_stops: the model's number of depth stops (its last stop is its logits).

    Returns:
        (depth + 1) / n_stops, clipped to [0, 1].
    """
    if n_stops < 1:
        raise ValueError(f"a model needs at least one depth stop (got {n_stops})")
    return min(1.0, max(0.0, (float(depth) + 1.0) / n_stops))


def resolve_layers(model: LoadedModel, layers: Sequence[str] | str | None) -> list[tuple[float, str, str]]:
    """(depth, node, label) for `layers` ("stops"/None = every stop), in forward order.

    A depth stop's depth is its index among the stops; any other graph node sits half-way after
    the last stop that runs before it (Lite0 `blocks.1` -> between blocks.1.1 and blocks.2.0)."""
    stops = depth_stops(model)
    index = {s.node: i for i, s in enumerate(stops)}
    if layers is None or layers == "stops":
        return [(i, s.node, s.label) for i, s in enumerate(stops)]
    stop_pos = [(forward_position(model, s.node), i) for i, s in enumerate(stops)]
    chosen = []
    for name in layers:
        stop = resolve_layer(model, name)
        if stop.node in index:
            depth: float = index[stop.node]
        else:
            pos = forward_position(model, stop.node)
            before = [i for p, i in stop_pos if 0 <= p <= pos]
            depth = (max(before) + 0.5) if before else -0.5
        chosen.append((depth, stop.node, stop.label))
    return sorted(chosen, key=lambda t: t[0])


def layer_depth(model: LoadedModel, layer: str) -> float | None:
    """Where `layer` sits between the input (0) and the logits (1) among `model`'s depth stops (`relative_depth`),
    or None when the model has no stops or the layer does not resolve."""
    try:
        ((depth, _, _),) = resolve_layers(model, [layer])
        return relative_depth(depth, len(depth_stops(model)))
    except Exception:  # noqa: BLE001 - an unknown depth only leaves the claim unsaid
        return None


def iter_curve(arch: str, image: torch.Tensor, checkpoints: Sequence[str], layers=None, *,
               seeds: Sequence[int] = (0, 1), preset: Preset | None = None, device: str = "auto", init_seed: int = 0,
               callbacks: Callbacks | None = None, every: int = 10, speed: SpeedOptions | None = None,
               models: Sequence[LoadedModel] | None = None, cache=None, use_cache: bool = True,
               batch_stops: str = "auto") -> Iterator[CurveRow]:
    """Yield one row per (checkpoint, stop), each run through the one pipeline (`core.jobs.pipeline.run`).

    Args:
        arch: architecture name.
        image: (3, N, N) in [0, 1].
        checkpoints: "untrained", "trained" or state-dict paths (each loaded once, before any run).
        layers: "stops"/None for every depth stop, or node names.
        seeds, preset, device, init_seed, speed: as for `core.jobs.spec.RunSpec.of` / `Inversion`.
        callbacks: the hooks (`core.jobs.pipeline.Callbacks`): `stop(done, total, checkpoint, layer)` before each
            run and once at the end; the others are passed to each run, every `every` steps.
        models: already loaded models, one per checkpoint (the app's cached ones; `checkpoints` then
            only names them).
        cache, use_cache: as for `core.jobs.pipeline.run` (finished stops come from the cache).
        batch_stops: "on" runs a checkpoint's stops as one optimisation (`core.jobs.pipeline.run_stops`; its rows
            arrive together when the last stop finishes), "off" one stop after another, "auto" (default)
            on for CUDA, where one large batch beats many small ones; off on the CPU, where a step
            is already compute-bound and rows arriving one by one show progress.

    Returns:
        An iterator of `CurveRow`s, checkpoint by checkpoint, stops in forward order.

    Example:
        >>> rows = clarity_curve("resnet18", image, ["untrained"], ["layer1", "layer3"], seeds=[0, 1])
        >>> [(r.layer, r.result.metrics["clarity"]) for r in rows]
    """
    preset = preset or DEFAULT
    size = int(image.shape[-1])
    if not checkpoints:
        raise UserError("a clarity curve needs at least one checkpoint (untrained, trained or a path)")
    dev = resolve_device(device)
    if models is None:
        models = [load_model(arch, ck, size, init_seed) for ck in checkpoints]  # fail early, before any run
    plan = resolve_layers(models[0], layers)
    total, done = len(plan) * len(models), 0
    cb = callbacks or Callbacks()
    on_stop = cb.next_run
    together = batched(batch_stops, dev) and len(plan) > 1
    for ck, model in zip(checkpoints, models):
        if together:
            if on_stop:
                on_stop(done, total, ck, f"{len(plan)} stops at once")
            specs = [RunSpec.of(model, node, image, seeds, preset, dev, checkpoint=ck) for _, node, _ in plan]
            jobs = run_stops(specs, image, model, cache=cache, use_cache=use_cache, callbacks=cb, every=every,
                             speed=speed)
            for (depth, node, label), job in zip(plan, jobs):
                done += 1
                yield CurveRow(ck, node, depth, label, job.result, cached=job.cached)
            continue
        for depth, node, label in plan:
            if on_stop:
                on_stop(done, total, ck, node)
            spec = RunSpec.of(model, node, image, seeds, preset, dev, checkpoint=ck)
            job = run(spec, image, model, cache=cache, use_cache=use_cache, callbacks=cb, every=every, speed=speed)
            done += 1
            yield CurveRow(ck, node, depth, label, job.result, cached=job.cached)
    if on_stop:
        on_stop(done, total, "", "")


BATCH_STOPS = ("auto", "on", "off")


# A sweep (no live rows to show) batches its stops on the CPU too up to this size: on this 2-core CPU a 32-64 px
# curve finished 2.5x sooner as one batch with the same numbers, a 128 px one only 1.08x (BENCHMARKS.md).
CPU_BATCH_MAX_PX = 64


def batched(batch_stops: str, device: torch.device, sweep_size: int | None = None) -> bool:
    """Whether the stops of one checkpoint and image run as one batch: "on", "off", or "auto".

    "auto" is on for CUDA; for a sweep (`sweep_size` given: its rows are not shown live one by one) also on the
    CPU at sizes up to `CPU_BATCH_MAX_PX`, where the batch is measured 2.5x sooner with the same results.
    """
    if batch_stops not in BATCH_STOPS:
        raise UserError(f"batch_stops must be one of {', '.join(BATCH_STOPS)} (got {batch_stops!r})")
    if batch_stops != "auto":
        return batch_stops == "on"
    return device.type == "cuda" or (device.type == "cpu" and sweep_size is not None
                                     and sweep_size <= CPU_BATCH_MAX_PX)


def clarity_curve(*args, **kwargs) -> list[CurveRow]:
    """Every row of `iter_curve` (same arguments) as a list."""
    return list(iter_curve(*args, **kwargs))
