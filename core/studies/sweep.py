"""Sweeps: clarity over many images, models, checkpoints and layers, with confidence intervals.

Every (image, model, checkpoint, layer) is one `RunSpec` through `core.jobs.pipeline.run`; finished runs
land in the run cache, so a sweep is resumable by construction: rerunning it runs only the
specs the cache lacks, and stopping it (Ctrl-C, a lost machine) loses no finished run. Two
backends run the same specs: `local` (this process, on its device) and `ray` (Ray tasks, each
a batch of runs that share a model, so a worker loads each model once; see `core.studies.sweep_ray`).
What one task is and how it runs is `core.studies.sweep_tasks`; the files are `core.report.sweep`'s.

    sweep = Sweep.create(images="samples", models=["resnet18"], checkpoints=["untrained"],
                         layers="stops", size=32, seeds=[0, 1], preset=get_preset("default"))
    outcome = run_sweep(sweep, out="runs/sweep")      # runs.jsonl as runs finish
    write_sweep(outcome, sweep, "runs/sweep")         # core.report.sweep: results.parquet, summary.csv, ...
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from core.devices import resolve_device
from core.threads import requested
from core.errors import SweepStopped, UserError
from core.images import load_image, sample_images
from core.jobs.cache import image_hash
from core.studies.stats import bootstrap_ci, evidence
from core.measures import MEASURES
from core.jobs.pipeline import default_cache
from core.jobs.spec import RunSpec
from core.models.checkpoints import load_model
from core.models.encoder import depth_stops
from core.models.registry import get_architecture
from core.recipe.presets import Preset
from core.studies.curve import batched, relative_depth, resolve_layers
from core.studies.sweep_ray import run_ray
from core.studies.sweep_tasks import SweepImage, Task, by_image, execute_stops, row_of, worker_name

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
COLUMNS = ["image", "image_sha256", "model", "checkpoint", "layer", "label", "depth", "relative_depth", "clarity",
           "ssim_mean", "psnr_mean", "input_l2_mean", "embedding_l2_mean", "reference_l2", "converged", "status",
           "steps_done", "seconds", "device", "worker", "key", "error", "shift_input_l2", "seed_spread_input",
           *MEASURES]
# older sweeps lack these
OPTIONAL_COLUMNS = ("label", "status", "key", "error", "shift_input_l2", "seed_spread_input", *MEASURES)
SUMMARY_COLUMNS = ["model", "checkpoint", "layer", "label", "depth", "relative_depth", "n", "clarity_mean",
                   "clarity_ci_low", "clarity_ci_high", "ssim_mean", "converged_fraction", "errors",
                   *(f"{name}_{part}" for name in MEASURES for part in ("mean", "ci_low", "ci_high"))]


# --------------------------------------------------------------------------- images


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_images(source: str | Sequence[str], size: int) -> tuple[list[SweepImage], list[tuple[str, str]]]:
    """The images of a sweep and the files skipped with the reason.

    Args:
        source: "samples" (the shipped images), a folder (read recursively: png, jpg, jpeg, webp), or a comma
            list / sequence of files.
        size: the run size; every image is read once at it, so a broken file is caught here, never mid-sweep.

    Returns:
        (images sorted by name, [(path, reason)] for files that cannot be read).
    """
    if isinstance(source, str) and source == "samples":
        paths = [(name, p) for name, p in sample_images().items()]
    elif isinstance(source, str) and Path(source).is_dir():
        root = Path(source)
        paths = [(str(p.relative_to(root)), p) for p in sorted(root.rglob("*"))
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            raise UserError(f"no images in {source!r}: expected .png, .jpg, .jpeg or .webp files (read recursively)")
    else:
        items = [s.strip() for s in (source.split(",") if isinstance(source, str) else source) if s.strip()]
        if not items:
            raise UserError("--images needs 'samples', a folder or a comma list of image files")
        paths = [(Path(s).name, Path(s)) for s in items]
    images, skipped = [], []
    for name, path in paths:
        try:
            load_image(path, size)
        except UserError as exc:
            skipped.append((str(path), str(exc)))
            continue
        images.append(SweepImage(name, str(path), _sha(Path(path))))
    names = [i.name for i in images]
    if len(set(names)) != len(names):  # two files of one name in a comma list
        images = [SweepImage(i.path, i.path, i.sha256) for i in images]
    return sorted(images, key=lambda i: i.name), skipped


# --------------------------------------------------------------------------- the plan


@dataclass
class Sweep:
    """What to run: every image × model × checkpoint × layer, and how (size, seeds, preset, device)."""

    images: list[SweepImage]
    models: list[str]
    checkpoints: list[str]
    layers: str | list[str]
    size: int
    seeds: list[int]
    preset: Preset
    device: str = "cpu"
    init_seed: int = 0
    threads: int = 0  # CPU threads per run, fixed when the user gives a count; 0: each run follows the load (core.threads)
    batch_stops: str = "auto"  # a (model, checkpoint, image)'s stops as one optimisation (`core.studies.curve.batched`)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # images that could not be read
    notes: list[str] = field(default_factory=list)  # model x checkpoint pairs left out, and why

    @classmethod
    def create(cls, images: str | Sequence[str], models: Sequence[str], checkpoints: Sequence[str],
               layers: str | Sequence[str], size: int, seeds: Sequence[int], preset: Preset, device: str = "cpu",
               init_seed: int = 0, threads: int | None = None, batch_stops: str = "auto") -> "Sweep":
        """Validate the settings (sizes, names) and read the images once; raises UserError on bad settings.

        Args:
            images: "samples", a folder, or a comma list of files (see `find_images`).
            models, checkpoints: architecture names; "untrained", "trained" or state-dict paths.
            layers: "stops" (every depth stop of each model) or node names present in every model.
            size, seeds, preset, device, init_seed: as for `RunSpec.of` (device: "cpu", "cuda", ...).
            threads: CPU threads per run (default: `INVERSION_THREADS` or `OMP_NUM_THREADS` if set, else 0: each run
                follows the load as `core.threads` says; a count chosen once at the start ran a whole report on one
                thread of an idle machine, 1.6x slower). A count given is fixed for the whole sweep and the same
                on every backend: with 1 thread against 2, EfficientNet-Lite0's clarity after 200+ steps differed by
                up to 0.04 (rounding, amplified by the optimisation), so only equal counts give equal numbers.
            batch_stops: "on": the stops of one image, model and checkpoint run as one optimisation
                (`core.jobs.pipeline.run_stops`, the same results), "off" one by one, "auto" on for CUDA and,
                up to 64 px, on the CPU (`core.studies.curve.batched`).

        Returns:
            The Sweep (its `skipped` lists unreadable images).
        """
        models = [m.strip() for m in models if m.strip()]
        checkpoints = [c.strip() for c in checkpoints if c.strip()]
        if not models:
            raise UserError("--models needs at least one architecture (see `python -m core models`)")
        if not checkpoints:
            raise UserError("--checkpoints needs at least one of untrained, trained or a path")
        for m in models:
            get_architecture(m).check_size(size)
        found, skipped = find_images(images, size)
        if not found:
            raise UserError("no readable images: " + "; ".join(f"{p}: {r}" for p, r in skipped[:5]))
        dev = resolve_device(device).type
        batched(batch_stops, resolve_device(device))  # refuses a bad value before any run
        threads = int(threads or requested() or 0)
        if threads < 0:
            raise UserError(f"--threads must be at least 1 (got {threads})")  # 0 is the default's "follow the load"
        return cls(found, models, checkpoints, layers if isinstance(layers, str) else list(layers), int(size),
                   [int(s) for s in seeds], preset, dev, int(init_seed), threads, batch_stops, skipped)

    def plan(self, load=None) -> list[Task]:
        """Every task, models in order, then checkpoints, layers in forward order, images by name.

        `load(model, checkpoint, size, init_seed)` loads a model (default `core.models.checkpoints.load_model`).
        A checkpoint that cannot be loaded for a model (trained weights not on disk, a file that does not
        fit) is left out with a note in `self.notes`, not fatal: the rest of the sweep still runs."""
        load = load or load_model
        first = load_image(self.images[0].path, self.size)
        hashes = {i.path: image_hash(load_image(i.path, self.size)) for i in self.images}
        tasks, self.notes = [], []
        for arch in self.models:
            for ck in self.checkpoints:
                try:
                    model = load(arch, ck, self.size, self.init_seed)
                except UserError as exc:
                    self.notes.append(f"left out {arch} {ck}: {exc}")
                    continue
                n_stops = len(depth_stops(model))
                layers = None if self.layers == "stops" else self.layers
                for depth, node, label in resolve_layers(model, layers):
                    template = RunSpec.of(model, node, first, self.seeds, self.preset, self.device, checkpoint=ck)
                    for img in self.images:
                        tasks.append(Task(img, template.replace(image_hash=hashes[img.path]), label, depth,
                                          relative_depth(depth, n_stops)))
        if not tasks:
            raise UserError("nothing to run: " + "; ".join(self.notes or ["no model, checkpoint or layer"]))
        return tasks

    def to_dict(self) -> dict:
        return {"images": [i.__dict__ for i in self.images], "models": self.models, "checkpoints": self.checkpoints,
                "layers": self.layers, "size": self.size, "seeds": self.seeds, "preset": self.preset.to_dict(),
                "device": self.device, "init_seed": self.init_seed, "threads": self.threads,
                "batch_stops": self.batch_stops, "skipped": self.skipped,
                "notes": self.notes}


# --------------------------------------------------------------------------- the driver


@dataclass
class Outcome:
    """What a sweep did: rows (every task), how many were already done, ran and failed, and the time."""

    rows: list[dict]
    done_before: int
    ran: int
    failed: int
    seconds: float
    backend: str
    skipped: list[tuple[str, str]]
    notes: list[str]
    interrupted: bool = False
    retried: int = 0  # runs that came back from a Ray task retried after a lost worker or node

    @property
    def runs_per_second(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else float("nan")


class Ledger:
    """`DIR/runs.jsonl`: one line per run this sweep folder computed or failed (worker, device, seconds,
    error), appended as runs finish. The run cache holds the results; this holds who made them."""

    def __init__(self, out: Path):
        self.path = Path(out) / "runs.jsonl"
        self.entries: dict[str, dict] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    e = json.loads(line)
                    self.entries[e["key"] + "|" + e["image"]] = e
                except (ValueError, KeyError):
                    continue  # a line cut by a crash

    def add(self, task: Task, worker: str, device: str, seconds: float, error: str | None) -> None:
        e = {"key": task.spec.key(), "image": task.image.name, "worker": worker, "device": device,
             "seconds": seconds, "error": error}
        self.entries[e["key"] + "|" + e["image"]] = e
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(e) + "\n")
            f.flush()

    def get(self, task: Task) -> dict | None:
        return self.entries.get(task.spec.key() + "|" + task.image.name)


def run_sweep(sweep: Sweep, out: str | os.PathLike, backend: str = "local", cache=None,
              progress: Callable[[int, int, Task | None], None] | None = None, load=None,
              address: str | None = None, workers: int | None = None, gpus_per_run: float = 0.0,
              batch_size: int = 8, fault_marker: str | None = None, retry_failed: bool = False,
              on_start: Callable[[int, int], None] | None = None, quiet: bool = True) -> Outcome:
    """Run every task the cache lacks on `backend`, then collect a row per task from the cache.

    Args:
        sweep: what to run (`Sweep.create`).
        out: the sweep's folder: runs.jsonl (who made each run) grows there as runs finish;
            `core.report.sweep.write_sweep(outcome, sweep, out)` adds results.parquet, summary.csv, summary.html
            and sweep.json.
        backend: "local" (this process) or "ray" (`core.studies.sweep_ray`).
        cache: the run cache (default: `core.jobs.pipeline.default_cache()`).
        progress: `progress(done, total, task)` after each run this call makes (`total`: the runs to make).
        on_start: `on_start(tasks, to_run)` once planned, before any run ("N done, M to run").
        load: model loader (tests).
        address, workers, gpus_per_run, batch_size: Ray's cluster address (None: a local Ray), CPUs for a local
            Ray, GPUs each run declares (fractions share a GPU), runs per Ray task.
        fault_marker: tests only: the first Ray task to find this path missing creates it and kills its worker.
        retry_failed: run again the tasks that failed with a user error last time (default: keep their error).
        quiet: Ray's own messages stay in its logs (False shows them; `core.studies.sweep_ray._quiet`).

    Returns:
        An `Outcome`, also when the sweep is interrupted (Ctrl-C; `interrupted` is then True): nothing finished
        is lost, and its rows can be written like any other.

    Raises:
        SweepStopped: Ray lost the node, the connection or a task's retries; it says why and how many runs are
            stored, and carries the `Outcome` of what finished (`exc.outcome`). Running the same sweep again
            resumes: only the missing runs run.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = cache or default_cache()
    tasks = sweep.plan(load)
    ledger = Ledger(out)
    failed_before = {t for t in tasks if (e := ledger.get(t)) and e.get("error") and not retry_failed}
    todo = [t for t in tasks if t not in failed_before and not cache.path(t.spec.key()).exists()]
    done_before = len(tasks) - len(todo)
    if on_start:
        on_start(len(tasks), len(todo))
    ran = failed = retried = 0
    interrupted, stopped = False, None

    def finished(task: Task, result, error, seconds, device, worker):
        nonlocal ran, failed
        if result is not None:
            try:
                cache.put(task.spec.key(), result)
            except OSError as exc:
                error = f"could not store the result ({exc})"
        ran += 1
        failed += error is not None
        ledger.add(task, worker, device, seconds, error)
        if progress:
            progress(ran, len(todo), task)

    try:
        if backend == "local":
            _run_local(todo, finished, load, sweep.threads, sweep.batch_stops)
        elif backend == "ray":
            retried = run_ray(todo, finished, address=address, workers=workers, gpus_per_run=gpus_per_run,
                              batch_size=batch_size, fault_marker=fault_marker, threads=sweep.threads,
                              batch_stops=sweep.batch_stops, quiet=quiet)
        else:
            raise UserError(f"unknown backend {backend!r}: use local or ray")
    except KeyboardInterrupt:
        interrupted = True
    except SweepStopped as exc:
        stopped, retried = exc, exc.retried
    rows = collect(tasks, cache, ledger)
    outcome = Outcome(rows, done_before, ran, failed, time.perf_counter() - t0, backend, sweep.skipped, sweep.notes,
                      interrupted, retried)
    if stopped is not None:
        raise SweepStopped(stopped.cause, len(rows), len(tasks), outcome, retried) from None
    return outcome


