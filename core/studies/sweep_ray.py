"""The Ray backend of a sweep: batches of runs that share a model, as Ray tasks.

Learned from Ray's docs on tasks, resources and fault tolerance:
- one task = one batch of runs of one (model, checkpoint), so a worker loads each model once;
- tasks declare `num_gpus` (fractions allowed: several small runs share a GPU) or one CPU;
- a task lost with its worker (a killed process, a lost node) is retried by Ray (`max_retries`);
  a run that fails with a user error is returned as an error row and never retried;
- results come back to the driver as cache entries (bytes), so the driver's run cache holds them
  whether the workers share its disk or sit on other machines of a cluster.

Ray is optional (`requirements-sweep.txt`); without it `--backend ray` says how to install it.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Callable, Sequence

from core import paths
from core.errors import UserError
from core.jobs.cache import decode_result, encode_result
from core.models.checkpoints import load_model
from core.studies.sweep_tasks import by_image, execute_stops, worker_name

ROOT = str(paths.ROOT)
MAX_RETRIES = 3  # per task, for system failures (a worker that died); user errors are not retried


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray: pip install -r requirements-sweep.txt") from None
    return ray


def _batch(tasks: Sequence, fault_marker: str | None = None, threads: int = 1,
           batch_stops: str = "off") -> list[tuple]:
    """Runs one batch in a Ray worker: (task index, cache entry bytes or None, error, seconds, device, worker)."""
    if fault_marker and not os.path.exists(fault_marker):  # tests: this worker dies once, mid-sweep
        open(fault_marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    first = tasks[0][1].spec
    model = load_model(first.model, first.checkpoint, first.size, first.init_seed)
    out = []
    index_of = {id(task): index for index, task in tasks}
    for group in by_image([task for _, task in tasks]):
        t = time.perf_counter()
        outcomes = execute_stops(group, model, threads, batch_stops)
        each = (time.perf_counter() - t) / len(group)  # a batch's time, shared by its runs
        for task, (result, error) in zip(group, outcomes):
            out.append((index_of[id(task)], encode_result(result) if result is not None else None, error, each,
                        result.device if result is not None else task.spec.device, worker_name()))
    return out


def batches(todo: Sequence, batch_size: int) -> list[list[tuple]]:
    """(index, task) lists of about `batch_size` runs, each of one (model, checkpoint); one image's stops stay
    in one list (so they can run as one optimisation), even when they are more than `batch_size`."""
    index_of = {id(task): i for i, task in enumerate(todo)}
    out, current, group = [], [], None
    for stops in by_image(todo):
        if current and (stops[0].group != group or len(current) + len(stops) > batch_size):
            out.append(current)
            current = []
        group = stops[0].group
        current.extend((index_of[id(t)], t) for t in stops)
    if current:
        out.append(current)
    return out


def run_ray(todo: Sequence, finished: Callable, address: str | None = None, workers: int | None = None,
            gpus_per_run: float = 0.0, batch_size: int = 8, fault_marker: str | None = None,
            threads: int = 1, batch_stops: str = "off") -> None:
    """Run `todo` on Ray, calling `finished(task, result, error, seconds, device, worker)` as batches return.

    Without `address` a local Ray is started on 127.0.0.1 with `workers` CPUs (default: all) and shut
    down at the end; with one, the sweep joins that cluster (`ray start --head`, Slurm, Kubernetes).
    A CPU task declares `threads` CPUs and runs on that many threads, as the local backend does."""
    if not todo:
        return
    ray = _import_ray()

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, _node_ip_address="127.0.0.1",
                     log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": ROOT}})  # workers import this project's `core`
        started = True
    try:
        resources = {"num_gpus": gpus_per_run} if gpus_per_run else {"num_cpus": threads}
        remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False, **resources)(_batch)
        pending = {remote.remote(b, fault_marker, threads, batch_stops): b for b in batches(todo, batch_size)}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    pending.pop(ref)
                    for index, data, error, seconds, device, worker in ray.get(ref):
                        result = decode_result(data) if data is not None else None
                        finished(todo[index], result, error, seconds, device, worker)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
