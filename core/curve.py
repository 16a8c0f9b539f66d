"""The clarity curve: invert one image at every depth stop, for each checkpoint.

Rows arrive stop by stop (`iter_curve`), so a UI or a terminal can show progress and partial
results; `clarity_curve` collects them. Each checkpoint's model is loaded once and reused for
all of its stops.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from core.checkpoints import LoadedModel, load_model
from core.devices import resolve_device
from core.encoder import depth_stops, forward_position, resolve_layer
from core.engine import InversionResult, Snapshot
from core.errors import UserError
from core.presets import Preset
from core.speed import SpeedOptions, activation_bytes, device_memory_gb, plan_chunks, run_resilient, seed_step_bytes


@dataclass
class CurveRow:
    checkpoint: str
    layer: str
    depth: float  # index of the stop among the model's depth stops; other graph nodes sit at +0.5 after one
    label: str
    result: InversionResult

    def to_json(self) -> dict:
        from core.verdict import status

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
            "input_l2_mean": statistics.fmean(m["input_l2"]),
            "embedding_l2_mean": statistics.fmean(m["embedding_l2"]),
            "reference_l2": m["reference_l2"], "shift_input_l2": m["shift_input_l2"],
            "seed_spread_input": m["seed_spread_input"], "seed_spread_embedding": m["seed_spread_embedding"],
            "signal_rms": (m.get("signal") or {}).get("rms"),
            "signal_flat_fraction": (m.get("signal") or {}).get("flat_fraction"),
            "seconds": round(self.result.seconds, 4),
        }


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


def iter_curve(arch: str, image: torch.Tensor, checkpoints: Sequence[str], layers=None,
               seeds: Sequence[int] = (0, 1), preset: Preset | None = None, device: str = "auto",
               init_seed: int = 0, on_stop: Callable[[int, int, str, str], None] | None = None,
               on_snapshot: Callable[[Snapshot], None] | None = None, every: int = 10,
               speed: SpeedOptions | None = None, memory_gb: float | None = None,
               on_note: Callable[[str], None] | None = None) -> Iterator[CurveRow]:
    """Yield one row per (checkpoint, stop). `on_stop(done, total, checkpoint, layer)` fires before each.

    On a GPU (or with `memory_gb`) each stop's seeds are split into batches that fit the memory
    (estimated from the activations); an out-of-memory error halves the batch and retries, and
    `on_note` is told."""
    from core.presets import DEFAULT

    preset = preset or DEFAULT
    size = int(image.shape[-1])
    if not checkpoints:
        raise UserError("a clarity curve needs at least one checkpoint (untrained, trained or a path)")
    dev = resolve_device(device)
    models = [load_model(arch, ck, size, init_seed) for ck in checkpoints]  # fail early, before any run
    plan = resolve_layers(models[0], layers)
    total, done = len(plan) * len(models), 0
    memory_gb = memory_gb or device_memory_gb(dev)
    per_batch = {node: len(seeds) for _, node, _ in plan}
    if memory_gb:
        acts = activation_bytes(models[0], [node for _, node, _ in plan], size)
        autocast = bool(speed and speed.autocast_dtype)
        wbytes = sum(p.numel() * 4 for p in models[0].module.parameters())
        per_batch = {n: plan_chunks(seed_step_bytes(a, size, autocast), len(seeds), memory_gb, wbytes).seeds_per_batch
                     for n, a in acts.items()}
    for model in models:
        for depth, node, label in plan:
            if on_stop:
                on_stop(done, total, model.checkpoint, node)
            result, _ = run_resilient(model, node, image, seeds, preset, dev, speed=speed, max_batch=per_batch[node],
                                      on_snapshot=on_snapshot, on_note=on_note, every=every)
            done += 1
            yield CurveRow(model.checkpoint, node, depth, label, result)
    if on_stop:
        on_stop(done, total, "", "")


def clarity_curve(*args, **kwargs) -> list[CurveRow]:
    return list(iter_curve(*args, **kwargs))
