"""How long a run will take on this device, from a few measured steps, and a cheaper setting.

The probe runs the real engine for a handful of steps on a flat grey image (the cost of a step
does not depend on the picture), times the steps after the first (which pays for warm-up), and
extrapolates. A step's cost grows roughly with seeds x pixels, which `suggest_cheaper` uses to
propose settings that fit a time budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from core.devices import resolve_device
from core.engine.loop import Inversion
from core.engine.speed import pick_cpu_threads
from core.models.checkpoints import LoadedModel
from core.recipe.presets import Preset


@dataclass(frozen=True)
class Estimate:
    setup_s: float  # building the encoder and the target embedding
    step_s: float  # one optimisation step for all seeds at once (the median of the measured ones)
    iters: int
    warmup_s: float = 0.0  # the first step (allocations, algorithm choice), paid once per run

    @property
    def seconds(self) -> float:
        """The whole budget's time; a run with early stopping may end sooner."""
        return self.setup_s + self.warmup_s + self.step_s * max(0, self.iters - 1)

    def scaled(self, iters: int | None = None, seeds_ratio: float = 1.0, pixels_ratio: float = 1.0) -> "Estimate":
        return Estimate(self.setup_s, self.step_s * seeds_ratio * pixels_ratio, iters or self.iters,
                        self.warmup_s * seeds_ratio * pixels_ratio)


def measure(model: LoadedModel, layer: str, size: int, seeds: int, preset: Preset, device="auto",
            probe_steps: int = 6) -> Estimate:
    """Time one warm-up step and `probe_steps` real steps of this configuration (six: the median of three
    read 20x off on a busy 2-core machine)."""
    probe_steps = max(1, int(probe_steps))
    image = torch.full((3, size, size), 0.5)

    if resolve_device(device).type == "cpu":
        # a fresh thread pick: one made a while ago on an idle machine makes every step of a now-busy one wait at
        # OpenMP barriers (each op a scheduler tick), and the estimate read 280x the real run (0.88 s vs 3 ms a step)
        pick_cpu_threads(max_age_s=0)
    t0 = time.perf_counter()
    run = Inversion(model, layer, image, list(range(seeds)), preset.replace(iters=probe_steps + 1), device)
    setup = time.perf_counter() - t0
    it = run.snapshots(every=1)
    t_w = time.perf_counter()
    next(it)  # warm-up step
    warmup = time.perf_counter() - t_w
    times = []
    t1 = time.perf_counter()
    for _ in it:
        t2 = time.perf_counter()
        times.append(t2 - t1)
        t1 = t2
    times.sort()
    step = times[len(times) // 2]  # the median step: one slow step on a busy machine does not decide
    return Estimate(setup, step, preset.iters, warmup)


def human(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 3600:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def suggest_cheaper(est: Estimate, size: int, seeds: int, iters: int, budget_s: float = 20.0,
                    min_size: int = 16) -> dict | None:
    """Settings (size, seeds, iters) that should fit `budget_s`, or None if these already do.

    Shrinks in the order that costs the least insight: iterations down to 150, seeds down
    to 2, then the image size (never below `min_size` or 32 px), then iterations again.
    """
    if est.seconds <= budget_s:
        return None
    s, k, n = size, seeds, iters

    def cost(s2, k2, n2):
        return est.setup_s + est.step_s * (k2 / seeds) * (s2 * s2) / (size * size) * n2

    n = min(n, 150)
    if cost(s, k, n) > budget_s:
        k = min(k, 2)
    floor = max(min_size, 32)
    while cost(s, k, n) > budget_s and s > floor:
        s = max(floor, s - 16 if s > 64 else s - 8)
    while cost(s, k, n) > budget_s and n > 30:
        n = max(30, int(n * 0.7))
    if (s, k, n) == (size, seeds, iters):
        return None
    return {"size": s, "seeds": k, "iters": n, "seconds": cost(s, k, n)}
