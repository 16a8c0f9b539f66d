"""The one run pipeline: a `RunSpec` in, a finished `InversionResult` out.

Every result the project shows comes from `run` (the CLI, every page, the curve, the
benchmarks' engine runs and sweeps): cache -> device queue -> memory-planned, out-of-memory
resilient engine -> cache. Nothing else builds an `Inversion` for a user-visible result, so a
cache key means the same thing everywhere.

    spec = RunSpec.of(model, "layer2", image, seeds=[0, 1], preset=get_preset("default"), device="cpu")
    job = run(spec, image, model)            # computed, stored
    job = run(spec, image, model)            # job.cached is True, instant
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from core.devices import is_oom, resolve_device
from core.engine.loop import Inversion
from core.engine.multistop import cut_points, run_together
from core.engine.result import InversionResult, Snapshot
from core.errors import UserError
from core.jobs.cache import RunCache, image_hash
from core.jobs.executor import max_batch_for, run_resilient
from core.jobs.estimate import Estimate, record_actual, speed_for
from core.jobs.queue import Ahead, queue_for
from core.jobs.spec import RunSpec
from core.paths import EXAMPLES

log = logging.getLogger("inversion.jobs")


@dataclass
class Job:
    """What `run` returns: the result, whether it came from the cache, and what the run had to do."""

    spec: RunSpec
    result: InversionResult
    cached: bool
    notes: list[str] = field(default_factory=list)
    batches: list[list[int]] = field(default_factory=list)
    fell_back_to_cpu: bool = False
    run: Inversion | None = field(default=None, repr=False)  # the run a continued job went on with (in memory)


@dataclass
class Callbacks:
    """Hooks a caller may set (all optional).

    snapshot(snap): every `every` steps with all seeds' images (unsplit runs).
    progress(snap): every `every` steps of a batch of a split run (some of the seeds).
    note(text): one-line messages (out of memory, batches, fallback).
    wait(position, waiting): the device is busy; called while queued.
    start(run): the `Inversion` that now runs (to keep its partial result if the caller stops it).
    next_run(done, total, name, layer): a study (`core.studies`) is about to run its next run, `done` of `total`
        runs finished; once more at the end with layer "". A single run never calls it.
    ahead(Ahead): while queued, the runs before this one and their estimated seconds (`core.jobs.queue.Ahead`).
    """

    snapshot: Callable[[Snapshot], None] | None = None
    progress: Callable[[Snapshot], None] | None = None
    note: Callable[[str], None] | None = None
    wait: Callable[[int, int], None] | None = None
    start: Callable[[Inversion], None] | None = None
    next_run: Callable[[int, int, str, str], None] | None = None
    ahead: Callable[[Ahead], None] | None = None


def default_cache():
    """The project's run cache (`core.jobs.cache.default_dir`) with the shipped examples as a read-only fallback."""
    return RunCache(fallbacks=[EXAMPLES])


def lookup(spec: RunSpec, cache=None) -> InversionResult | None:
    """The cached result of `spec`, or None (never computes)."""
    return (cache or default_cache()).get(spec.key())


def _record(result: InversionResult, spec: RunSpec) -> InversionResult:
    result.spec = spec.to_dict()  # the caption, result.json and downloads report every setting from here
    return result


