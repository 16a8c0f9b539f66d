"""Check the paper: plan the runs the findings need, run what the cache lacks, and judge each finding on the rows
(`core.studies.verdicts`).

Findings 1-4 and the ViT claim (7) come from the clarity at every depth stop of every image, model and checkpoint:
one sweep per image size (`core.studies.sweep`), cached under each spec's key, so a rerun, or a report on more
images, runs only what is missing, and a model's stops run as one optimisation on CUDA and, up to 64 px, on the CPU
(`batch_stops`, the same numbers). Finding 5 inverts generated inputs at each model's deep stops and finding 6 the
lab's MLPs (`core.studies.findings_runs`), through the same pipeline and cache, on the sweeps' CPU thread count. A
plan may hold only some findings (`findings=("4",)`): it runs only what those need. An unconverged run never
counts as evidence (the verdicts leave it out and say how many they left out; finding 6's rank-deficient
Jacobians, an exact proof of non-uniqueness, are the one exception).

    report = run_findings(FindingsPlan.create("samples", ["efficientnet_lite0"], ["untrained", "trained"], [64],
                                              seeds=[0, 1], preset=get_preset("default")), out="runs/findings")
    [(v.id, v.verdict) for v in report.verdicts]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from core.errors import SweepStopped, UserError
from core.recipe.presets import Preset
from core.studies.findings_runs import lab_rows, manifold_rows
from core.studies.sweep import Outcome, Sweep, run_sweep
from core.studies.verdicts import (FINDINGS, PAIRED, RUNS, UNTRAINED_ONLY, Verdict, evaluate, finding_6, is_vit,
                                   runs_of)

SWEEP_FINDINGS = runs_of("sweep")  # read the clarity sweep over every depth stop
INTERRUPTED = "interrupted before its runs finished: the runs it finished are stored, and running it again goes on"


def why_none(fid: str, plan: "FindingsPlan", rows: Sequence[dict], interrupted: bool = False) -> str:
    """Why a chosen finding got no verdict: what the plan chose, what its runs hold, or an interruption."""
    cks = set(plan.checkpoints)
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    vits = {m for m, rs in by_model.items() if is_vit(m, rs)}
    if fid in UNTRAINED_ONLY and "untrained" not in cks:
        return f"finding {fid} reads the untrained checkpoint: choose it"
    if fid in PAIRED and not {"untrained", "trained"} <= cks:
        return f"finding {fid} compares trained with untrained on the same inputs: choose both checkpoints"
    if fid == "7" and not vits and rows:
        return "finding 7 is the blog's claim about vision transformers: no chosen model is one"
    if interrupted:
        return INTERRUPTED
    if fid in PAIRED:
        return (f"finding {fid} needs both checkpoints' runs of a model, and no model has them (a checkpoint "
                "could not be loaded or its runs failed: see the notes)")
    if fid == "2" and vits and vits >= set(by_model):
        return "finding 2 is not judged for a vision transformer (its first stop is the patch embedding: finding 7's)"
    return "no runs gave evidence (see the notes)"


def parse_findings(chosen: str | Sequence[str] | None) -> tuple[str, ...]:
    """"1,4" or ["4", "1"] -> ("1", "4"); None, "" or "all" -> every finding (raises UserError on a bad id)."""
    if chosen is None or (isinstance(chosen, str) and chosen.strip().lower() in ("", "all")):
        return FINDINGS
    items = [str(c).strip() for c in (chosen.split(",") if isinstance(chosen, str) else chosen) if str(c).strip()]
    bad = [c for c in items if c not in FINDINGS]
    if bad or not items:
        raise UserError(f"unknown finding {', '.join(bad)}: choose from 1-7 or all" if bad else
                        "choose at least one finding (1-7, or all)")
    return tuple(f for f in FINDINGS if f in items)


def swept_checkpoints(findings: Sequence[str], checkpoints: Sequence[str]) -> list[str]:
    """The checkpoints the sweeps run for these findings: the untrained one alone when every chosen sweep finding
    reads only it (1, 2), else all of them."""
    only_untrained = set(findings) & set(SWEEP_FINDINGS) <= set(UNTRAINED_ONLY)
    return [c for c in checkpoints if c == "untrained"] if only_untrained and "untrained" in checkpoints \
        else list(checkpoints)


@dataclass
class FindingsPlan:
    """What a findings report runs: the chosen findings' runs, one sweep per image size over the same images,
    models and checkpoints (`sweeps`), and for findings 5 and 6 their own runs at the same sizes and seeds."""

    sweeps: list[Sweep]
    images: str
    models: list[str]
    checkpoints: list[str]
    sizes: list[int]
    seeds: list[int]
    preset: Preset
    device: str = "cpu"
    findings: tuple[str, ...] = FINDINGS
    init_seed: int = 0

    @classmethod
    def create(cls, images: str | Sequence[str], models: Sequence[str], checkpoints: Sequence[str],
               sizes: Sequence[int], seeds: Sequence[int], preset: Preset, device: str = "cpu", init_seed: int = 0,
               threads: int | None = None, batch_stops: str = "auto",
               findings: str | Sequence[str] | None = None) -> "FindingsPlan":
        """Validate the settings and read the images (raises UserError on bad settings, before any run).

        Args:
            images: "samples", a folder, or a comma list of image files.
            models: architecture names (curated, torchvision:NAME, timm:NAME, a registered file's name).
            checkpoints: "untrained", "trained" or state-dict paths; findings 4 and 5 need untrained and trained.
            sizes: image sizes in px; each gets its own sweep, and finding 4 says whether its verdict depends on it.
            seeds, preset, device, init_seed, threads, batch_stops: as for `Sweep.create`.
            findings: the findings to run ("1,4", a list, None or "all"); only their runs are made (findings 1
                and 2 alone run the untrained checkpoint only).
        """
        chosen = parse_findings(findings)
        sizes = [int(s) for s in sizes]
        if not sizes:
            raise UserError("--size needs at least one image size")
        cks = list(dict.fromkeys(c.strip() for c in checkpoints if c.strip()))
        sweeps = [Sweep.create(images, models, swept_checkpoints(chosen, cks), "stops", size, seeds, preset, device,
                               init_seed, threads, batch_stops) for size in dict.fromkeys(sizes)]
        label = images if isinstance(images, str) else ",".join(images)
        return cls(sweeps, label, list(dict.fromkeys(m.strip() for m in models if m.strip())), cks,
                   list(dict.fromkeys(sizes)), list(seeds), preset, sweeps[0].device, chosen, int(init_seed))

    @property
    def threads(self) -> int:
        """The CPU threads of every run of the report: the sweeps', also for findings 5 and 6."""
        return self.sweeps[0].threads

    @property
    def image_paths(self) -> list[str]:
        return [i.path for i in self.sweeps[0].images]

    def parts(self) -> list[tuple[str, ...]]:
        """The chosen findings grouped by the runs they share, cheapest first: (6,), (1, 2, 3, 4, 7), (5,)."""
        groups = [runs_of("lab"), SWEEP_FINDINGS, runs_of("manifold")]
        return [tuple(f for f in g if f in self.findings) for g in groups if any(f in self.findings for f in g)]

    def only(self, findings: Sequence[str]) -> "FindingsPlan":
        """The same plan for some of its findings (the page runs one part at a time, so Stop keeps the others);
        its sweeps run only the checkpoints those findings read (findings 1 and 2 alone: the untrained one)."""
        chosen = parse_findings(list(findings))
        sweeps = [replace(s, checkpoints=swept_checkpoints(chosen, self.checkpoints), notes=[]) for s in self.sweeps]
        return FindingsPlan(sweeps, self.images, self.models, self.checkpoints, self.sizes, self.seeds,
                            self.preset, self.device, chosen, self.init_seed)


@dataclass
class FindingsReport:
    """The verdicts of a findings run, with the rows they were judged on and what ran."""

    plan: FindingsPlan
    rows: dict[int, list[dict]]  # size -> the sweep's rows (every run, converged or not)
    verdicts: list[Verdict]  # every chosen finding the rows allow, per model and size (`Verdict.evidence["size"]`)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    seconds: float = 0.0
    not_here: dict[str, str] = field(default_factory=dict)  # finding -> why it has no verdict in this report
    notes: list[str] = field(default_factory=list)  # what was left out and why (checkpoints, images, models)
    manifold: dict[int, list[dict]] = field(default_factory=dict)  # size -> finding 5's rows
    lab: list[dict] = field(default_factory=list)  # finding 6's rows

    def settings(self) -> dict:
        p = self.plan
        names = {r["image"] for rows in self.rows.values() for r in rows} | {r["image"] for r in self.lab}
        # the images as named (a file's or folder's name, "samples"), never a path of the machine that ran them
        images = ",".join(Path(x.strip()).name or x.strip() for x in str(p.images).split(","))
        return {"images": images, "models": p.models, "checkpoints": p.checkpoints, "sizes": p.sizes,
                "seeds": p.seeds, "preset": p.preset.to_dict(), "device": p.device, "findings": list(p.findings),
                "image_names": sorted(names)}

    def runs(self) -> dict[str, int]:
        """Runs behind the report, by part ("64 px" for a sweep, "finding 5 · 64 px", "finding 6")."""
        out = {f"{k} px": len(v) for k, v in self.rows.items()}
        out.update({f"finding 5 · {k} px": len(v) for k, v in self.manifold.items()})
        if self.lab:
            out["finding 6"] = len(self.lab)
        return out

    def all_rows(self) -> list[dict]:
        return [r for rs in self.rows.values() for r in rs] + [r for rs in self.manifold.values() for r in rs] \
            + list(self.lab)


def judge(rows_by_size: dict[int, list[dict]], models: Sequence[str], findings: Sequence[str] = FINDINGS,
          manifold: dict[int, list[dict]] | None = None, lab: Sequence[dict] = ()) -> list[Verdict]:
    """Every chosen finding's verdict per model and size, and for finding 4 across the sizes (`size_dependence`).

    Args:
        rows_by_size: size -> sweep rows (findings 1-4, 7).
        models: the report's models, in its order.
        findings: the finding ids to judge.
        manifold: size -> finding 5's rows (`findings_runs.manifold_rows`).
        lab: finding 6's rows (`findings_runs.lab_rows`; one verdict, no model or size: the lab's MLPs).
    """
    out = []
    for size in dict.fromkeys([*rows_by_size, *(manifold or {})]):
        rows = list(rows_by_size.get(size, [])) + list((manifold or {}).get(size, []))
        have = {r["model"] for r in rows}
        for v in evaluate(rows, models=[m for m in models if m in have]):
            if v.id in findings:
                v.evidence = {**(v.evidence or {}), "size": size}
                out.append(v)
    if runs_of("lab", findings) and lab:
        out.append(finding_6(lab))
    if len(rows_by_size) > 1:
        for model in models:
            fours = [v for v in out if v.id == "4" and v.model == model]
            if len(fours) > 1:
                says = {v.evidence["size"]: v.verdict for v in fours}
                same = len(set(says.values())) == 1
                for v in fours:
                    v.evidence["size_dependence"] = ("the same verdict at every size run" if same else
                                                     "the verdict depends on the size: " +
                                                     ", ".join(f"{k} px {w}" for k, w in says.items()))
    order = {f: i for i, f in enumerate(FINDINGS)}
    return sorted(out, key=lambda v: (order[v.id], v.model is None, v.model or "", (v.evidence or {}).get("size") or 0,
                                      v.checkpoint or ""))


def run_findings(plan: FindingsPlan, out: str | Path, backend: str = "local", cache=None,
                 progress: Callable[[str, int, int, str], None] | None = None, load=None,
                 **sweep_kwargs) -> FindingsReport:
    """Run what the plan's findings need (only what the cache lacks) and judge them.

    Args:
        plan: `FindingsPlan.create(...)`.
        out: the report's folder; each size's sweep writes its runs.jsonl under `<out>/sweep-<size>px`.
        backend: "local" or "ray" (the sweeps' backends; findings 5 and 6 run here, through the same cache).
        cache: the run cache (default: the project's).
        progress: `progress(part, done, total, what)`: `part` names the runs ("64 px" for a size's sweep,
            "finding 5 · 64 px", with several models "finding 5 · MODEL · 64 px", "finding 6"), called with done 0 when a part starts (`what` then says how many
            runs the cache holds) and after each run.
        load: `load(arch, checkpoint, size, init_seed)` (default `load_model`; the app passes its cached one).
        sweep_kwargs: passed to `run_sweep` (Ray's address, workers, ...).

    Returns:
        A `FindingsReport`; write it with `core.report.findings.write_findings`.

    Raises:
        SweepStopped: Ray lost a node or the connection during a sweep; its `report` holds what was judged before
            (the cut size gets no verdict), and every finished run is stored, so a rerun goes on.
    """
    out = Path(out)
    t0 = time.perf_counter()
    tell = progress or (lambda *a: None)
    rows, outcomes, manifold, lab, notes = {}, {}, {}, [], []
    interrupted, stopped = False, None
    try:
        for part in plan.parts():
            kind = RUNS[part[0]]  # a part's findings share their runs (`FindingsPlan.parts`)
            if kind == "lab":
                lab = lab_rows(plan.image_paths, plan.seeds, plan.device, plan.init_seed, cache=cache,
                               progress=lambda d, n, what: tell("finding 6", d, n, what), threads=plan.threads)
            elif kind == "manifold":
                both = {"untrained", "trained"} <= set(plan.checkpoints)
                for size in plan.sizes if both else []:
                    for model in plan.models:
                        name = f"finding 5 · {model} · {size} px" if len(plan.models) > 1 else \
                            f"finding 5 · {size} px"  # a progress bar per model: each counts its own runs
                        try:
                            manifold.setdefault(size, []).extend(manifold_rows(
                                model, size, plan.seeds, plan.preset, plan.device, plan.init_seed, load=load,
                                cache=cache, progress=lambda d, n, what, name=name: tell(name, d, n, what),
                                threads=plan.threads))
                        except UserError as exc:
                            notes.append(f"finding 5 left out {model} at {size} px: {exc}")
            else:
                for sweep in plan.sweeps:
                    name = f"{sweep.size} px"

                    def step(done, total, task, name=name):
                        tell(name, done, total, f"{task.image.name} {task.spec.checkpoint} {task.spec.layer}")

                    def started(tasks, todo, name=name):
                        tell(name, 0, todo, f"{tasks} runs, {tasks - todo} in the cache")

                    try:
                        outcome = run_sweep(sweep, out / f"sweep-{sweep.size}px", backend=backend, cache=cache,
                                            progress=step, load=load, on_start=started, **sweep_kwargs)
                    except SweepStopped as exc:  # Ray lost a node: judge what is complete, then say why
                        if exc.outcome is None:
                            raise
                        stopped = exc
                        notes.append(f"{sweep.size} px: stopped: {exc.cause}")
                        outcome = replace(exc.outcome, interrupted=True)
                    rows[sweep.size], outcomes[sweep.size] = outcome.rows, outcome
                    if outcome.interrupted:
                        interrupted = True
                        break
            if interrupted:
                break
    except KeyboardInterrupt:
        interrupted = True
        notes.append("interrupted; the runs it finished are stored, and running it again goes on")
    complete = {size: rs for size, rs in rows.items() if not outcomes[size].interrupted}  # a cut sweep is no sample
    verdicts = judge(complete, plan.models, plan.findings, manifold, lab)
    for size, outcome in outcomes.items():
        notes += [n for n in outcome.notes if n not in notes]
        notes += [f"skipped {path}: {why}" for path, why in outcome.skipped if f"skipped {path}: {why}" not in notes]
        if outcome.interrupted:
            notes.append(f"{size} px: interrupted; the runs it finished are stored, and running it again goes on")
    for size, rs in rows.items():
        missing = [m for m in plan.models if m not in {r["model"] for r in rs}]
        notes += [f"{m} at {size} px: no runs (see the notes above), so no verdict" for m in missing]
    judged = {v.id for v in verdicts}
    every = [r for rs in rows.values() for r in rs]
    not_here = {f: why_none(f, plan, every, interrupted) for f in plan.findings if f not in judged}
    not_here.update({f: "not chosen for this report" for f in FINDINGS if f not in plan.findings})
    report = FindingsReport(plan, rows, verdicts, outcomes, time.perf_counter() - t0,
                            dict(sorted(not_here.items())), notes, manifold, lab)
    if stopped is not None:
        stopped.report = report  # what was judged before the loss, for the caller to write
        raise stopped
    return report


def combine(reports: Sequence[FindingsReport]) -> FindingsReport:
    """One report from reports of parts of one plan (the page runs part by part): a later report's verdicts of a
    finding replace an earlier one's; rows are merged."""
    if not reports:
        raise ValueError("no reports to combine")
    verdicts: dict[str, list[Verdict]] = {}
    rows: dict[int, list[dict]] = {}
    manifold: dict[int, list[dict]] = {}
    lab: list[dict] = []
    outcomes, notes, seconds = {}, [], 0.0
    for rep in reports:
        for fid in rep.plan.findings:
            verdicts[fid] = [v for v in rep.verdicts if v.id == fid]
        for size, rs in rep.rows.items():
            rows[size] = rs
        manifold.update(rep.manifold)
        lab = rep.lab or lab
        outcomes.update(rep.outcomes)
        notes += [n for n in rep.notes if n not in notes]
        seconds += rep.seconds
    chosen = [f for f in FINDINGS if f in verdicts]
    plan = reports[-1].plan.only(chosen)
    order = {f: i for i, f in enumerate(FINDINGS)}
    out = sorted((v for f in chosen for v in verdicts[f]), key=lambda v: order[v.id])
    judged = {v.id for v in out}
    why = {f: w for rep in reports for f, w in rep.not_here.items() if f in rep.plan.findings}
    not_here = {f: why.get(f, "no runs gave evidence (see the notes)") if f in chosen else "not chosen for this report"
                for f in FINDINGS if f not in judged}
    return FindingsReport(plan, rows, out, outcomes, seconds, dict(sorted(not_here.items())), notes, manifold, lab)
