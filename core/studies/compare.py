"""Models side by side: the clarity curves of several models (and checkpoints) on one relative-depth axis.

Relative depth (`core.studies.curve.relative_depth`) puts every model on [0, 1]: 0 is the input and 1 the
logits. A row whose stop index is `depth` (from `core.studies.curve.resolve_layers`; another graph node sits at
+0.5) in a model with `n_stops` depth stops sits at `(depth + 1) / n_stops`: the first stop at 1 / n_stops, the
last stop, which is every registered model's logits, at 1.

    lines, skipped = plan_compare(["resnet18", "vgg16"], ["untrained"], 32, layers=6)
    rows = list(iter_compare(lines, image, seeds=[0, 1], preset=get_preset("default", iters=150)))
    write_compare(rows, settings, image, Path("out"), skipped)      # core.report.compare

The chart, the gallery and the files are `core.report.compare`'s; this module plans, runs and aligns.
Each model × checkpoint is one `core.studies.curve.iter_curve` over its own stops, so every stop is one
`core.jobs.pipeline.run` (cache included): a rerun, or a stop the clarity curve page already ran, is instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Iterator, Sequence

from core.errors import UserError, WeightsNotCached
from core.jobs.pipeline import Callbacks
from core.models.checkpoints import load_model, short_checkpoint
from core.models.encoder import depth_stops
from core.models.registry import get_architecture
from core.studies.curve import iter_curve, relative_depth, resolve_layers

__all__ = [
    "spread", "parse_models", "common_sizes", "check_sizes", "Line", "layers_for",
    "plan_compare", "CompareRow", "iter_compare", "MAX_BINS", "default_bins", "align",
]

MAX_BINS = 10  # gallery columns when none are chosen: 0.1, 0.2 ... 1.0 for long curves (`default_bins`)


def spread(n: int, k: int) -> list[int]:
    """`k` indices spread evenly over range(n), the first and the last (the logits) always included.

    Args:
        n: how many stops the model has.
        k: how many to keep (all when k >= n; the logits alone when k == 1).

    Returns:
        Sorted, distinct indices.
    """
    if k >= n:
        return list(range(n))
    if k <= 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def parse_models(models: str | Sequence[str]) -> list[str]:
    """A comma list or a sequence of architecture names, checked and without repeats."""
    names = [m.strip() for m in (models.split(",") if isinstance(models, str) else models) if m and m.strip()]
    if not names:
        raise UserError("choose at least one model to compare (see `python -m core models`)")
    for m in names:
        get_architecture(m)  # unknown names: one line listing the known ones
    return list(dict.fromkeys(names))


def common_sizes(models: Sequence[str], most: int = 1024) -> tuple[int, int]:
    """(smallest size, step): every size `smallest + k * step` up to `most` suits all of `models`."""
    archs = [get_architecture(m) for m in models]
    step = math.lcm(*[a.size_multiple for a in archs])
    lo = max(a.min_size for a in archs)
    return lo + (-lo) % step, step


def check_sizes(models: Sequence[str], size: int) -> None:
    """Raise one UserError naming every model `size` does not suit, and a size that suits all of them."""
    bad = []
    for m in models:
        try:
            get_architecture(m).check_size(size)
        except UserError as exc:
            bad.append(str(exc))
    if bad:
        lo, step = common_sizes(models)
        near = max(lo, lo + round((size - lo) / step) * step) if isinstance(size, int) else lo
        fits = (f"every chosen model takes {lo} px" + (f" and every {step} px above it" if step > 1 else " or more")
                + (f" (nearest: {near})" if near != lo else ""))
        raise UserError("; ".join(bad) + f"; {fits}")


@dataclass
class Line:
    """One model × checkpoint of a comparison: its loaded model and the stops it runs."""

    model: str
    checkpoint: str
    loaded: object  # core.models.checkpoints.LoadedModel
    n_stops: int
    plan: list  # (depth, node, label), forward order (`core.studies.curve.resolve_layers`)

    @property
    def name(self) -> str:
        return f"{self.model} · {short_checkpoint(self.checkpoint)}"

    @property
    def nodes(self) -> list[str]:
        return [node for _, node, _ in self.plan]


def layers_for(loaded, layers: str | int | Sequence[str] | None = "stops") -> list[tuple[float, str, str]]:
    """(depth, node, label) of the stops a model runs, in forward order.

    Args:
        loaded: the model (`core.models.checkpoints.LoadedModel`).
        layers: "stops"/None for every depth stop, an int k for k stops spread evenly over the model (its first
            stop and its logits included), or node names that every compared model must have.
    """
    if layers is None or layers == "stops":
        return resolve_layers(loaded, "stops")
    if isinstance(layers, int) and not isinstance(layers, bool):
        if layers < 1:
            raise UserError(f"stops per model must be at least 1 (got {layers})")
        stops = depth_stops(loaded)
        return [(i, stops[i].node, stops[i].label) for i in spread(len(stops), layers)]
    if not layers:
        raise UserError("choose at least one layer, 'stops' for all, or a number of stops per model")
    try:
        return resolve_layers(loaded, list(dict.fromkeys(layers)))
    except UserError as exc:
        raise UserError(f"a layer list applies to every compared model: {exc}") from None


def plan_compare(models: str | Sequence[str], checkpoints: Sequence[str], size: int,
                 layers: str | int | Sequence[str] | None = "stops", init_seed: int = 0,
                 loader: Callable | None = None) -> tuple[list[Line], list[str]]:
    """Check the settings and load every model × checkpoint before any run.

    Trained weights that are not on disk skip that model × checkpoint with a note saying how to get them;
    any other problem (unknown model or layer, a size one model cannot take, an unreadable file) is a
    UserError naming the model.

    Args:
        models: architecture names (a comma list or a sequence).
        checkpoints: "untrained", "trained" or state-dict paths, tried on every model.
        size: the image side in px (checked against every model first).
        layers: see `layers_for`.
        init_seed: the untrained initialisation's seed.
        loader: `loader(arch, checkpoint, size, init_seed) -> LoadedModel` (default `core.models.checkpoints.load_model`;
            the app passes its cached one).

    Returns:
        (lines, skipped notes), lines model by model, checkpoints in the order given.
    """
    names = parse_models(models)
    checkpoints = list(dict.fromkeys(c.strip() for c in checkpoints if c and c.strip()))
    if not checkpoints:
        raise UserError("choose at least one checkpoint (untrained, trained or a path)")
    check_sizes(names, size)
    loader = loader or load_model

    lines, skipped = [], []
    for m in names:
        for ck in checkpoints:
            if ck == "trained" and not get_architecture(m).has_trained:
                skipped.append(f"skipped {m} × trained: {m} has no trained weights in this project")
                continue
            try:
                loaded = loader(m, ck, size, init_seed)
            except WeightsNotCached as exc:
                skipped.append(f"skipped {m} × {ck}: {exc}")
                continue
            except UserError as exc:
                raise UserError(f"{m} × {short_checkpoint(ck)}: {exc}") from None
            lines.append(Line(m, ck, loaded, len(depth_stops(loaded)), layers_for(loaded, layers)))
    if not lines:
        raise UserError("nothing to compare: " + "; ".join(skipped))
    return lines, skipped


@dataclass
class CompareRow:
    """One stop of one model × checkpoint: the curve's row plus where it sits on the relative-depth axis."""

    model: str
    n_stops: int
    row: object  # core.studies.curve.CurveRow

    checkpoint = property(lambda self: self.row.checkpoint)
    layer = property(lambda self: self.row.layer)
    label = property(lambda self: self.row.label)
    depth = property(lambda self: self.row.depth)
    result = property(lambda self: self.row.result)
    cached = property(lambda self: self.row.cached)

    @property
    def relative_depth(self) -> float:
        return relative_depth(self.row.depth, self.n_stops)

    @property
    def line(self) -> str:
        return f"{self.model} · {short_checkpoint(self.checkpoint)}"

    def to_json(self) -> dict:
        """model, checkpoint, layer, label, depth, relative_depth, n_stops, then every `CurveRow.to_json` field."""
        d = self.row.to_json()
        return {"model": self.model, "checkpoint": d["checkpoint"], "layer": d["layer"], "label": d["label"],
                "depth": d["depth"], "relative_depth": round(self.relative_depth, 6), "n_stops": self.n_stops, **d}


