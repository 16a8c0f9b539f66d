"""Choosing the stops: order the candidates by the graph, thin them to a budget, label them
uniquely and keep those a forward pass verifies (`derive_stops`, `stops_of`)."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import torch
import torch.nn as nn

from core.errors import UserError
from core.models.autostops.candidates import (
    HARD,
    SOFT,
    Cand,
    boundary_cands,
    feature_info_cands,
    flat_root_cands,
    structural_cands,
)
from core.models.autostops.input_size import input_size_constraint
from core.models.autostops.structure import Structure
from core.models.autostops.tracing import (
    LIBRARIES,
    NotACut,
    UntraceableModel,
    extract,
    model_name,
    placeholders,
    trace,
)
from core.models.registry import Stop


def _order(struct: Structure, cands: list[Cand], forbidden: set[str]) -> list[Cand]:
    """In forward order, one per cut position (highest priority, then first found), none at the input."""
    by_pos: dict[int, Cand] = {}
    for c in cands:
        p = struct.pos(c.node)
        if p is None or c.node in forbidden:
            continue
        m = struct.mods.get(c.node)
        if isinstance(m, (nn.ModuleList, nn.ModuleDict)) and not struct.stage(c.node):
            continue  # parallel branches (HRNet, CrossViT): the name would cut only the last one
        old = by_pos.get(p)
        if old is None or c.priority > old.priority:
            by_pos[p] = Cand(c.node, c.label, c.priority, max(c.keep, old.keep if old else 0))
        else:
            old.keep = max(old.keep, c.keep)
    return [by_pos[p] for p in sorted(by_pos)]


def _thin(cands: list[Cand], max_stops: int) -> list[Cand]:
    """At most `max_stops`: the first, the last and every stage end, the rest spread evenly."""
    n = len(cands)
    if n <= max_stops:
        return cands
    if max_stops == 1:
        return cands[-1:]
    must = sorted({0, n - 1} | {i for i, c in enumerate(cands) if c.keep >= HARD})
    if len(must) >= max_stops:  # even among the stage ends
        picks = {must[round(j * (len(must) - 1) / (max_stops - 1))] for j in range(max_stops)}
        return [cands[i] for i in sorted(picks)]
    chosen = set(must)
    for tier in ([i for i, c in enumerate(cands) if c.keep == SOFT], range(n)):
        pool = [i for i in tier if i not in chosen]
        while pool and len(chosen) < max_stops:  # the farthest from what is chosen: spread evenly
            best = max(pool, key=lambda i: (min(abs(i - j) for j in chosen), -i))
            chosen.add(best)
            pool.remove(best)
    return [cands[i] for i in sorted(chosen)]


def _unique_labels(cands: list[Cand]) -> list[Stop]:
    seen: dict[str, int] = {}
    out = []
    for c in cands:
        label = c.label
        if label in seen:
            seen[label] += 1
            label = f"{label} #{seen[label]}"
        else:
            seen[label] = 1
        out.append(Stop(c.node, label))
    return out


def _probe_sizes(module: nn.Module, library: str) -> list[int]:
    c = input_size_constraint(module, library)
    if c["fixed"]:
        return [c["fixed"]]
    mult = max(1, c["multiple"])
    small = math.ceil(max(c["min_size"], 32) / mult) * mult
    default = math.ceil(max(c["default"], small) / mult) * mult
    return [small] if default == small else [small, default]


def derive_stops(module: nn.Module, library: str, max_stops: int = 40, *, size: int | None = None) -> list[Stop]:
    """The depth stops of any classifier, in forward order, with readable labels.

    `library` ("torchvision" or "timm") picks the tracer. The stops are the stem, the blocks of every stage
    (with the downsampling between stages), then the final norm, pooling and logits; at most `max_stops`
    (every stage's last block, the first and the last stop kept, the rest spread evenly). Each is checked
    by one forward pass on zeros at `size` px (default: a small size the model takes, see
    `input_size_constraint`). Raises `UntraceableModel` (a `UserError`) for a model torch.fx cannot trace."""
    if library not in LIBRARIES:
        raise UserError(f"library must be one of {', '.join(LIBRARIES)} (got {library!r})")
    if not isinstance(max_stops, int) or max_stops < 1:
        raise UserError(f"max_stops must be a positive integer (got {max_stops!r})")
    graph = trace(module, library)
    struct = Structure(module, graph)
    forbidden = placeholders(module)
    cands = None
    for find in (structural_cands, flat_root_cands, feature_info_cands if library == "timm" else None):
        if find is not None and (cands is None or len(_order(struct, cands, forbidden)) < 3):
            cands = find(struct) or cands
    if cands is None or len(_order(struct, cands, forbidden)) < 3:
        cands = boundary_cands(struct)
    for c in cands:  # timm's named stage outputs are stage ends too
        if c.node in struct.feature_modules:
            c.keep = HARD
    ordered = _order(struct, cands, forbidden)
    ordered = _verified(module, library, ordered, [size] if size else _probe_sizes(module, library))
    if not ordered:
        raise UserError(f"{model_name(module)}: no depth stop outputs a floating tensor")
    return _unique_labels(_thin(ordered, max_stops))


def _verified(module: nn.Module, library: str, cands: list[Cand], sizes: list[int]) -> list[Cand]:
    """The candidates whose cut outputs a floating tensor, by one forward pass (the first size that runs)."""
    err = None
    cands = list(cands)
    for s in sizes:
        while cands:
            try:
                out = extract(module, library, [c.node for c in cands], s)
            except NotACut as e:  # not expected (every candidate is in both graphs), but never fatal
                cands = [c for c in cands if c.node != e.node]
                continue
            except UntraceableModel:
                raise
            except UserError as e:  # the forward pass failed at this size
                err = e
                break
            return [c for c in cands if isinstance(out.get(c.node), torch.Tensor) and out[c.node].is_floating_point()]
    if err is None:
        return []
    raise err


def stops_of(library: str, max_stops: int = 40) -> Callable[[nn.Module], list[Stop]]:
    """An `Architecture.stops_of` for a registry entry: `derive_stops` run once per module object (it
    traces and runs the model, so it is cached; the first call takes `MODEL_LOCK.exclusive()`)."""
    cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def of(module: nn.Module) -> list[Stop]:
        if module not in cache:
            cache[module] = tuple(derive_stops(module, library, max_stops))
        return list(cache[module])

    return of
