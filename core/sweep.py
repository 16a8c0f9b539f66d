"""Sweeps: clarity over many images, models, checkpoints and layers, with confidence intervals.

Every (image, model, checkpoint, layer) is one `RunSpec` through `core.jobs.run`; finished runs
land in the run cache, so a sweep is resumable by construction: rerunning it runs only the
specs the cache lacks, and stopping it (Ctrl-C, a lost machine) loses no finished run. Two
backends run the same specs: `local` (this process, on its device) and `ray` (Ray tasks, each
a batch of runs that share a model, so a worker loads each model once; see `core.sweep_ray`).

    sweep = Sweep.create(images="samples", models=["resnet18"], checkpoints=["untrained"],
                         layers="stops", size=32, seeds=[0, 1], preset=get_preset("default"))
    outcome = run_sweep(sweep, out="runs/sweep")      # results.parquet, summary.csv, summary.html
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from core.errors import UserError
from core.jobs import RunSpec
from core.presets import Preset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
COLUMNS = ["image", "image_sha256", "model", "checkpoint", "layer", "label", "depth", "relative_depth", "clarity",
           "ssim_mean", "psnr_mean", "input_l2_mean", "embedding_l2_mean", "reference_l2", "converged", "status",
           "steps_done", "seconds", "device", "worker", "key", "error"]
SUMMARY_COLUMNS = ["model", "checkpoint", "layer", "label", "depth", "relative_depth", "n", "clarity_mean",
                   "clarity_ci_low", "clarity_ci_high", "ssim_mean", "converged_fraction", "errors"]


def relative_depth(depth: float, n_stops: int) -> float:
    """Where a stop sits between the input (0) and the logits (1): (stop index + 1) / number of stops.
    Every architecture's last depth stop is its logits; other graph nodes sit half a stop after one."""
    return float(min(1.0, max(0.0, (depth + 1) / max(1, n_stops))))


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class SweepImage:
    name: str  # the path relative to the folder (or the sample's name): unique within a sweep
    path: str
    sha256: str  # of the file's bytes


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
    from core.images import load_image, sample_images

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
    threads: int = 1  # CPU threads per run, fixed: the thread count changes float rounding, which long runs amplify
    batch_stops: str = "auto"  # a (model, checkpoint, image)'s stops as one optimisation (`core.curve.batched`)
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
            threads: CPU threads per run (default: this machine's cores). Fixed for the whole sweep and the same
                on every backend: with 1 thread against 2, EfficientNet-Lite0's clarity after 200+ steps differed by
                up to 0.04 (rounding, amplified by the optimisation), so only equal counts give equal numbers.
            batch_stops: "on": the stops of one image, model and checkpoint run as one optimisation
                (`core.jobs.run_stops`, the same results), "off" one by one, "auto" on for CUDA.

        Returns:
            The Sweep (its `skipped` lists unreadable images).
        """
        from core.architectures import get_architecture
        from core.curve import batched
        from core.devices import cpu_cores, resolve_device

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
        threads = int(threads or cpu_cores())
        if threads < 1:
            raise UserError(f"--threads must be at least 1 (got {threads})")
        return cls(found, models, checkpoints, layers if isinstance(layers, str) else list(layers), int(size),
                   [int(s) for s in seeds], preset, dev, int(init_seed), threads, batch_stops, skipped)

    def plan(self, load=None) -> list[Task]:
        """Every task, models in order, then checkpoints, layers in forward order, images by name.

        `load(model, checkpoint, size, init_seed)` loads a model (default `core.checkpoints.load_model`).
        A checkpoint that cannot be loaded for a model (trained weights not on disk, a file that does not
        fit) is left out with a note in `self.notes`, not fatal: the rest of the sweep still runs."""
        from core.checkpoints import load_model
        from core.curve import resolve_layers
        from core.encoder import depth_stops
        from core.images import load_image
        from core.runcache import image_hash

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


# --------------------------------------------------------------------------- one task (both backends)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def row_of(task: Task, result=None, error: str | None = None, seconds: float | None = None,
           device: str | None = None, worker: str = "") -> dict:
    """One parquet row: the task's coordinates and, when it finished, its numbers (NaN where it failed)."""
    from core.verdict import status

    base = {"image": task.image.name, "image_sha256": task.image.sha256, "model": task.spec.model,
            "checkpoint": task.spec.checkpoint, "layer": task.spec.layer, "label": task.label,
            "depth": float(task.depth), "relative_depth": task.relative_depth, "key": task.spec.key(),
            "worker": worker, "error": error}
    if result is None:
        nan = float("nan")
        return {**base, "clarity": nan, "ssim_mean": nan, "psnr_mean": nan, "input_l2_mean": nan,
                "embedding_l2_mean": nan, "reference_l2": nan, "converged": False, "status": "error",
                "steps_done": 0, "seconds": float(seconds or 0.0), "device": device or ""}
    m = result.metrics

    def mean(v):
        return float(np.mean(v))

    return {**base, "clarity": float(m["clarity"]), "ssim_mean": mean(m["ssim"]), "psnr_mean": mean(m["psnr"]),
            "input_l2_mean": mean(m["input_l2"]), "embedding_l2_mean": mean(m["embedding_l2"]),
            "reference_l2": float(m["reference_l2"]), "converged": bool(all(m["converged"])), "status": status(m),
            "steps_done": int(result.steps_done), "seconds": float(result.seconds if seconds is None else seconds),
            "device": device or result.device}


def _speed(spec, threads: int):
    """A sweep run's speed options: a fixed thread count on the CPU (equal numbers on every backend), else auto."""
    from core.speed import SpeedOptions

    return SpeedOptions(threads=threads) if spec.device == "cpu" else SpeedOptions.auto(spec.device)


def execute(task: Task, model, threads: int = 1) -> tuple[object, str | None]:
    """Run one task through `core.jobs.run` without the cache (the caller stores it), on `threads` CPU threads:
    (result, None) or (None, error text) for a run that fails with a user error; other errors propagate."""
    from core.images import load_image
    from core.jobs import run

    speed = _speed(task.spec, threads)
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
    """Run the tasks of one `by_image` group: as one optimisation (`core.jobs.run_stops`) when `batch_stops`
    says so for their device, else one by one (`execute`). Returns (result, error) per task, in order; a
    user error in the batch sends each task through `execute`, so the failing one is named alone."""
    from core.curve import batched
    from core.devices import resolve_device
    from core.images import load_image
    from core.jobs import run_stops

    tasks = list(tasks)
    spec = tasks[0].spec
    if len(tasks) > 1 and batched(batch_stops, resolve_device(spec.device)):
        speed = _speed(spec, threads)
        try:
            image = load_image(tasks[0].image.path, spec.size)
            jobs = run_stops([t.spec for t in tasks], image, model, use_cache=False, speed=speed)
            return [(j.result, None) for j in jobs]
        except UserError:
            pass
    return [execute(t, model, threads) for t in tasks]


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
              on_start: Callable[[int, int], None] | None = None) -> Outcome:
    """Run every task the cache lacks on `backend`, then write the results and their summary into `out`.

    Args:
        sweep: what to run (`Sweep.create`).
        out: the folder for results.parquet, summary.csv, summary.html, runs.jsonl and sweep.json.
        backend: "local" (this process) or "ray" (`core.sweep_ray`).
        cache: the run cache (default: `core.jobs.default_cache()`).
        progress: `progress(done, total, task)` after each run this call makes (`total`: the runs to make).
        on_start: `on_start(tasks, to_run)` once planned, before any run ("N done, M to run").
        load: model loader (tests).
        address, workers, gpus_per_run, batch_size: Ray's cluster address (None: a local Ray), CPUs for a local
            Ray, GPUs each run declares (fractions share a GPU), runs per Ray task.
        fault_marker: tests only: the first Ray task to find this path missing creates it and kills its worker.
        retry_failed: run again the tasks that failed with a user error last time (default: keep their error).

    Returns:
        An `Outcome`. Rows are also written when the sweep is interrupted (Ctrl-C): nothing finished is lost.
    """
    from core.jobs import default_cache

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
    ran = failed = 0
    interrupted = False

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
            from core.sweep_ray import run_ray

            run_ray(todo, finished, address=address, workers=workers, gpus_per_run=gpus_per_run,
                    batch_size=batch_size, fault_marker=fault_marker, threads=sweep.threads,
                    batch_stops=sweep.batch_stops)
        else:
            raise UserError(f"unknown backend {backend!r}: use local or ray")
    except KeyboardInterrupt:
        interrupted = True
    rows = collect(tasks, cache, ledger)
    outcome = Outcome(rows, done_before, ran, failed, time.perf_counter() - t0, backend, sweep.skipped, sweep.notes,
                      interrupted)
    write(outcome, sweep, out)
    return outcome


