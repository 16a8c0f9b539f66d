"""How long a plan of runs takes on this machine now, said before it runs: what every page and command shows.

A plan is lines of runs, (architecture, loaded model, checkpoint, depth stops) per model x checkpoint. The runs the
cache holds cost nothing; of the rest, each line's first and last stop is measured for a few real steps on the
thread count the run will take (`core.jobs.estimate.measure`) and the stops between interpolated
(`plan_seconds`). The checkpoint does not change a step's cost, so lines of one architecture share measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from core.devices import describe, resolve_device
from core.jobs.estimate import Estimate, human, measure, plan_seconds
from core.jobs.spec import RunSpec
from core.recipe.presets import Preset

PROBE_STEPS = 1  # after the warm-up step: a second or two even on a loaded 2-core machine

Line = tuple  # (architecture name, LoadedModel, checkpoint, [depth stop nodes in forward order])


@dataclass(frozen=True)
class PlanTime:
    """The forecast of a plan: `seconds` for the `runs` still to make (each run's whole budget; early stop may end
    them sooner) and `cached` runs the cache already holds."""

    seconds: float
    runs: int
    cached: int

    def __add__(self, other: "PlanTime") -> "PlanTime":
        return PlanTime(self.seconds + other.seconds, self.runs + other.runs, self.cached + other.cached)


NOTHING = PlanTime(0.0, 0, 0)


class Probe:
    """`measure_at` for `plan_time` that measures each (architecture, stop) once: the CLI's (the app keeps its
    measurements a minute in Streamlit's cache instead)."""

    def __init__(self, seeds: int, preset: Preset, device: str | torch.device):
        self.seeds, self.preset, self.device = seeds, preset, device
        self._seen: dict[tuple[str, str, int], Estimate] = {}

    def __call__(self, arch: str, model, node: str, size: int) -> Estimate:
        if (arch, node, size) not in self._seen:
            self._seen[arch, node, size] = measure(model, node, size, self.seeds, self.preset, self.device,
                                                   probe_steps=PROBE_STEPS)
        return self._seen[arch, node, size]


def plan_time(lines: Sequence[Line], image: torch.Tensor, seeds: Sequence[int], preset: Preset,
              device: str | torch.device, measure_at: Callable[[str, object, str, int], Estimate],
              is_cached: Callable[[RunSpec], bool] = lambda spec: False, times: int = 1) -> PlanTime:
    """The forecast of the runs of `lines` on `image`.

    Args:
        lines: (architecture, loaded model, checkpoint, depth stops) per model x checkpoint.
        image: the image every run inverts (for the cache lookup; the cost does not depend on it).
        measure_at: (architecture, model, node, image size) -> its `Estimate` (e.g. a `Probe`).
        is_cached: whether the cache holds a run (default: nothing is).
        times: the plan runs this many times over (e.g. once per image of a sweep); the cache is looked up for the
            first only.

    Returns:
        A `PlanTime`.
    """
    todo, every = [], 0
    for arch, model, ck, nodes in lines:
        stops = []
        for i, node in enumerate(nodes):
            every += 1
            try:
                hit = is_cached(RunSpec.of(model, node, image, seeds, preset, device, checkpoint=ck))
            except Exception:  # noqa: BLE001 - a bad node is reported when it runs
                hit = False
            if not hit:
                stops.append(i)
        if stops:
            todo.append((arch, model, stops, nodes))
    runs = sum(len(stops) for _, _, stops, _ in todo) * times
    size = int(image.shape[-1])
    seconds = times * sum(plan_seconds([(nodes, stops)], lambda node, a=arch, m=model: measure_at(a, m, node, size))
                          for arch, model, stops, nodes in todo)
    return PlanTime(seconds, runs, every * times - runs)


def time_text(plan: PlanTime, preset: Preset, device: str | torch.device, together: bool = False, what: str = "",
              bold: bool = False) -> str:
    """The forecast's one sentence (or that every run is in the cache).

    Args:
        plan: the forecast.
        preset: the runs' recipe (whether early stop may end them sooner).
        device: where they run.
        together: a model's stops run as one batch (which may be sooner).
        what: words after the count of runs (e.g. "over 4 images").
        bold: the time in Markdown bold (the app's caption).
    """
    if not plan.runs:
        return "Every run is in the cache: it shows at once."
    says = human(plan.seconds).replace("under a second", "a second")
    says = f"**{says}**" if bold else says
    from_cache = f"; {plan.cached} more from the cache" if plan.cached else ""
    batch = "; a model's stops run in one batch, which may be sooner" if together else ""
    early = "; early stop may end it sooner" if preset.early_stop else ""
    return (f"Estimated on {describe(resolve_device(device))} now: up to {says} for {plan.runs} "
            f"run{'s' if plan.runs > 1 else ''}{' ' + what if what else ''}{from_cache}{batch}{early} (from a few "
            "steps measured now at each model's first and last stop; the machine's load changes it).")
