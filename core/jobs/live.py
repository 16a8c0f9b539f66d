"""A run a person drives: Run, Stop, Finish and Continue, for one run or a side-by-side pair.

A caller that can be interrupted at any step (a Streamlit page reruns its script on every click) keeps one
`LiveRun` across interruptions. It holds the rows on display and the attempt in progress. After an
interruption, `salvage` makes what was computed the shown result (stopped part-way); `go` finishes it or
continues it, carrying the optimiser's state on while the engine's run is still in memory. Every row runs
through `core.jobs.pipeline.run`; a pair takes the device's queue once, so no other session's run slips
between its rows.

    live = LiveRun()
    live.go(image, [LiveRow(spec, model, "trained")])    # interrupted part-way (the page's Stop)...
    live.salvage()                                   # ...the rows show what was computed
    live.go(image, more=100)                         # Finish (it was stopped), else Continue +100
"""

from __future__ import annotations

import logging
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from core.devices import describe, is_oom, resolve_device
from core.engine.loop import Inversion
from core.engine.result import InversionResult
from core.errors import UserError
from core.jobs.pipeline import Callbacks, Job, default_cache, device_slot, run
from core.jobs.spec import RunSpec

log = logging.getLogger("inversion.jobs")


@dataclass
class LiveRow:
    """One run of a `LiveRun`: what it computes, its result once it has one, and the engine's run behind it.

    `run` is kept only while in memory and only for the result it produced (or is producing), so going on
    from it carries the optimiser's state; a cached result has none, and its continuation computes it again."""

    spec: RunSpec
    model: Any
    label: str = ""
    result: InversionResult | None = None
    notes: list[str] = field(default_factory=list)
    run: Inversion | None = field(default=None, repr=False)

    @property
    def stopped(self) -> bool:
        """Whether its result was stopped part-way (Finish goes on from it)."""
        return self.result is not None and self.result.stopped_early