def iter_compare(lines: Sequence[Line], image, *, seeds: Sequence[int] = (0, 1), preset=None, device: str = "auto",
                 callbacks: Callbacks | None = None, every: int = 10, speed=None, cache=None,
                 use_cache: bool = True, batch_stops: str = "auto") -> Iterator[CompareRow]:
    """Yield one row per (model × checkpoint, stop): each line is one `core.studies.curve.iter_curve` over its stops.

    Args:
        lines: from `plan_compare`.
        image: (3, N, N) in [0, 1], N the size the lines were planned for.
        seeds, preset, device, every, speed, cache, use_cache, batch_stops: as for `core.studies.curve.iter_curve`.
        callbacks: the hooks (`core.jobs.pipeline.Callbacks`): `stop(done, total, line name, layer)` before each
            run, and once at the end with layer ""; the others are passed to each run.

    Returns:
        An iterator of `CompareRow`s, line by line, stops in forward order.
    """
    cb = callbacks or Callbacks()
    on_stop = cb.next_run
    total, base = sum(len(line.plan) for line in lines), 0
    for line in lines:
        def stop(done, _total, _ck, layer, base=base, name=line.name):
            if on_stop and layer:
                on_stop(base + done, total, name, layer)

        for row in iter_curve(line.model, image, [line.checkpoint], line.nodes, seeds=seeds, preset=preset,
                              device=device, every=every, speed=speed, models=[line.loaded], cache=cache,
                              use_cache=use_cache, callbacks=replace(cb, next_run=stop), batch_stops=batch_stops):
            yield CompareRow(line.model, line.n_stops, row)
        base += len(line.plan)
    if on_stop:
        on_stop(total, total, "", "")