def _run_local(todo: list[Task], finished, load=None, threads: int = 1, batch_stops: str = "off") -> None:
    load = load or load_model
    worker = worker_name()
    models: dict = {}
    for group in by_image(todo):  # the plan is grouped by model and checkpoint: one model in memory at a time
        spec = group[0].spec
        if group[0].group not in models:
            models.clear()
            models[group[0].group] = load(spec.model, spec.checkpoint, spec.size, spec.init_seed)
        t = time.perf_counter()
        outcomes = execute_stops(group, models[group[0].group], threads, batch_stops)
        each = (time.perf_counter() - t) / len(group)  # a batch's time, shared by its runs
        for task, (result, error) in zip(group, outcomes):
            finished(task, result, error, each, result.device if result else spec.device, worker)


def collect(tasks: Iterable[Task], cache, ledger: Ledger) -> list[dict]:
    """A row per task from the cache (and the ledger's worker/error); tasks not run yet are left out."""
    rows = []
    for task in tasks:
        entry = ledger.get(task) or {}
        result = cache.get(task.spec.key())
        if result is not None:
            rows.append(row_of(task, result, seconds=entry.get("seconds"), device=entry.get("device"),
                               worker=entry.get("worker") or "cache"))
        elif entry.get("error"):
            rows.append(row_of(task, None, error=entry["error"], seconds=entry.get("seconds"),
                               device=entry.get("device"), worker=entry.get("worker", "")))
    return rows