def run(spec: RunSpec, image: torch.Tensor, model=None, *, cache=None, use_cache: bool = True,
        callbacks: Callbacks | None = None, every: int | None = None, speed=None, queue: bool = True,
        live: Inversion | None = None, estimate: Estimate | None = None) -> Job:
    """The finished result of `spec`: from the cache, or computed on its device and stored.

    Cache -> the device's queue (one run per device at a time; `callbacks.wait` while queued) ->
    the cache again (another session may have finished it) -> the engine, in seed batches that fit
    the device's memory, halving on out-of-memory (`core.jobs.executor.run_resilient`) -> the cache.
    A run stopped by its caller is never stored; a failing disk only loses the storing.

    Args:
        spec: what to run (`RunSpec.of`).
        image: the image whose hash is in `spec` (checked).
        model: the loaded model of `spec` (loaded from the spec when None; an upload must be passed).
        cache: a `core.jobs.cache.RunCache` (default: `default_cache()`).
        use_cache: False skips reading and writing the cache (the CLI's --no-cache).
        callbacks: snapshot, progress, note, wait and start hooks (`Callbacks`).
        every: steps between snapshots (default: about 15 per run).
        speed: `core.engine.speed.SpeedOptions` (None: what is exact up to rounding on the device).
        queue: False runs without taking the device's queue (a caller that already holds it).
        live: an `Inversion` still in memory to go on from: this spec's own run stopped part-way, or (for a
            continued spec) its parent's run at its end, whose optimiser state then carries on. Without it a
            continued spec's parent is computed again (the cache keeps results, not optimiser states).
        estimate: this run's `core.jobs.estimate.Estimate`, if the caller measured one: the run takes the CPU
            thread count it chose (`speed_for`, unless `speed` is given), tells the queue its seconds (so runs
            behind it can say how long they wait), and its real time is recorded against it (`record_actual`,
            which corrects the next estimates on this device).

    Returns:
        A `Job` with the result (its `spec` attribute records every setting) and `cached`.

    Example:
        >>> job = run(RunSpec.of(model, "layer2", image, [0, 1], get_preset("default"), "cpu"), image, model)
        >>> job.result.metrics["clarity"], job.cached
    """

    cb = callbacks or Callbacks()
    if image_hash(image) != spec.image_hash:
        raise UserError("the image does not match the run's settings (its hash differs); build the spec from it")
    cache = (cache or default_cache()) if use_cache else None
    if cache is not None:
        hit = cache.get(spec.key())
        if hit is not None:
            return Job(spec, _record(hit, spec), cached=True)
    if model is None:
        if spec.checkpoint.startswith("upload:"):
            raise UserError("an uploaded checkpoint's run needs its loaded model")
        from core.models.checkpoints import load_model

        model = load_model(spec.model, spec.checkpoint, spec.size, spec.init_seed)
    dev = resolve_device(spec.device)
    if estimate is not None and speed is None:
        speed = speed_for(estimate, dev)
    slot = queue_for(str(dev)).slot(label=spec.key()[:8], on_wait=cb.wait, on_ahead=cb.ahead,
                                    seconds=None if estimate is None else estimate.seconds) if queue else nullcontext()
    with slot:
        if cache is not None:
            hit = cache.get(spec.key())
            if hit is not None:
                return Job(spec, _record(hit, spec), cached=True)
        live = _usable(live, spec)
        started = time.perf_counter()
        if spec.continued or live is not None:
            job = _go_on(spec, image, model, dev, live, cache, cb, every, speed)
        else:
            max_batch = max_batch_for(model, spec, dev, speed)
            result, info = run_resilient(model, spec.layer, image, list(spec.seeds), spec.preset, dev, speed=speed,
                                         max_batch=max_batch, on_snapshot=cb.snapshot, on_partial=cb.progress,
                                         on_note=cb.note, on_start=_starting(spec, cb),
                                         every=snapshot_every(every, spec.preset.iters))
            job = Job(spec, _record(result, spec), cached=False, notes=list(info.notes or []), batches=info.chunks,
                      fell_back_to_cpu=info.fell_back_to_cpu)
            if estimate is not None and not result.stopped_early and not info.fell_back_to_cpu:
                # the estimate's setup (encoder and target) is paid here too: it is what the page's user waits for
                record_actual(estimate, time.perf_counter() - started, dev, steps=result.steps_done)
    _store(cache, job, cb)
    return job


@contextmanager
def device_slot(spec: RunSpec, callbacks: Callbacks | None = None, seconds: float | None = None):
    """Hold the device queue of `spec` for several runs in a row (a side-by-side pair of checkpoints): another
    session's run waits until all are done, and the runs inside pass `queue=False` to `run`.

    Args:
        spec: any of the runs (their device is the same).
        callbacks: `wait(position, waiting)` and `ahead(Ahead)` are called while queued.
        seconds: the estimated time of all the runs inside (for the runs queued behind them).
    """
    cb = callbacks or Callbacks()
    with queue_for(str(resolve_device(spec.device))).slot(label=spec.key()[:8] + "+", on_wait=cb.wait,
                                                          on_ahead=cb.ahead, seconds=seconds) as ticket:
        yield ticket


