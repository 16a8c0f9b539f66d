"""The Ray backend of a sweep: batches of runs that share a model, as Ray tasks.

Learned from Ray's docs on tasks, resources and fault tolerance:
- one task = one batch of runs of one (model, checkpoint), so a worker loads each model once;
- tasks declare `num_gpus` (fractions allowed: several small runs share a GPU) or one CPU;
- a task lost with its worker (a killed process, a lost node) is retried by Ray (`max_retries`, on the
  nodes that remain; retries are counted); a run that fails with a user error is returned as an error row
  and never retried (`retry_exceptions=False`);
- a lost local node, a lost connection or a task out of retries stops the sweep with `SweepStopped`,
  its cause in words (`lost_cause`); what finished is stored, so the same sweep again resumes;
- results come back to the driver as cache entries (bytes), so the driver's run cache holds them
  whether the workers share its disk or sit on other machines of a cluster.

Ray is optional (`requirements-sweep.txt`); without it `--backend ray` says how to install it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from contextlib import contextmanager, suppress
from typing import Callable, Sequence

from core import paths
from core.errors import SweepStopped, UserError
from core.jobs.cache import decode_result, encode_result
from core.models.checkpoints import load_model
from core.studies.sweep_tasks import by_image, execute_stops, worker_name

ROOT = str(paths.ROOT)
MAX_RETRIES = 3  # per task, for system failures (its worker or node lost); user errors are not retried


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray: pip install -r requirements-sweep.txt") from None
    return ray


def _attempt() -> int:
    """Which try of its task this is (0: the first; more: Ray retried it after a lost worker or node)."""
    try:
        from ray._private.worker import global_worker  # no public API for it (Ray 2.x)

        return int(global_worker.core_worker.get_current_task_attempt_number())
    except Exception:  # noqa: BLE001 - an older or newer Ray: count no retries rather than fail the run
        return 0


def _batch(tasks: Sequence, fault_marker: str | None = None, threads: int = 1,
           batch_stops: str = "off") -> tuple[int, list[tuple]]:
    """Runs one batch in a Ray worker: (the task's try, [(task index, cache entry bytes or None, error, seconds,
    device, worker)])."""
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
    return _attempt(), out


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


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def lost_cause(exc: BaseException, address: str | None = None) -> str | None:
    """What a Ray failure that stops a sweep means, in words; None for anything else (an error raised by the
    sweep's own code in a task is a bug and keeps its traceback). The one place Ray's exceptions are read."""
    errors = getattr(sys.modules.get("ray"), "exceptions", None)
    if errors is not None and isinstance(exc, errors.RayTaskError):
        return None  # the task's own code raised (its class may also be a ConnectionError's: not the cluster's)
    where = f"the Ray cluster at {address}" if address else "the local Ray"
    if isinstance(exc, ConnectionError):
        return f"lost the connection to {where} ({_short(exc)})"
    if errors is None:
        return None
    tries = f"{MAX_RETRIES + 1} tries"
    if isinstance(exc, errors.LocalRayletDiedError):
        return "this machine's Ray node died (its raylet stopped: killed, out of memory or crashed)"
    if isinstance(exc, errors.NodeDiedError):
        return f"a Ray node died or became unreachable and a task on it ran out of retries ({tries}; {_short(exc)})"
    if isinstance(exc, errors.OutOfMemoryError):
        return "a Ray task was killed for lack of memory on its node and ran out of retries"
    if isinstance(exc, errors.WorkerCrashedError):
        return f"a Ray task ran out of retries: its worker died on all {tries} (killed, out of memory or crashed)"
    if isinstance(exc, errors.ObjectLostError):
        return "a finished Ray task's result was lost with its node"
    if isinstance(exc, errors.RpcError):
        return f"lost the connection to {where} ({_short(exc)})"
    if isinstance(exc, errors.RaySystemError):
        return f"Ray failed on {where} ({_short(exc)})"
    return None


def _task_lost(exc: BaseException) -> bool:
    """A failure of one task (the rest of the sweep can go on), not of the cluster."""
    errors = sys.modules["ray"].exceptions
    return isinstance(exc, (errors.NodeDiedError, errors.OutOfMemoryError, errors.WorkerCrashedError,
                            errors.ObjectLostError))


@contextmanager
def _quiet(on: bool):
    """Ray's own messages to the driver (a dead raylet's last log lines, a killed worker's warning, notes at start)
    are left to its session logs (/tmp/ray/session_latest/logs) while the sweep runs: the sweep says in one line
    what happened. `on=False` (CORE_DEBUG=1 on the command line) shows them."""
    if not on:
        yield
        return
    log = logging.getLogger("ray")
    worker = sys.modules.get("ray._private.worker")
    handlers, level, logs = log.handlers[:], log.level, getattr(worker, "_worker_logs_enabled", None)
    log.setLevel(logging.CRITICAL + 1)  # a level, not a handler: ray.init(configure_logging=False) drops handlers
    if logs is not None:
        worker._worker_logs_enabled = False  # the driver's printer of the cluster's error messages (no public switch)
    try:
        yield
    finally:
        log.handlers[:] = handlers
        log.setLevel(level)
        if logs is not None:
            worker._worker_logs_enabled = logs


def run_ray(todo: Sequence, finished: Callable, address: str | None = None, workers: int | None = None,
            gpus_per_run: float = 0.0, batch_size: int = 8, fault_marker: str | None = None,
            threads: int = 1, batch_stops: str = "off", quiet: bool = True) -> int:
    """Run `todo` on Ray, calling `finished(task, result, error, seconds, device, worker)` as batches return.

    Without `address` a local Ray is started on 127.0.0.1 with `workers` CPUs (default: all) and shut
    down at the end; with one, the sweep joins that cluster (`ray start --head`, Slurm, Kubernetes).
    A CPU task declares `threads` CPUs and runs on that many threads, as the local backend does (0, the local
    default "follow the load": one CPU and one thread a task, Ray running as many tasks as there are CPUs).

    Returns how many runs came back from a retried task (Ray retries a task lost with its worker or node up to
    `MAX_RETRIES` times, on the nodes that remain). Raises `SweepStopped` (its `cause` from `lost_cause`, its
    `retried` so far) when the node, the connection or a task's retries are lost; a task out of retries lets
    the others finish first. Other errors propagate."""
    if not todo:
        return 0
    threads = max(1, int(threads))  # 0 ("follow the load" locally): a task on one CPU, one thread
    own = sorted({t.spec.model for t in todo if str(t.spec.model).startswith(("file:", "module:"))})
    if own:  # a worker process has only the registry it imports: your network lives in this process
        raise UserError(f"{', '.join(own)}: your own network runs with the local backend (--backend local); on Ray, "
                        "register it in every worker with an INVERSION_MODELS file of register_model calls instead")
    ray = _import_ray()
    retried, lost, started, pending = 0, [], False, {}
    with _quiet(quiet):
        try:
            if not ray.is_initialized():
                if address:
                    ray.init(address=address, log_to_driver=False, configure_logging=not quiet)
                else:
                    ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                             _node_ip_address="127.0.0.1", log_to_driver=False, configure_logging=False,
                             runtime_env={"env_vars": {"PYTHONPATH": ROOT}})  # workers import this project's `core`
                started = True
            resources = {"num_gpus": gpus_per_run} if gpus_per_run else {"num_cpus": threads}
            remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False, **resources)(_batch)
            pending = {remote.remote(b, fault_marker, threads, batch_stops): b for b in batches(todo, batch_size)}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    pending.pop(ref)
                    try:
                        attempt, rows = ray.get(ref)
                    except Exception as exc:
                        if not _task_lost(exc):
                            raise
                        lost.append(exc)  # its runs stay missing; the other tasks go on
                        continue
                    retried += len(rows) if attempt else 0
                    for index, data, error, seconds, device, worker in rows:
                        result = decode_result(data) if data is not None else None
                        finished(todo[index], result, error, seconds, device, worker)
        except KeyboardInterrupt:
            for ref in pending:
                with suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        except Exception as exc:
            cause = lost_cause(exc, address)
            if cause is None:
                raise
            raise SweepStopped(cause, retried=retried) from None
        finally:
            if started:
                with suppress(Exception):  # after a lost node, shutting down may fail too: nothing left to lose
                    ray.shutdown()
    if lost:
        more = f" (and {len(lost) - 1} more tasks)" if len(lost) > 1 else ""
        raise SweepStopped(lost_cause(lost[0], address) + more, retried=retried)
    return retried