# --------------------------------------------------------------------------- summary and reading back


def _with_ci(name: str, rows: Sequence[dict]) -> dict:
    """A measure's mean over the rows and its 95% bootstrap interval (NaN where no row has it)."""
    v = [float(r[name]) for r in rows if r.get(name) is not None and np.isfinite(float(r[name]))]
    lo, hi = bootstrap_ci(v) if v else (float("nan"), float("nan"))
    return {f"{name}_mean": float(np.mean(v)) if v else float("nan"), f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def summarize(rows: Sequence[dict]) -> list[dict]:
    """One row per (model, checkpoint, layer): n images counted (converged runs only: `core.studies.stats.evidence`,
    the findings report's rule), mean clarity and each measure with its 95% bootstrap interval over them, their mean
    SSIM, and the fraction of the runs that converged. Failed runs count in `errors`."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["checkpoint"], r["layer"]), []).append(r)
    out = []
    for (model, ck, layer), rs in groups.items():
        ok = [r for r in rs if not r.get("error")]
        counted = evidence(ok)  # the intervals: converged runs only, as the findings report (core.studies.stats)
        clar = [r["clarity"] for r in counted]
        lo, hi = bootstrap_ci(clar)
        out.append({"model": model, "checkpoint": ck, "layer": layer, "label": rs[0]["label"], "depth": rs[0]["depth"],
                    "relative_depth": rs[0]["relative_depth"], "n": len(counted),
                    "clarity_mean": float(np.mean(clar)) if clar else float("nan"), "clarity_ci_low": lo,
                    "clarity_ci_high": hi,
                    "ssim_mean": float(np.mean([r["ssim_mean"] for r in counted])) if counted else float("nan"),
                    "converged_fraction": float(np.mean([bool(r["converged"]) for r in ok])) if ok else float("nan"),
                    "errors": len(rs) - len(ok),
                    **{k: v for name in MEASURES for k, v in _with_ci(name, counted).items()}})
    return sorted(out, key=lambda s: (s["model"], s["checkpoint"], s["depth"]))


def read_results(path: str | os.PathLike | bytes):
    """A results.parquet (a path or its bytes) as a pandas DataFrame, checked for the sweep's columns."""
    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"not a readable parquet file ({type(exc).__name__}: {str(exc)[:120]})") from None
    missing = [c for c in COLUMNS if c not in frame.columns and c not in OPTIONAL_COLUMNS]
    if missing:
        raise UserError(f"not a sweep's results.parquet: missing columns {', '.join(missing)}")
    return frame