def snapshot_every(every: int | None, steps: int) -> int:
    """Steps between snapshots: as asked, else about 15 per run (at least 5, at most 25 apart)."""
    return every or max(5, min(25, steps // 15))


def _starting(spec: RunSpec, cb: Callbacks) -> Callable[[Inversion], None]:
    """The engine's `on_start`: tag the run with the spec it computes (so a Stop part-way leaves a run that says
    what it is), then the caller's `start`."""
    def start(inv: Inversion) -> None:
        inv.spec = spec
        if cb.start:
            cb.start(inv)
    return start


def _usable(live: Inversion | None, spec: RunSpec) -> Inversion | None:
    """`live` if `spec` can go on from it: this spec's own run stopped part-way, or its parent's finished run,
    and not a run split into seed batches that were not all absorbed; else None (computed again instead)."""
    if live is None or live.incomplete or live.spec is None:
        return None
    if live.finished:
        return live if spec.continued and live.spec == spec.parent() else None
    return live if live.spec == spec else None


def _store(cache, job: Job, cb: Callbacks) -> None:
    """Put a finished job's result in the cache; a full or read-only disk only loses the storing (a note says so)."""
    if cache is None or job.cached or job.result.stopped_early:
        return
    try:
        cache.put(job.spec.key(), job.result)
    except OSError as exc:
        job.notes.append(f"could not store the result in the cache ({exc}); it is kept only in memory")
        if cb.note:
            cb.note(job.notes[-1])


def _go_on(spec: RunSpec, image, model, dev, live: Inversion | None, cache, cb: Callbacks, every, speed) -> Job:
    """Finish `spec` from `live` (checked by `_usable`), or compute its parent again and continue it; every phase
    goes through `cb.start`, tagged with its own spec. The job keeps the `Inversion` (`job.run`), so a later
    Continue carries its optimiser state on."""
    if spec.continued:
        fits = max_batch_for(model, spec, dev, speed)
        if fits is not None and fits < len(spec.seeds):
            raise UserError(f"continuing runs all {len(spec.seeds)} seeds in one batch, and {dev} has memory for "
                            f"{fits}: continue a run of at most {fits} seeds")
    notes: list[str] = []
    if live is None:
        parent = spec.parent()
        if parent.continued:
            inner = _go_on(parent, image, model, dev, None, cache, cb, every, speed)
            _store(cache, inner, cb)
            notes, live = list(inner.notes), inner.run
        else:
            notes.append(f"computed the {parent.preset.iters}-step run again first: the optimiser's state it "
                         "goes on from is kept only while a run is in memory")
            if cb.note:
                cb.note(notes[-1])
            kept: dict = {}
            start = _starting(parent, cb)
            base, info = run_resilient(model, parent.layer, image, list(parent.seeds), parent.preset, dev,
                                       speed=speed, max_batch=max_batch_for(model, parent, dev, speed),
                                       on_snapshot=cb.snapshot, on_partial=cb.progress, on_note=cb.note,
                                       on_start=lambda inv: (kept.update(run=inv), start(inv)),
                                       every=snapshot_every(every, parent.preset.iters))
            notes += list(info.notes or [])
            live = kept["run"]
            _store(cache, Job(parent, _record(base, parent), cached=cache is not None and parent.key() in cache), cb)
    if live.finished:  # the parent's end (`_usable`): this spec's last continuation goes on from it
        live.extend(spec.continued[-1])
    live.spec = spec
    if cb.start:
        cb.start(live)
    try:
        steps = spec.continued[-1] if spec.continued else spec.preset.iters
        for snap in live.snapshots(snapshot_every(every, steps)):
            if cb.snapshot:
                cb.snapshot(snap)
    except RuntimeError as exc:
        if not is_oom(exc):
            raise
        raise UserError(f"out of memory going on with {len(spec.seeds)} seeds in one batch: run fewer seeds or a "
                        "smaller size") from None
    return Job(spec, _record(live.result(), spec), cached=False, notes=notes, batches=[list(spec.seeds)], run=live)


def run_stops(specs: Sequence[RunSpec], image: torch.Tensor, model, *, cache=None, use_cache: bool = True,
              callbacks: Callbacks | None = None, every: int | None = None, speed=None) -> list[Job]:
    """The finished results of several depth stops of one model as one optimisation (`core.engine.multistop`).

    The specs must differ only in their layer. Cached stops come from the cache; the others take the
    device's queue once and run together, every stop's seeds in one batch through the shared prefix of
    the network. Stops that are not cut points of the traced graph (a ViT's `conv_proj`), a lone stop,
    and every stop after an out-of-memory error run one by one through `run`. Each result is stored
    under its own spec's key, like a sequential run's (the two agree to rounding: tests/test_multistop.py).

    Args:
        specs: one spec per stop, same model, checkpoint, image, size, seeds, preset and device.
        image, model, cache, use_cache, every, speed: as for `run`.
        callbacks: as for `run`; `progress` gets the running group's latest snapshot (all stops step
            together), `start` is not called for a group.

    Returns:
        One `Job` per spec, in the order given.
    """

    specs = list(specs)
    if not specs:
        return []
    cb = callbacks or Callbacks()
    same = {s.replace(layer="") for s in specs}
    if len(same) != 1:
        raise UserError("the runs of one batch must differ only in their layer")
    if len({s.layer for s in specs}) != len(specs):
        raise UserError("a layer appears twice among the runs of one batch")
    if image_hash(image) != specs[0].image_hash:
        raise UserError("the image does not match the run's settings (its hash differs); build the spec from it")
    if specs[0].continued:  # each goes on from its own parent's run
        return [run(s, image, model, cache=cache, use_cache=use_cache, callbacks=callbacks, every=every, speed=speed)
                for s in specs]
    cache = (cache or default_cache()) if use_cache else None
    jobs: dict[str, Job] = {}

    def from_cache():
        for s in specs:
            hit = cache.get(s.key()) if cache is not None and s.layer not in jobs else None
            if hit is not None:
                jobs[s.layer] = Job(s, _record(hit, s), cached=True)

    from_cache()
    if len(jobs) < len(specs):
        dev = resolve_device(specs[0].device)
        every = snapshot_every(every, specs[0].preset.iters)
        with queue_for(str(dev)).slot(label=specs[0].key()[:8] + "*", on_wait=cb.wait):
            from_cache()  # another session may have finished some while this one waited
            todo = [s for s in specs if s.layer not in jobs]
            shared, alone = cut_points(model, [s.layer for s in todo], todo[0].size) if len(todo) > 1 else ([], [])
            group = [s for s in todo if s.layer in shared] if len(shared) > 1 else []
            if alone and cb.note:
                cb.note(f"{', '.join(alone)} of {model.name} run{'s' * (len(alone) == 1)} alone: a later node of the "
                        "graph reads a batch value computed before it, so its samples cannot leave the batch there")
            failed = False
            if group:
                try:
                    jobs.update(_run_group(group, image, model, cache, cb, every, speed))
                except RuntimeError as exc:
                    if not is_oom(exc):
                        raise
                    failed = True
            if failed:  # outside the `except`: its traceback holds the failed batch's tensors
                gc.collect()
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                msg = f"out of memory running {len(group)} stops in one batch on {dev}: running them one by one"
                log.warning(msg)
                if cb.note:
                    cb.note(msg)
            for s in specs:  # the rest one by one: cut points, a lone stop, or after running out of memory
                if s.layer not in jobs:
                    jobs[s.layer] = run(s, image, model, cache=cache, use_cache=use_cache, callbacks=cb,
                                        every=every, speed=speed, queue=False)
    return [jobs[s.layer] for s in specs]


def _run_group(group: list[RunSpec], image, model, cache, cb: Callbacks, every: int, speed) -> dict[str, Job]:
    """Run the stops of `group` as one batch (`core.engine.multistop.run_together`) and store each result."""
    first = group[0]
    dev = resolve_device(first.device)
    runs = [Inversion(model, s.layer, image, list(s.seeds), s.preset, dev, speed=speed) for s in group]
    shown = {"step": 0}

    def progress(run, snap):  # every stop steps in lockstep: pass on the newest step once
        if snap.step > shown["step"]:
            shown["step"] = snap.step
            if cb.progress:
                cb.progress(snap)

    run_together(runs, model, every=every, on_snapshot=progress)
    jobs = {}
    note = f"ran in one batch with {len(group) - 1} other stop{'s' * (len(group) != 2)} of this model"
    for s, r in zip(group, runs):
        result = r.result()
        job = Job(s, _record(result, s), cached=False, notes=[note], batches=[list(s.seeds)])
        _store(cache, job, cb)
        jobs[s.layer] = job
    return jobs
