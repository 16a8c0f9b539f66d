"""Check the paper: plan the runs the findings need as one sweep per image size, run what the cache lacks, and
judge each finding on the rows (`core.studies.verdicts`).

Every run is a sweep run (`core.studies.sweep`): cached under its spec's key, so a rerun, or a report on more
images, runs only what is missing, and on CUDA a model's stops run as one optimisation (`batch_stops`). Findings
1-4 and the ViT claim (7) come from the clarity at every depth stop of every image, model and checkpoint;
an unconverged run never counts as evidence (the verdicts leave it out and say how many they left out).

    report = run_findings(FindingsPlan.create("samples", ["efficientnet_lite0"], ["untrained", "trained"], [64],
                                              seeds=[0, 1], preset=get_preset("default")), out="runs/findings")
    [(v.id, v.verdict) for v in report.verdicts]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from core.errors import UserError
from core.recipe.presets import Preset
from core.studies.sweep import Outcome, Sweep, run_sweep
from core.studies.verdicts import Verdict, evaluate

NOT_HERE = {  # the findings these runs cannot test, and where they are tested
    "5": "deep trained layers pull non-natural inputs toward natural-image statistics: `python -m core manifold` "
         "(the Manifold page)",
    "6": "a fully connected layer narrower than its input is not invertible, ReLU needs about twice the width: "
         "`python -m core lab mlp` (the Invertibility lab page)",
}


@dataclass
class FindingsPlan:
    """What a findings report runs: one sweep per image size over the same images, models and checkpoints."""

    sweeps: list[Sweep]
    images: str
    models: list[str]
    checkpoints: list[str]
    sizes: list[int]
    seeds: list[int]
    preset: Preset
    device: str = "cpu"

    @classmethod
    def create(cls, images: str | Sequence[str], models: Sequence[str], checkpoints: Sequence[str],
               sizes: Sequence[int], seeds: Sequence[int], preset: Preset, device: str = "cpu", init_seed: int = 0,
               threads: int | None = None, batch_stops: str = "auto") -> "FindingsPlan":
        """Validate the settings and read the images (raises UserError on bad settings, before any run).

        Args:
            images: "samples", a folder, or a comma list of image files.
            models: architecture names (curated, torchvision:NAME, timm:NAME, a registered file's name).
            checkpoints: "untrained", "trained" or state-dict paths; finding 4 needs untrained and trained.
            sizes: image sizes in px; each gets its own sweep, and finding 4 says whether its verdict depends on it.
            seeds, preset, device, init_seed, threads, batch_stops: as for `Sweep.create`.
        """
        sizes = [int(s) for s in sizes]
        if not sizes:
            raise UserError("--size needs at least one image size")
        sweeps = [Sweep.create(images, models, checkpoints, "stops", size, seeds, preset, device, init_seed, threads,
                               batch_stops) for size in dict.fromkeys(sizes)]
        label = images if isinstance(images, str) else ",".join(images)
        return cls(sweeps, label, list(dict.fromkeys(m.strip() for m in models if m.strip())),
                   list(dict.fromkeys(c.strip() for c in checkpoints if c.strip())), list(dict.fromkeys(sizes)),
                   list(seeds), preset, device)


@dataclass
class FindingsReport:
    """The verdicts of a findings run, with the rows they were judged on and what ran."""

    plan: FindingsPlan
    rows: dict[int, list[dict]]  # size -> the sweep's rows (every run, converged or not)
    verdicts: list[Verdict]  # every finding the rows allow, per model and size (`Verdict.evidence["size"]`)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    seconds: float = 0.0
    not_here: dict[str, str] = field(default_factory=lambda: dict(NOT_HERE))
    notes: list[str] = field(default_factory=list)  # what was left out and why (checkpoints, images, models)

    def settings(self) -> dict:
        p = self.plan
        return {"images": p.images, "models": p.models, "checkpoints": p.checkpoints, "sizes": p.sizes,
                "seeds": p.seeds, "preset": p.preset.to_dict(), "device": p.device,
                "image_names": sorted({r["image"] for rows in self.rows.values() for r in rows})}


def judge(rows_by_size: dict[int, list[dict]], models: Sequence[str]) -> list[Verdict]:
    """Every finding's verdict per model and size, and for finding 4 across the sizes (`size_dependence`)."""
    out = []
    for size, rows in rows_by_size.items():
        have = {r["model"] for r in rows}
        for v in evaluate(rows, models=[m for m in models if m in have]):
            v.evidence = {**(v.evidence or {}), "size": size}
            out.append(v)
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
    return out


def run_findings(plan: FindingsPlan, out: str | Path, backend: str = "local", cache=None,
                 progress: Callable[[int, int, int, object], None] | None = None, **sweep_kwargs) -> FindingsReport:
    """Run every sweep of `plan` (only what the cache lacks) and judge the findings.

    Args:
        plan: `FindingsPlan.create(...)`.
        out: the report's folder; each size's sweep writes its runs.jsonl under `<out>/sweep-<size>px`.
        backend: "local" or "ray" (the sweeps' backends).
        cache: the run cache (default: the project's).
        progress: `progress(size, done, total, task)` after each run the size's sweep makes (`total`: its runs to
            make; the cache's are not counted).
        sweep_kwargs: passed to `run_sweep` (Ray's address, workers, ...).

    Returns:
        A `FindingsReport`; write it with `core.report.findings.write_findings`.
    """
    out = Path(out)
    t0 = time.perf_counter()
    rows, outcomes = {}, {}
    for sweep in plan.sweeps:
        def step(done, total, task, size=sweep.size):
            if progress:
                progress(size, done, total, task)

        outcome = run_sweep(sweep, out / f"sweep-{sweep.size}px", backend=backend, cache=cache, progress=step,
                            **sweep_kwargs)
        rows[sweep.size], outcomes[sweep.size] = outcome.rows, outcome
        if outcome.interrupted:
            break
    verdicts = judge(rows, plan.models)
    notes = []
    for size, outcome in outcomes.items():
        notes += [n for n in outcome.notes if n not in notes]
        notes += [f"skipped {path}: {why}" for path, why in outcome.skipped if f"skipped {path}: {why}" not in notes]
        if outcome.interrupted:
            notes.append(f"{size} px: interrupted; the runs it finished are stored, and running it again goes on")
    for size, rs in rows.items():
        missing = [m for m in plan.models if m not in {r["model"] for r in rs}]
        notes += [f"{m} at {size} px: no runs (see the notes above), so no verdict" for m in missing]
    return FindingsReport(plan, rows, verdicts, outcomes, time.perf_counter() - t0, notes=notes)
