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

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from core.devices import resolve_device
from core.engine import Inversion, InversionResult, Snapshot
from core.errors import UserError
from core.presets import Preset

log = logging.getLogger("inversion.jobs")

KEY_FORMAT = 6  # bump when the meaning of a stored result changes (5: RunSpec keys; 6: no early stop before the horizon)


def library_versions() -> dict[str, str]:
    """torch, torchvision and timm versions: recorded with every result."""
    import torchvision

    versions = {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0]}
    try:
        import timm

        versions["timm"] = timm.__version__
    except ImportError:  # pragma: no cover - timm is a requirement
        versions["timm"] = "absent"
    return versions


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True, eq=False)
class RunSpec:
    """A frozen, hashable description of one run; `key()` is its cache key.

    Args:
        model: architecture name ("resnet18").
        checkpoint: "untrained", "trained", a state-dict path, or "upload:<sha256>".
        checkpoint_hash: SHA-256 of the weights file (None for untrained weights).
        init_seed: the untrained initialisation's seed.
        layer: the resolved graph node.
        size: image side in px.
        seeds: the seeds, in order.
        preset: the recipe, every component's settings included.
        image_hash: SHA-256 of the image as the engine sees it (`core.runcache.image_hash`).
        device: the device type the run uses ("cpu", "cuda", "mps"): results differ by rounding across them.
        versions: torch, torchvision, timm versions (the key uses major.minor; the full ones are recorded).
        continued: the steps each Continue added after the run finished, in order (`then`); () for a plain
            run. A continued run goes on from its parent's end with the optimiser's state carried over, so it
            is a function of the spec like any run, and its key differs from every plain run's.

    Example:
        >>> spec = RunSpec.of(model, "layer2", image, [0, 1], get_preset("default"), "cpu")
        >>> spec.key()[:8]
        'a3f0…'
    """

    model: str
    checkpoint: str
    checkpoint_hash: str | None
    init_seed: int
    layer: str
    size: int
    seeds: tuple[int, ...]
    preset: Preset
    image_hash: str
    device: str = "cpu"
    versions: tuple[tuple[str, str], ...] = field(default_factory=lambda: tuple(sorted(library_versions().items())))
    continued: tuple[int, ...] = ()

    @classmethod
    def of(cls, model, layer: str, image: torch.Tensor, seeds: Sequence[int], preset: Preset,
           device: str | torch.device = "auto", checkpoint: str | None = None) -> "RunSpec":
        """The spec of running `model` (a `LoadedModel`) at `layer` on `image`.

        Args:
            model: a loaded model; its checkpoint, weights hash and init seed go into the spec.
            layer: a depth stop or any graph node (resolved here; unknown names raise UserError).
            image: (3, N, N) in [0, 1].
            seeds, preset: as for `Inversion`.
            device: "auto", "cpu", "cuda[:N]", "mps" or a torch.device.
            checkpoint: the id to record instead of the model's own (an upload's "upload:<sha256>").

        Returns:
            The RunSpec.
        """
        from core.checkpoints import checkpoint_hash
        from core.encoder import resolve_layer
        from core.engine import check_seeds
        from core.runcache import image_hash

        node = resolve_layer(model, layer).node
        ck = checkpoint or model.checkpoint
        digest = ck.split(":", 1)[1] if ck.startswith("upload:") else checkpoint_hash(model)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        init = int(model.init_seed) if ck == "untrained" else 0  # loaded weights overwrite the initialisation
        return cls(model.name, ck, digest, init, node, int(image.shape[-1]),
                   tuple(check_seeds(seeds)), preset, image_hash(image), dev.type)

    def to_dict(self) -> dict:
        """Every setting as JSON-able data (recorded in result.json and the app's downloads)."""
        return {"model": self.model, "checkpoint": self.checkpoint, "checkpoint_hash": self.checkpoint_hash,
                "init_seed": self.init_seed, "layer": self.layer, "size": self.size, "seeds": list(self.seeds),
                "preset": self.preset.to_dict(), "image_hash": self.image_hash, "device": self.device,
                "versions": dict(self.versions), **({"continued": list(self.continued)} if self.continued else {})}

    def key(self) -> str:
        """The cache key: SHA-256 over every setting (library versions as major.minor)."""
        d = self.to_dict()
        d["versions"] = {k: _minor(v) for k, v in d["versions"].items()}
        text = json.dumps({"format": KEY_FORMAT, **d}, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def replace(self, **changes) -> "RunSpec":
        from dataclasses import replace

        return replace(self, **changes)

    def then(self, steps: int) -> "RunSpec":
        """This run continued by `steps` more steps once it has finished."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise UserError(f"continue needs a positive number of steps (got {steps!r})")
        return self.replace(continued=(*self.continued, steps))

    def parent(self) -> "RunSpec":
        """The run this one continues (itself for a plain run)."""
        return self.replace(continued=self.continued[:-1])

    @property
    def steps(self) -> int:
        """At most how many steps the whole run takes: the budget plus every continuation."""
        return self.preset.iters + sum(self.continued)

    def __eq__(self, other) -> bool:
        return isinstance(other, RunSpec) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


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
    """

    snapshot: Callable[[Snapshot], None] | None = None
    progress: Callable[[Snapshot], None] | None = None
    note: Callable[[str], None] | None = None
    wait: Callable[[int, int], None] | None = None
    start: Callable[[Inversion], None] | None = None


def default_cache():
    """The project's run cache (`core.runcache.default_dir`) with the shipped examples as a read-only fallback."""
    from pathlib import Path

    from core.runcache import RunCache

    return RunCache(fallbacks=[Path(__file__).resolve().parent.parent / "assets" / "examples"])


def lookup(spec: RunSpec, cache=None) -> InversionResult | None:
    """The cached result of `spec`, or None (never computes)."""
    return (cache or default_cache()).get(spec.key())


def _record(result: InversionResult, spec: RunSpec) -> InversionResult:
    result.spec = spec.to_dict()  # the caption, result.json and downloads report every setting from here
    return result


_ACTIVATIONS: dict[tuple, dict[str, int]] = {}


def max_batch_for(model, spec: RunSpec, device: torch.device, speed=None) -> int | None:
    """Seeds per batch that fit the device's memory (None: no limit known, e.g. the CPU)."""
    from core.speed import activation_bytes, device_memory_gb, plan_chunks, seed_step_bytes

    memory_gb = device_memory_gb(device)
    if not memory_gb:
        return None
    memo = (model.name, spec.layer, spec.size)  # activation sizes depend on the architecture, not the weights
    if memo not in _ACTIVATIONS:  # one batch-1 CPU forward per (architecture, layer, size)
        _ACTIVATIONS[memo] = activation_bytes(model, [spec.layer], spec.size)[spec.layer]
    act = _ACTIVATIONS[memo]
    autocast = bool(speed and speed.autocast_dtype)
    wbytes = sum(p.numel() * 4 for p in model.module.parameters())
    return plan_chunks(seed_step_bytes(act, spec.size, autocast), len(spec.seeds), memory_gb, wbytes).seeds_per_batch


def run(spec: RunSpec, image: torch.Tensor, model=None, *, cache=None, use_cache: bool = True,
        callbacks: Callbacks | None = None, every: int | None = None, speed=None, queue: bool = True,
        live: Inversion | None = None) -> Job:
    """The finished result of `spec`: from the cache, or computed on its device and stored.

    Cache -> the device's queue (one run per device at a time; `callbacks.wait` while queued) ->
    the cache again (another session may have finished it) -> the engine, in seed batches that fit
    the device's memory, halving on out-of-memory (`core.speed.run_resilient`) -> the cache.
    A run stopped by its caller is never stored; a failing disk only loses the storing.

    Args:
        spec: what to run (`RunSpec.of`).
        image: the image whose hash is in `spec` (checked).
        model: the loaded model of `spec` (loaded from the spec when None; an upload must be passed).
        cache: a `core.runcache.RunCache` (default: `default_cache()`).
        use_cache: False skips reading and writing the cache (the CLI's --no-cache).
        callbacks: snapshot, progress, note, wait and start hooks (`Callbacks`).
        every: steps between snapshots (default: about 15 per run).
        speed: `core.speed.SpeedOptions` (None: what is exact up to rounding on the device).
        queue: False runs without taking the device's queue (a caller that already holds it).
        live: an `Inversion` still in memory to go on from: this spec's own run stopped part-way, or (for a
            continued spec) its parent's run at its end, whose optimiser state then carries on. Without it a
            continued spec's parent is computed again (the cache keeps results, not optimiser states).

    Returns:
        A `Job` with the result (its `spec` attribute records every setting) and `cached`.

    Example:
        >>> job = run(RunSpec.of(model, "layer2", image, [0, 1], get_preset("default"), "cpu"), image, model)
        >>> job.result.metrics["clarity"], job.cached
    """
    from contextlib import nullcontext

    from core.runcache import image_hash
    from core.runqueue import queue_for
    from core.speed import run_resilient

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
        from core.checkpoints import load_model

        model = load_model(spec.model, spec.checkpoint, spec.size, spec.init_seed)
    dev = resolve_device(spec.device)
    slot = queue_for(str(dev)).slot(label=spec.key()[:8], on_wait=cb.wait) if queue else nullcontext()
    with slot:
        if cache is not None:
            hit = cache.get(spec.key())
            if hit is not None:
                return Job(spec, _record(hit, spec), cached=True)
        live = _usable(live, spec)
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
    _store(cache, job, cb)
    return job


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
    from core.speed import is_oom, run_resilient

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
    """The finished results of several depth stops of one model as one optimisation (`core.multistop`).

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
    import gc

    from core.multistop import cut_points
    from core.runcache import image_hash
    from core.runqueue import queue_for
    from core.speed import is_oom

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
    """Run the stops of `group` as one batch (`core.multistop.run_together`) and store each result."""
    from core.multistop import run_together

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