# --------------------------------------------------------------------------- the gallery's alignment


def default_bins(rows: Sequence[CompareRow], most: int = MAX_BINS) -> list[float]:
    """The gallery's columns: 0.1, 0.2 ... 1.0 when some line ran at least `most` stops; otherwise, with k the
    most stops any line ran, the mean relative depth of the i-th stop over the lines that ran k (i = 1..k), so a
    thinned comparison (k stops per model) shows each line's stops once, the first and the logits included."""
    per_line: dict[str, list[float]] = {}
    for r in rows:
        per_line.setdefault(r.line, []).append(r.relative_depth)
    k = max((len(v) for v in per_line.values()), default=0)
    if k >= most or k == 0:
        return [round(j / most, 3) for j in range(1, most + 1)]
    full = [sorted(v) for v in per_line.values() if len(v) == k]
    return [round(sum(v[i] for v in full) / len(full), 3) for i in range(k)]


def align(rows: Sequence[CompareRow], bins: Sequence[float]) -> dict[str, list[CompareRow]]:
    """For each model × checkpoint, the row nearest each relative depth in `bins` (ties: the shallower).

    Returns:
        {line name: [row per bin]}, lines in first-seen order; a row may fill several bins when a line ran
        fewer stops than there are bins.
    """
    out: dict[str, list[CompareRow]] = {}
    for name in dict.fromkeys(r.line for r in rows):
        mine = sorted((r for r in rows if r.line == name), key=lambda r: r.relative_depth)
        out[name] = [min(mine, key=lambda r: (abs(r.relative_depth - b), r.relative_depth)) for b in bins]
    return out
