"""How long a run will take on this device, from measured steps, and a cheaper setting.

The probe runs the real engine on a flat grey image (or the run's own image; a step costs the same), times
the first step (warm-up) apart from the rest, takes fast steps for `min_probe_s` and starts none after
`max_probe_s` (a slow setting is not measured for half a minute: a warm-up past the cap stands for a step),
and times the final metrics (`Inversion.result()`) once. On a CPU it chooses the thread count on the real
step (`Estimate.threads`; run with it: `speed_for`). A step's cost grows roughly with seeds x pixels, which
`suggest_cheaper` uses to propose settings that fit a time budget.

What the probe cannot see, the load of the next minute, comes from the runs that finished here lately:
`record_actual(estimate, seconds, device)` after each run, `calibrated(estimate, device)` before showing one
(the median of the last runs' actual / estimated, clipped to [0.5, 4]).

During a run, `remaining(elapsed_s, step, total)` (or a `Countdown`) gives the seconds left from the steps
done so far, and `RunQueue.ahead` (core.jobs.queue) the estimated seconds of the runs queued before it.

Measured on this 2-core machine with other work running (BENCHMARKS.md, "Time estimates"): the old estimate
missed little in the finish (7-18 ms), the snapshots (within the noise) or the first step; it missed the
load. The engine's thread pick chose two threads beside two busy processes, whose steps then took 10-25x one
thread's; and one thread's steps come in phases (5 ms, then 10-20 ms sharing a core) that six steps saw one
of. With the thread count chosen on the real step and pinned for the run, a 0.5 s probe and the mean of its
steps, 9 of 9 estimates of the default run came within 2x (0.68-1.33), idle and beside busy processes.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from core.devices import cpu_cores, resolve_device
from core.engine.loop import Inversion
from core.threads import pick_cpu_threads
from core.threads import MANY_THREADS_GAIN, count_for, free_cores, requested
from core.models.checkpoints import LoadedModel
from core.recipe.presets import Preset

MAX_PROBE_S = 1.5  # the probe stops taking steps after this long (a slow setting: one step after the warm-up)
MIN_PROBE_S = 0.5  # ... and takes fast steps for at least this long (several of a loaded machine's phases)
MAX_PROBE_STEPS = 2000
_clock = time.perf_counter  # tests replace it with a fake clock
_get_threads, _set_threads = torch.get_num_threads, torch.set_num_threads  # and these with fake threads


@dataclass(frozen=True)
class Estimate:
    setup_s: float  # building the encoder and the target embedding
    step_s: float  # one optimisation step for all seeds at once (the mean of the measured ones)
    iters: int
    warmup_s: float = 0.0  # the first step (allocations, algorithm choice), paid once per run
    finish_s: float = 0.0  # the final metrics (`Inversion.result()`: m_g, SSIM, seed distances), paid once
    snapshot_s: float = 0.0  # what the caller spends on each snapshot (drawing it), every `every` steps
    every: int = 0  # steps between snapshots (0: snapshots not counted)
    steps_measured: int = 0  # steps timed after the warm-up (0: the warm-up alone stood for a step)
    threads: int | None = None  # CPU threads the probe chose on the real step (run with them: `speed_for`)
    calibration: float = 1.0  # the factor `calibrated` applied (recent runs' actual / estimated on this device)
    measured_at: float = 0.0  # when (the module's clock: time.perf_counter) the probe ended

    def snapshots(self, steps: int | None = None) -> int:
        steps = self.iters if steps is None else steps
        return math.ceil(steps / self.every) if self.every > 0 and steps > 0 else 0

    def for_steps(self, steps: int) -> float:
        """The time of a run that takes `steps` steps (a run that stopped early; `seconds` is the whole budget's)."""
        steps = max(0, int(steps))
        stepping = (self.warmup_s + self.step_s * (steps - 1)) if steps else 0.0
        return self.setup_s + stepping + self.finish_s + self.snapshot_s * self.snapshots(steps)

    @property
    def seconds(self) -> float:
        """The whole budget's time; a run with early stopping may end sooner."""
        return self.for_steps(self.iters)

    def scaled(self, iters: int | None = None, seeds_ratio: float = 1.0, pixels_ratio: float = 1.0) -> Estimate:
        r = seeds_ratio * pixels_ratio
        return replace(self, step_s=self.step_s * r, iters=iters or self.iters, warmup_s=self.warmup_s * r,
                       finish_s=self.finish_s * r)

    def times(self, factor: float) -> Estimate:
        """Every part `factor` times as long (`calibrated`)."""
        f = float(factor)
        return replace(self, setup_s=self.setup_s * f, step_s=self.step_s * f, warmup_s=self.warmup_s * f,
                       finish_s=self.finish_s * f, snapshot_s=self.snapshot_s * f, calibration=self.calibration * f)


def measure(model: LoadedModel, layer: str, size: int, seeds: int, preset: Preset, device="auto",
            probe_steps: int = 6, max_probe_s: float = MAX_PROBE_S, image: torch.Tensor | None = None,
            every: int = 0, snapshot_s: float = 0.0, min_probe_s: float = MIN_PROBE_S) -> Estimate:
    """Time one warm-up step, then up to `probe_steps` real steps of this configuration, and its final metrics.

    The thread count (CPU, several cores) is chosen on the real step: one thread when the rest of the machine
    leaves fewer than two cores idle (`_idle_cores`), else the warm-up and the first steps run with one thread,
    alternating with one per idle core, and several threads are kept only when clearly faster (a several-thread
    step 3x one thread's ends the comparison at once). On this 2-core machine with two busy processes the
    engine's small probe (`pick_cpu_threads`) chose two threads 6 times in 8, whose steps then took 278 ms
    against one thread's 11-21 ms. `Estimate.threads` is the count; run with it (`speed_for`).

    Args:
        model, layer, size, seeds, preset, device: the run's.
        probe_steps: steps to time after the warm-up at least (the mean of those at the kept thread count is the
            step's time).
        max_probe_s: no further step is started once the warm-up and steps have taken this long; a warm-up longer
            than this stands for a step by itself (an upper bound: the warm-up is the slowest step).
        min_probe_s: fast steps go on until they have taken this long: on a loaded machine a step's time comes in
            phases of 10-20 steps (5 ms on a core of its own, 10-20 ms sharing one), and six steps saw one phase.
        image: the run's image (default: flat grey; the cost is the same: 7.0 vs 7.1 ms a step measured).
        every, snapshot_s: steps between the snapshots the caller draws and what one costs it (counted in
            `seconds`); 0 leaves them out.

    Returns:
        An `Estimate` (`seconds` the whole budget's time; pass it through `calibrated` for the recent load).
    """
    probe_steps = max(1, int(probe_steps))
    if image is None or tuple(image.shape) != (3, size, size):
        image = torch.full((3, size, size), 0.5)
    dev = resolve_device(device)
    first, choices, speed = None, [], None  # the probe's first thread count; the counts it compares
    if dev.type == "cpu":
        # a fresh thread pick: one made a while ago on an idle machine makes every step of a now-busy one wait at
        # OpenMP barriers (each op a scheduler tick), and the estimate read 280x the real run (0.88 s vs 3 ms a step)
        pick = pick_cpu_threads(max_age_s=0)
        cores = cpu_cores()
        if cores > 1 and not requested():
            free = _idle_cores()  # the cores the rest of the machine leaves idle now (None: not known here)
            many = count_for(free)
            if many == 1:
                first = 1  # the other cores are busy: several threads would wait at every barrier
            elif probe_steps >= 4:
                first, choices = 1, [1, many]  # one thread first (never the catastrophe), then compare
            else:
                first = min(pick, many)
        from core.engine.speed import SpeedOptions

        speed = SpeedOptions.auto(dev).replace(threads=first) if first else None
    warm_judge(model)  # a one-time cost of the process, not of each run: kept out of the probe's times
    t0 = _clock()
    budget = max(probe_steps, MAX_PROBE_STEPS if min_probe_s > 0 else probe_steps) + 1
    run = Inversion(model, layer, image, list(range(seeds)), preset.replace(iters=budget, early_stop=False),
                    dev, speed=speed)
    setup = _clock() - t0
    if first is not None and _get_threads() != first:
        _set_threads(first)
    threads = _get_threads() if dev.type == "cpu" else None
    it = run.snapshots(every=1)
    t_w = _clock()
    next(it)  # warm-up step
    t1 = _clock()
    warmup = t1 - t_w
    times: dict[int | None, list[float]] = {}
    compare = 2 * len(choices)  # the first steps alternate between the thread counts
    done = 0
    try:
        if warmup < max_probe_s:
            while done < probe_steps or _clock() - t_w < min_probe_s:
                n = choices[done % 2] if done < compare else threads
                if n is not None and n != _get_threads():
                    _set_threads(n)
                t1 = _clock()
                try:
                    next(it)
                except StopIteration:
                    break
                t2 = _clock()
                times.setdefault(n, []).append(t2 - t1)
                done += 1
                if done < compare and n != 1 and times.get(1) and t2 - t1 > SLOW_MANY * _mean(times[1]):
                    compare = done  # several threads wait at barriers here: no second try
                if done == compare and choices:
                    threads = _faster(times, choices)
                if t2 - t_w >= max_probe_s:
                    break
    finally:
        it.close()
    if choices and done < compare:
        threads = _faster(times, choices)  # the cap ended the comparison: on the steps there are (one thread if few)
    if threads is not None and threads != _get_threads():
        _set_threads(threads)
    mine = times.get(threads) or [t for ts in times.values() for t in ts]
    # the mean, not the median: on a loaded machine the run pays its slow steps too (the median of six read 2-5x
    # under the run); with no step after the warm-up, the warm-up (the slowest step) stands for one
    step = sum(mine) / len(mine) if mine else warmup
    t_f = _clock()
    run.result()
    finish = _clock() - t_f
    return Estimate(setup, step, preset.iters, warmup, finish_s=finish, snapshot_s=float(snapshot_s),
                    every=max(0, int(every)), steps_measured=len(mine), threads=threads, measured_at=_clock())


def warm_judge(model: LoadedModel) -> None:
    """Load the content judge the runs of `model` are scored by (`core.measures.judge_for`), once per process."""
    from core.measures import get_judge, judge_for

    get_judge(judge_for(model.name))


SLOW_MANY = 3.0  # a several-thread step this many times one thread's ends the comparison at once


def _mean(xs) -> float:
    return sum(xs) / len(xs)


def _faster(times: dict, choices: list[int]) -> int:
    """The thread count whose probe steps were faster, one thread unless several clearly beat it: on a shared
    machine one thread loses at most the parallel speed-up, several lose 10-25x when the cores are busy."""
    one, many = min(choices), max(choices)
    if not times.get(one) or not times.get(many):
        return one
    return many if _mean(times[many]) <= MANY_THREADS_GAIN * _mean(times[one]) else one


def _idle_cores(window_s: float = 0.1) -> float | None:
    """How many of this process's cores the rest of the machine leaves idle now (`core.threads.free_cores`)."""
    return free_cores(window_s)


def speed_for(estimate: Estimate, device, max_age_s: float = 120.0):
    """The `SpeedOptions` to run with so the run uses the thread count the estimate measured (None: the
    estimate is not a CPU one, or older than `max_age_s`, and the run picks its own)."""
    from core.engine.speed import SpeedOptions

    if estimate.threads is None or _device_key(device) != "cpu" or _clock() - estimate.measured_at > max_age_s:
        return None
    return SpeedOptions.auto("cpu").replace(threads=estimate.threads)


# --------------------------------------------------------------------------- learned correction

RECENT = 8  # runs remembered per device
CLIP = (0.5, 4.0)  # the correction never goes further than this
_RECORD: dict[str, deque] = {}
_RECORD_LOCK = threading.Lock()


def _device_key(device) -> str:
    """One name per device: "auto" as it resolves, "cuda" as "cuda:0" (without `resolve_device`'s thread reset)."""
    name = str(device).lower() if device is not None else "auto"
    if name == "auto":
        mps = getattr(torch.backends, "mps", None)
        name = "cuda" if torch.cuda.is_available() else "mps" if mps is not None and mps.is_available() else "cpu"
    return "cuda:0" if name == "cuda" else name


def record_actual(estimate: Estimate, actual_seconds: float, device, steps: int | None = None) -> float | None:
    """Remember how long a finished run really took against its estimate on `device`.

    Args:
        estimate: the run's estimate, calibrated or not (the calibration is taken out).
        actual_seconds: the run's wall time from taking the device to its result (not the queue wait).
        device: the run's device.
        steps: the steps it took, when early stopping ended it before the budget (default: the budget).

    Returns:
        The recorded ratio actual / estimated, or None when there was nothing to compare (no time).
    """
    expected = estimate.for_steps(estimate.iters if steps is None else steps) / (estimate.calibration or 1.0)
    if not (expected > 0 and actual_seconds > 0 and math.isfinite(actual_seconds)):
        return None
    ratio = float(actual_seconds) / expected
    with _RECORD_LOCK:
        _RECORD.setdefault(_device_key(device), deque(maxlen=RECENT)).append(ratio)
    return ratio


def correction(device) -> float:
    """The median actual / estimated of the last `RECENT` runs on `device`, clipped to `CLIP` (1.0 with none)."""
    with _RECORD_LOCK:
        ratios = list(_RECORD.get(_device_key(device), ()))
    if not ratios:
        return 1.0
    return min(CLIP[1], max(CLIP[0], statistics.median(ratios)))


def calibrated(estimate: Estimate, device) -> Estimate:
    """`estimate` corrected by the recent runs on `device` (`correction`); its `calibration` says by how much."""
    factor = correction(device) / (estimate.calibration or 1.0)  # calibrating twice does not compound
    return estimate if factor == 1.0 else estimate.times(factor)


def forget(device=None) -> None:
    """Drop the record of `device` (all devices when None)."""
    with _RECORD_LOCK:
        if device is None:
            _RECORD.clear()
        else:
            _RECORD.pop(_device_key(device), None)


# --------------------------------------------------------------------------- during a run

def remaining(elapsed_s: float, step: int, total: int, since: tuple[float, int] | None = None,
              step_s: float | None = None, finish_s: float = 0.0) -> float | None:
    """Seconds left of a run at the pace of the steps done so far.

    Args:
        elapsed_s, step, total: the run's seconds so far, the steps it has done and the steps it will take
            (a snapshot's `seconds`, `step`, `total`).
        since: an earlier (elapsed_s, step) of the same run, e.g. its first snapshot: the pace is then that of
            the steps after it, which leaves the first steps' warm-up out. Without it the pace is the whole
            run's so far (the warm-up included: a little pessimistic early on).
        step_s: the estimate's time per step: stands for the pace before any step is done, and is blended
            into a pace read off fewer than 10 steps (weighted by the steps seen).
        finish_s: the final metrics' time, still to come after the last step.

    Returns:
        Seconds (0.0 once every step is done), or None before there is any pace to go by.
    """
    step, total = int(step), int(total)
    if step >= total:
        return 0.0
    pace, seen = None, 0
    if since is not None and step > since[1] and elapsed_s > since[0]:
        pace, seen = (elapsed_s - since[0]) / (step - since[1]), step - since[1]
    elif step >= 1 and elapsed_s > 0:
        pace, seen = elapsed_s / step, step
    if step_s is not None and step_s > 0:
        w = min(1.0, seen / 10)
        pace = step_s if pace is None else w * pace + (1 - w) * step_s
    elif pace is not None and seen < 2 and since is None:
        return None  # one step's pace is mostly its warm-up
    if pace is None:
        return None
    return pace * (total - step) + max(0.0, finish_s)


class Countdown:
    """The seconds left of one run, fed its snapshots: keeps the first one so the pace leaves the warm-up out.

        left = Countdown(step_s=est.step_s)
        for snap in run.snapshots(10):
            secs = left(snap.seconds, snap.step, snap.total)   # None before there is a pace
    """

    def __init__(self, step_s: float | None = None, finish_s: float = 0.0):
        self.step_s, self.finish_s = step_s, finish_s
        self.first: tuple[float, int] | None = None

    def __call__(self, elapsed_s: float, step: int, total: int) -> float | None:
        if self.first is None or step < self.first[1]:  # a new run (or a rerun) starts over
            self.first = (float(elapsed_s), int(step))
            since = None
        else:
            since = self.first if step > self.first[1] else None
        return remaining(elapsed_s, step, total, since=since, step_s=self.step_s, finish_s=self.finish_s)


# --------------------------------------------------------------------------- telling it

def plan_seconds(lines: Sequence[tuple[Sequence[str], Sequence[int]]], measure_at: Callable[[str], Estimate]) -> float:
    """The time of several runs one after another (a curve, a comparison, a sweep): per line, its first and last
    depth stop measured (`measure_at(node)`, e.g. `measure` on the line's model) and each stop between them
    interpolated by its index (a stop's step cost grows or shrinks with depth, roughly monotonically).

    Args:
        lines: (depth stops in forward order, the indices of the stops to run) per model × checkpoint.
        measure_at: node -> its `Estimate` (the caller caches it: lines of one model share their measurements).

    Returns:
        Seconds for every run's whole budget (early stop may end runs sooner).
    """
    total = 0.0
    for nodes, stops in lines:
        if not stops:
            continue
        a = measure_at(nodes[0]).seconds
        b = a if len(nodes) == 1 else measure_at(nodes[-1]).seconds
        span = max(1, len(nodes) - 1)
        total += sum(a + (b - a) * i / span for i in stops)
    return total


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
    to 2, then the image size (never below `min_size` or 32 px), then iterations again. The
    cost counts every part of the estimate (warm-up, finish, snapshots, its calibration).
    """
    if est.seconds <= budget_s:
        return None
    s, k, n = size, seeds, iters

    def cost(s2, k2, n2):
        return est.scaled(iters=n2, seeds_ratio=k2 / seeds, pixels_ratio=(s2 * s2) / (size * size)).seconds

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
