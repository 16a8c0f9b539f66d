"""The forecast of a sweep and of a findings report (`core.jobs.forecast`): the same lines of runs they will make,
loaded the way they load them, so the Sweeps and Findings pages and the `sweep` and `findings` commands say one
time before they run."""

from __future__ import annotations

from typing import Callable

from core.errors import UserError
from core.images import load_image
from core.jobs.forecast import NOTHING, Line, PlanTime, plan_time
from core.jobs.spec import RunSpec
from core.models.checkpoints import load_model
from core.models.encoder import depth_stops
from core.studies.findings import FindingsPlan
from core.studies.findings_runs import FIVE_INPUTS, deep_stops
from core.studies.manifold import make_input
from core.studies.sweep import Sweep
from core.studies.verdicts import runs_of



def sweep_lines(sweep: Sweep, load=None) -> list[Line]:
    """(architecture, model, checkpoint, stops) of every model x checkpoint `sweep` runs; a checkpoint that does
    not load is left out, as `Sweep.plan` leaves it out.

    Args:
        sweep: the sweep.
        load: `load(arch, checkpoint, size, init_seed)` (default `load_model`; the app passes its cached one).
    """
    load = load or load_model
    lines = []
    for arch in sweep.models:
        for ck in sweep.checkpoints:
            try:
                model = load(arch, ck, sweep.size, sweep.init_seed)
            except UserError:
                continue
            nodes = [s.node for s in depth_stops(model)] if sweep.layers == "stops" else list(sweep.layers)
            lines.append((arch, model, ck, nodes))
    return lines


def sweep_time(sweep: Sweep, measure_at, is_cached: Callable[[RunSpec], bool] = lambda spec: False,
               load=None) -> PlanTime:
    """The forecast of `sweep`: its lines on its first image, times its images (`core.jobs.forecast.plan_time`)."""
    lines = sweep_lines(sweep, load)
    image = load_image(sweep.images[0].path, sweep.size)
    return plan_time(lines, image, sweep.seeds, sweep.preset, sweep.device, measure_at, is_cached,
                     times=len(sweep.images))


def findings_time(plan: FindingsPlan, measure_at, is_cached: Callable[[RunSpec], bool] = lambda spec: False,
                  load=None) -> PlanTime:
    """The forecast of a findings report: the sweeps of findings 1-4 and 7 and finding 5's generated inputs at the
    deep stops; finding 6's small MLPs are not measured (say so beside it)."""
    wants, total = set(plan.findings), NOTHING
    for sweep in plan.sweeps if runs_of("sweep", wants) else []:
        lines = sweep_lines(sweep, load)
        image = load_image(sweep.images[0].path, sweep.size)
        total += plan_time(lines, image, plan.seeds, plan.preset, plan.device, measure_at, is_cached,
                           times=len(sweep.images))
        if runs_of("manifold", wants) and {"untrained", "trained"} <= set(plan.checkpoints):
            five = [(a, m, ck, deep_stops(m)) for a, m, ck, _ in lines]
            for kind in FIVE_INPUTS:  # the generated inputs it inverts, each looked up in the cache
                total += plan_time(five, make_input(kind, sweep.size, plan.init_seed), plan.seeds, plan.preset,
                                   plan.device, measure_at, is_cached)
    return total