class LiveRun:
    """The rows on display (`rows`: one run, or a pair) and the attempt in progress, kept across interruptions.

    The rules:
    - An error (divergence, bad input, out of memory) drops the attempt: the rows shown before stay shown.
    - An interruption (any `BaseException` that is not an `Exception`, such as Streamlit's rerun) keeps the
      attempt; `salvage` then shows each row that computed at least one step, and the rows before the first
      such row stay as they were when none did.
    - `go(more=n)` finishes the rows stopped part-way when any is, else continues every row by `n` steps.
    """

    def __init__(self) -> None:
        self.rows: list[LiveRow] = []
        self.meta: dict = {}  # what the caller needs to show the rows again (an image's name, a note)
        self._attempt: tuple[list[LiveRow], dict] | None = None

    @property
    def stopped(self) -> bool:
        """Whether a shown row was stopped part-way: then `go(more=…)` finishes it."""
        return any(r.stopped for r in self.rows)

    @property
    def running(self) -> bool:
        """Whether an attempt was interrupted and not yet salvaged."""
        return self._attempt is not None

    @property
    def spec(self) -> RunSpec | None:
        """The first shown row's spec (a page's link describes it), or None."""
        return self.rows[0].spec if self.rows else None

    def plan(self, rows: list[LiveRow] | None = None, more: int = 0) -> list[LiveRow]:
        """The rows `go` would run: `rows` as given, or with `more` the shown rows finished or continued.

        A stopped row goes on with its own spec; while finishing, a finished row is kept as it is. Continuing,
        each row's spec gets `more` steps (`RunSpec.then`). The engine's run is carried over where it is still
        in memory."""
        if not more:
            return [LiveRow(r.spec, r.model, r.label) for r in rows or []]
        if not self.rows:
            raise UserError("there is no shown run to go on from: press Run first")
        if self.stopped:
            return [LiveRow(r.spec, r.model, r.label, run=r.run) if r.stopped else r for r in self.rows]
        return [LiveRow(r.spec.then(more), r.model, r.label, run=r.run) for r in self.rows]

    def go(self, image, rows: list[LiveRow] | None = None, *, more: int = 0, meta: dict | None = None, cache=None,
           callbacks: Callable[[int, LiveRow], Callbacks] | None = None, on_row: Callable[[int, LiveRow, Job], None] | None = None,
           waiting: Callbacks | None = None, estimate=None, every: int | None = None) -> list[Job]:
        """Run `rows` (or, with `more` > 0, go on with the shown rows: `plan`) and show them once all finished.

        Args:
            image: the image all rows' specs were built from.
            rows: the new rows (ignored when `more` > 0).
            more: steps to continue by; > 0 finishes stopped rows instead when there are any.
            meta: what the caller needs to show the rows again; kept as `self.meta` with them.
            cache: the run cache (default: `core.jobs.pipeline.default_cache()`).
            callbacks: `callbacks(i, row)` -> the hooks of row `i`'s run (its live view).
            on_row: called as each row finishes (a page draws the first row while the second runs).
            waiting: `wait` and `ahead` hooks while a pair waits for the device's queue.
            estimate: one row's measured `Estimate`, or None; a Continue's steps are not what it measured.
            every: steps between snapshots.

        Returns:
            One `Job` per row that ran (a finished row kept while finishing has none).

        Raises:
            UserError: out of memory even with one seed per batch, or bad input; the shown rows stay.
            DivergenceError: a row diverged; the shown rows stay.
        """
        plan = self.plan(rows, more)
        cache = cache or default_cache()
        todo = [(i, r) for i, r in enumerate(plan) if r.result is None]
        self._attempt = (plan, dict(meta or {}))
        est = None if more else estimate
        jobs: list[Job] = []
        try:
            computes = any(cache.get(r.spec.key()) is None for _, r in todo)
            pair = len(todo) > 1
            slot = (device_slot(todo[0][1].spec, waiting, seconds=None if est is None else est.seconds * len(todo))
                    if pair and computes else nullcontext())
            with slot:
                for i, row in todo:
                    jobs.append(self._run_row(i, row, image, cache, callbacks, est, every, queue=not pair))
                    if on_row:
                        on_row(i, row, jobs[-1])
        except Exception as exc:
            self._attempt = None
            if isinstance(exc, RuntimeError) and is_oom(exc):
                raise UserError(f"out of memory even with one seed per batch on "
                                f"{describe(resolve_device(plan[0].spec.device))}: use a smaller image size, an "
                                "earlier layer or fewer seeds") from None
            raise
        self._show(plan, self._attempt[1])
        return jobs

    def _run_row(self, i: int, row: LiveRow, image, cache, callbacks, est, every, queue: bool) -> Job:
        cb = callbacks(i, row) if callbacks else Callbacks()
        theirs = cb.start

        def start(inv: Inversion) -> None:
            row.run = inv  # what an interruption leaves is this run's
            if theirs:
                theirs(inv)

        job = run(row.spec, image, row.model, cache=cache, callbacks=replace(cb, start=start), every=every,
                  live=row.run, queue=queue, estimate=est)
        row.spec, row.result, row.notes = job.spec, job.result, list(job.notes)
        if job.batches and len(job.batches) > 1:
            row.notes.append(batches_text(job))
        if job.cached:
            row.run = None
        elif job.run is not None:
            row.run = job.run
        return job

    def salvage(self) -> bool:
        """After an interruption, show what the attempt computed; returns whether the shown rows changed.

        Each row shows its finished result, or the part-way result of the run it was computing (the run says
        which spec that was: a Continue may have been computing the run it goes on from again). Rows from the
        first one with nothing computed on are dropped."""
        if self._attempt is None:
            return False
        plan, meta = self._attempt
        self._attempt = None
        kept: list[LiveRow] = []
        for row in plan:
            if row.result is None:
                inv = row.run
                if inv is None or inv.steps_done == 0:
                    break
                if inv.step_encoder is not None:
                    inv.step_encoder.release()  # a stopped run kept for Finish holds no graph memory
                try:
                    row.result = inv.result()
                except Exception:  # noqa: BLE001 - a run that cannot say its result is dropped, not shown
                    log.error("could not salvage a stopped run\n%s", traceback.format_exc())
                    break
                if inv.spec is not None:
                    row.spec = inv.spec
            kept.append(row)
        if not kept:
            return False
        self._show(kept, meta)
        return True

    def _show(self, rows: list[LiveRow], meta: dict) -> None:
        for old in self.rows:  # runs no shown row goes on from: their graph memory is released now
            if old.run is not None and all(old.run is not r.run for r in rows) and old.run.step_encoder is not None:
                old.run.step_encoder.release()
        self.rows, self.meta = rows, meta

    def clear(self) -> None:
        """Show nothing and release every run held in memory."""
        self._show([], {})
        self._attempt = None


def batches_text(job: Job) -> str:
    """"finished in 2 batches of at most 1 seeds": a run split to fit the device's memory says so with its result."""
    return (f"finished in {len(job.batches)} batches of at most {max(len(c) for c in job.batches)} seeds"
            + (" on the CPU (the GPU had too little memory)" if job.fell_back_to_cpu else ""))