def _run_local(todo: list[Task], finished, load=None, threads: int = 1, batch_stops: str = "off") -> None:
    from core.checkpoints import load_model

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


# --------------------------------------------------------------------------- summary and files


def bootstrap_ci(values: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of the mean over `values` (the images); one value gives (v, v)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def summarize(rows: Sequence[dict]) -> list[dict]:
    """One row per (model, checkpoint, layer): n images, mean clarity with its 95% bootstrap interval over
    images, mean SSIM and the fraction of runs that converged. Failed runs count in `errors`, not in the means."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["checkpoint"], r["layer"]), []).append(r)
    out = []
    for (model, ck, layer), rs in groups.items():
        ok = [r for r in rs if not r.get("error")]
        clar = [r["clarity"] for r in ok]
        lo, hi = bootstrap_ci(clar)
        out.append({"model": model, "checkpoint": ck, "layer": layer, "label": rs[0]["label"], "depth": rs[0]["depth"],
                    "relative_depth": rs[0]["relative_depth"], "n": len(ok),
                    "clarity_mean": float(np.mean(clar)) if clar else float("nan"), "clarity_ci_low": lo,
                    "clarity_ci_high": hi, "ssim_mean": float(np.mean([r["ssim_mean"] for r in ok])) if ok else float("nan"),
                    "converged_fraction": float(np.mean([r["converged"] for r in ok])) if ok else float("nan"),
                    "errors": len(rs) - len(ok)})
    return sorted(out, key=lambda s: (s["model"], s["checkpoint"], s["depth"]))


def summary_figure(summary: Sequence[dict], title: str | None = None):
    """Mean clarity ± its 95% interval over images, per model and checkpoint, against relative depth."""
    import plotly.graph_objects as go

    from core.report import PALETTE

    fig = go.Figure()
    lines = list(dict.fromkeys((s["model"], s["checkpoint"]) for s in summary))
    for i, (model, ck) in enumerate(lines):
        mine = sorted((s for s in summary if (s["model"], s["checkpoint"]) == (model, ck)),
                      key=lambda s: s["relative_depth"])
        xs = [s["relative_depth"] for s in mine]
        color = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=xs + xs[::-1], y=[s["clarity_ci_high"] for s in mine]
                                 + [s["clarity_ci_low"] for s in mine][::-1], fill="toself", mode="lines",
                                 line={"width": 0}, fillcolor=color, opacity=0.2, hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(
            x=xs, y=[s["clarity_mean"] for s in mine], mode="lines+markers", name=f"{model} · {ck}",
            line={"color": color}, customdata=[[s["label"], s["layer"], s["n"], s["clarity_ci_low"], s["clarity_ci_high"],
                                                s["converged_fraction"]] for s in mine],
            hovertemplate="%{customdata[0]} (%{customdata[1]})<br>clarity %{y:.3f} "
                          "[%{customdata[3]:.3f}, %{customdata[4]:.3f}] over %{customdata[2]} images<br>"
                          "converged %{customdata[5]:.0%}<extra>" + f"{model} · {ck}" + "</extra>"))
    fig.update_layout(title=title, template="plotly_white", xaxis={"title": "relative depth (0 = input, 1 = logits)",
                                                                   "range": [0, 1.02]},
                      yaxis={"title": "clarity: mean and 95% bootstrap interval over images"},
                      legend={"orientation": "h", "y": 1.1}, margin={"l": 60, "r": 20, "t": 70, "b": 60})
    return fig


def write(outcome: Outcome, sweep: Sweep, out: Path) -> None:
    """results.parquet (a row per run), summary.csv, summary.html and sweep.json (settings, skipped, notes)."""
    import pandas as pd

    from core.atomic import atomic_write

    frame = pd.DataFrame(outcome.rows, columns=COLUMNS)
    tmp = out / ".results.parquet.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, out / "results.parquet")
    summary = summarize(outcome.rows)
    atomic_write(out / "summary.csv", pd.DataFrame(summary, columns=SUMMARY_COLUMNS).to_csv(index=False))
    n_images = len({r["image"] for r in outcome.rows})
    title = (f"{', '.join(sweep.models)} · {', '.join(sweep.checkpoints)} · {n_images} images · {sweep.size} px · "
             f"{len(sweep.seeds)} seeds · {sweep.preset.name} preset")
    html = summary_figure(summary, title).to_html(include_plotlyjs=True, full_html=True)
    atomic_write(out / "summary.html", html)
    meta = {**sweep.to_dict(), "backend": outcome.backend, "done_before": outcome.done_before, "ran": outcome.ran,
            "failed": outcome.failed, "seconds": round(outcome.seconds, 3), "interrupted": outcome.interrupted}
    atomic_write(out / "sweep.json", json.dumps(meta, indent=1, default=str))


def read_results(path: str | os.PathLike | bytes):
    """A results.parquet (a path or its bytes) as a pandas DataFrame, checked for the sweep's columns."""
    import io

    import pandas as pd

    try:
        frame = pd.read_parquet(io.BytesIO(path) if isinstance(path, (bytes, bytearray)) else path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"not a readable parquet file ({type(exc).__name__}: {str(exc)[:120]})") from None
    missing = [c for c in COLUMNS if c not in frame.columns and c not in ("label", "status", "key", "error")]
    if missing:
        raise UserError(f"not a sweep's results.parquet: missing columns {', '.join(missing)}")
    return frame


def torch_threads_note() -> str:
    return f"{torch.get_num_threads()} torch threads"
