"""One task of a sweep and how it runs, shared by both backends (`core.studies.sweep` runs tasks in this
process, `core.studies.sweep_ray` in Ray workers), so neither backend imports the other's driver.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.devices import resolve_device
from core.engine.speed import SpeedOptions
from core.engine.run_reading import status
from core.errors import UserError
from core.images import load_image
from core.jobs.pipeline import run, run_stops
from core.jobs.spec import RunSpec
from core.measures import MEASURES
from core.studies.curve import batched


@dataclass(frozen=True)
class SweepImage:
    """An image of a sweep, hashed once so results name the exact bytes they came from."""

    name: str  # the path relative to the folder (or the sample's name): unique within a sweep
    path: str
    sha256: str  # of the file's bytes


@dataclass(frozen=True)
class Task:
    """One run of a sweep: an image and a spec, with where it sits on the depth axis."""

    image: SweepImage
    spec: RunSpec
    label: str
    depth: float
    relative_depth: float

    @property
    def group(self) -> tuple[str, str]:
        return self.spec.model, self.spec.checkpoint


# --------------------------------------------------------------------------- running one


def worker_name() -> str:
    """host:pid, so the ledger says which process (local or a Ray worker) made each run."""
    return f"{socket.gethostname()}:{os.getpid()}"


def row_of(task: Task, result=None, error: str | None = None, seconds: float | None = None,
           device: str | None = None, worker: str = "") -> dict:
    """One parquet row: the task's coordinates and, when it finished, its numbers (NaN where it failed)."""
    base = {"image": task.image.name, "image_sha256": task.image.sha256, "model": task.spec.model,
            "checkpoint": task.spec.checkpoint, "layer": task.spec.layer, "label": task.label,
            "depth": float(task.depth), "relative_depth": task.relative_depth, "key": task.spec.key(),
            "worker": worker, "error": error}
    if result is None:
        nan = float("nan")
        return {**base, "clarity": nan, **{name: nan for name in MEASURES}, "ssim_mean": nan, "psnr_mean": nan, "input_l2_mean": nan,
                "embedding_l2_mean": nan, "reference_l2": nan, "shift_input_l2": nan, "seed_spread_input": nan,
                "converged": False, "status": "error",
                "steps_done": 0, "seconds": float(seconds or 0.0), "device": device or ""}
    m = result.metrics

    def mean(v):
        return float(np.mean(v))

    return {**base, "clarity": float(m["clarity"]), **{name: _num(m.get(name)) for name in MEASURES}, "ssim_mean": mean(m["ssim"]), "psnr_mean": mean(m["psnr"]),
            "input_l2_mean": mean(m["input_l2"]), "embedding_l2_mean": mean(m["embedding_l2"]),
            "reference_l2": float(m["reference_l2"]), "converged": bool(all(m["converged"])), "status": status(m),
            # what the uniqueness reading needs: the near-copy's pixel distance, how far apart the seeds' answers are
            "shift_input_l2": _num(m.shift_input_l2), "seed_spread_input": _num(m.seed_spread_input),
            "steps_done": int(result.steps_done), "seconds": float(result.seconds if seconds is None else seconds),
            "device": device or result.device}


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def execute(task: Task, model, threads: int = 1) -> tuple[object, str | None]:
    """Run one task through `core.jobs.pipeline.run` without the cache (the caller stores it), on `threads` CPU threads:
    (result, None) or (None, error text) for a run that fails with a user error; other errors propagate."""
    speed = SpeedOptions.with_threads(task.spec.device, threads)  # equal numbers on every backend
    try:
        image = load_image(task.image.path, task.spec.size)
        return run(task.spec, image, model, use_cache=False, speed=speed).result, None
    except UserError as exc:
        return None, str(exc)


def by_image(tasks: Sequence[Task]) -> list[list[Task]]:
    """The tasks in groups that can run as one optimisation: one model, checkpoint and image each, stops in
    forward order (the plan lists layers before images, so a group's tasks are spread over the plan)."""
    groups: dict[tuple, list[Task]] = {}
    for t in tasks:
        groups.setdefault((t.group, t.image.path), []).append(t)
    return [sorted(g, key=lambda t: t.depth) for g in groups.values()]


def execute_stops(tasks: Sequence[Task], model, threads: int = 1, batch_stops: str = "auto") -> list[tuple]:
    """Run the tasks of one `by_image` group: as one optimisation (`core.jobs.pipeline.run_stops`) when `batch_stops`
    says so for their device, else one by one (`execute`). Returns (result, error) per task, in order; a
    user error in the batch sends each task through `execute`, so the failing one is named alone."""
    tasks = list(tasks)
    spec = tasks[0].spec
    if len(tasks) > 1 and batched(batch_stops, resolve_device(spec.device), sweep_size=spec.size):
        speed = SpeedOptions.with_threads(spec.device, threads)
        try:
            image = load_image(tasks[0].image.path, spec.size)
            jobs = run_stops([t.spec for t in tasks], image, model, use_cache=False, speed=speed)
            return [(j.result, None) for j in jobs]
        except UserError:
            pass
    return [execute(t, model, threads) for t in tasks]
