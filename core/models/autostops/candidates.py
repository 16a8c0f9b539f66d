"""Candidate stops from a model's structure: the stem, every stage's blocks, the head, timm's
`feature_info`, or module boundaries of the traced graph when no trunk is found."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.models.autostops.structure import (
    DOWN_NAME,
    HEAD_NAME,
    Stage,
    Structure,
    is_act,
    is_norm,
    is_pool,
)

SOFT, HARD = 1, 2  # `Cand.keep`


@dataclass
class Cand:
    node: str
    label: str
    priority: int = 1  # among candidates that cut at the same node, the highest is kept
    keep: int = 0  # when thinned to max_stops: 2 kept first (stage ends, logits), 1 next (stem end, head)


def _tname(struct: Structure, name: str) -> str:
    return type(struct.mods[name]).__name__ if name in struct.mods else name.rsplit(".", 1)[-1]


def _attr(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _part(name: str) -> str:
    """A part's name in a label: its attribute, or `layer i` for an index in a container."""
    a = _attr(name)
    return f"layer {a}" if a.isdigit() else a


def _stem_cands(struct: Structure, parts: list[str]) -> list[Cand]:
    if len(parts) == 1:
        return [Cand(parts[0], f"stem ({_tname(struct, parts[0])})", 2, SOFT)]
    out = []
    for j, p in enumerate(parts, 1):
        a = _attr(p)
        a = str(j) if a.isdigit() else a
        out.append(Cand(p, f"stem {a} ({_tname(struct, p)})", 2, SOFT if j == len(parts) else 0))
    return out


def _head_label(struct: Structure, p: str) -> str:
    m, t = struct.mods[p], _tname(struct, p)
    if is_norm(m):
        return f"final norm ({t})"
    if is_pool(m):
        return f"global pool ({t})"
    if is_act(m):
        return f"head act ({t})"
    if "Conv" in t or "conv" in _attr(p):
        return f"head conv ({t})"
    return f"{_attr(p)} ({t})" if _attr(p).startswith("head") else f"head {_part(p)} ({t})"


def _head_cands(struct: Structure, parts: list[str], logits: Cand) -> list[Cand]:
    """The layers between the trunk and the logits, then those inside the logits module."""
    lp = struct.pos(logits.node)
    out = []
    for p in parts:
        if struct.pos(p) < lp and not (logits.node == p or logits.node.startswith(p + ".")):
            out.append(Cand(p, _head_label(struct, p), 3, SOFT))
    if logits.node in struct.mods:
        out += _inner_head_cands(struct, logits.node)
    return out


def _inner_head_cands(struct: Structure, name: str) -> list[Cand]:
    """Inside the logits module: its pooling, its norm, and the activation of a hidden layer (pre-logits)."""
    out = []
    kids = struct.kids(name)
    for i, p in enumerate(kids):
        m, t = struct.mods[p], _tname(struct, p)
        later = [_tname(struct, k) for k in kids[i + 1:]]
        if is_pool(m):
            out.append(Cand(p, f"global pool ({t})", 3, SOFT))
        elif is_norm(m):
            out.append(Cand(p, f"final norm ({t})", 3, SOFT))
        elif is_act(m):
            if any("Linear" in k or "Conv" in k for k in later):  # a hidden layer's output
                out.append(Cand(p, f"pre-logits ({t})", 3, SOFT))
        elif struct.composite(p) and not ("Linear" in t or "Conv" in t):
            out += _inner_head_cands(struct, p)
    return out


_RESHAPE = re.compile(r"^(flatten|view|reshape|squeeze|contiguous|float)(_\d+)?$")


def _logits(struct: Structure) -> Cand:
    """The model's output: the outermost module whose last node is the graph's last (a final flatten
    or reshape of a module's output counts as that module's), else that node."""
    nodes = struct.graph.eval_nodes
    last = len(nodes) - 1
    while last > 0 and _RESHAPE.match(nodes[last]) and nodes[last - 1].split(".")[0] in struct.mods:
        last -= 1
    parts = nodes[last].split(".")
    for k in range(1, len(parts)):
        name = ".".join(parts[:k])
        if name in struct.mods and struct.pos(name) == last:
            return Cand(name, f"logits ({_tname(struct, name)})", 4, HARD)
    if nodes[last] in struct.mods:
        return Cand(nodes[last], f"logits ({_tname(struct, nodes[last])})", 4, HARD)
    return Cand(nodes[-1], f"logits ({nodes[-1]})", 4, HARD)


def _stage_cands(struct: Structure, st: Stage, k: int, n_stages: int) -> list[Cand]:
    """The blocks of stage k (1-based) of n, with the downsampling and transitions inside the stage. The
    leading parts of the first stage and the trailing parts of the last are left to the caller when the
    stage is flat or the only one (they are the stem's and the head's)."""
    where = f"stage {k} " if n_stages > 1 else ""
    out = []
    if not (k == 1 and (st.flat or n_stages == 1)):
        for p in st.pre:
            t = _tname(struct, p)
            if DOWN_NAME.search(_attr(p)) or DOWN_NAME.search(t):
                label = f"downsample {k - 1}->{k} ({t})" if k > 1 else f"{where}downsample ({t})"
            else:
                label = f"{where}{_part(p)} ({t})"
            out.append(Cand(p, label, 2))
    for j, b in enumerate(st.blocks):
        label = f"{where}block {j + 1} ({_tname(struct, b)})"
        # the last block: named by the stage when that is where the stage's output is
        end = j == len(st.blocks) - 1
        out.append(Cand(st.name if end and struct.pos(b) == struct.pos(st.name) else b, label, 2, HARD if end else 0))
        for p, after in st.between:
            if after == j:
                what = "pool" if is_pool(struct.mods[p]) else "transition"
                out.append(Cand(p, f"{where}{what} after block {j + 1} ({_tname(struct, p)})", 2))
    if not (k == n_stages and (st.flat or n_stages == 1)):
        for p in st.post:
            out.append(Cand(p, f"{where}{_part(p)} ({_tname(struct, p)})", 2))
    out.append(Cand(st.name, f"{where or 'trunk '}output ({_tname(struct, st.name)})", 1, HARD))
    return out


def _trunk_cands(struct: Structure, trunk: str, stages: list[str], infos: list[Stage]) -> list[Cand]:
    n = len(stages)
    first = _first_pos(struct, infos[0].blocks[0] if stages == [""] else stages[0])
    last = struct.pos(infos[-1].blocks[-1] if stages == [""] else stages[-1])
    # the path from the root down to the trunk: what runs before it is the stem, what runs after the head
    stem, head = [], []
    path = trunk.split(".") if trunk else []
    for depth in range(len(path) + 1):
        name = ".".join(path[:depth])
        inner = ".".join(path[:depth + 1]) if depth < len(path) else None
        lo, hi = (_first_pos(struct, inner), struct.pos(inner)) if inner is not None else (first, last)
        if name == trunk and stages == [trunk]:
            continue  # the root itself is the one (flat) stage
        for k in struct.kids(name):
            if k == inner or k in stages:
                continue
            if struct.pos(k) < lo:
                stem.append(k)
            elif _first_pos(struct, k) > hi:
                head.append(k)
    if infos[0].flat or n == 1:
        stem += infos[0].pre
    if infos[-1].flat or n == 1:
        head += infos[-1].post
    stem = sorted(set(stem), key=struct.pos)
    head = sorted(set(head), key=struct.pos)
    cands: list[Cand] = _stem_cands(struct, stem) if stem else []
    between = [k for k in struct.kids(trunk) if k not in stages and first < struct.pos(k) < last] \
        if stages != [trunk] else []
    for k, (s, st) in enumerate(zip(stages, infos), 1):
        cands += _stage_cands(struct, st, k, n)
        nxt = struct.pos(stages[k]) if k < n else last
        for b in between:
            if struct.pos(s) < struct.pos(b) < nxt:
                cands.append(Cand(b, f"downsample {k}->{k + 1} ({_tname(struct, b)})", 2))
    logits = _logits(struct)
    cands += _head_cands(struct, head, logits)
    cands += _function_pools(struct, last, struct.pos(logits.node))
    cands.append(logits)
    return cands


def structural_cands(struct: Structure) -> list[Cand] | None:
    """Stem, stages and blocks, head, from the module hierarchy; None if it shows no trunk."""
    found = struct.find_trunk()
    if found is None:
        return None
    trunk, stages = found
    infos = [struct.stage(s) for s in stages]
    if len(infos) == 1 and infos[0].trimmed:  # a flat model: its light first / last units are stem / head
        infos = [infos[0].trimmed]
    return _trunk_cands(struct, trunk, stages, infos)


def flat_root_cands(struct: Structure) -> list[Cand] | None:
    """A model whose blocks are the root's own children (GoogLeNet, Inception v3): one flat stage."""
    kids = [k for k in struct.kids("") if not HEAD_NAME.match(k)]
    st = struct._container_stage("", kids, nested_ok=True) if kids else None
    st = st.trimmed if st is not None and st.trimmed else st
    if st is None or len(st.blocks) < 3:
        return None
    return _trunk_cands(struct, "", [""], [st])


def _first_pos(struct: Structure, name: str) -> int:
    return struct.graph.first.get(name, len(struct.graph.eval_nodes))


def _function_pools(struct: Structure, after: int, before: int) -> list[Cand]:
    """Top-level pooling done by a function after the trunk (`x.mean((2, 3))`, `F.adaptive_avg_pool2d`)."""
    out = []
    for i in range(after + 1, before):
        n = struct.graph.eval_nodes[i]
        if "." not in n and n not in struct.mods and re.match(r"(adaptive_)?(avg|max)?_?pool|mean", n) \
                and struct.pos(n) == i:
            out.append(Cand(n, f"global pool ({n})", 3, SOFT))
    return out


def feature_info_cands(struct: Structure) -> list[Cand] | None:
    """timm's named stage outputs, each preceded by its composite parts, then the head."""
    names = [n for n in dict.fromkeys(struct.feature_info_names) if n in struct.mods and struct.pos(n) is not None]
    names.sort(key=struct.pos)
    if len(names) < 2:
        return None
    cands, prev = [], -1
    for k, s in enumerate(names, 1):
        for p in struct.kids(s):
            if prev < struct.pos(p) < struct.pos(s) and struct.composite(p):
                cands.append(Cand(p, f"stage {k} {_part(p)} ({_tname(struct, p)})", 2))
        cands.append(Cand(s, f"stage {k} output ({_tname(struct, s)})", 2, HARD))
        prev = struct.pos(s)
    stem = [k for k in struct.kids("") if struct.pos(k) < struct.pos(names[0]) and not names[0].startswith(k + ".")]
    logits = _logits(struct)
    head = [k for k in struct.kids("") if struct.pos(k) > prev]
    return (_stem_cands(struct, stem) if stem else []) + cands + _head_cands(struct, head, logits) \
        + _function_pools(struct, prev, struct.pos(logits.node)) + [logits]


def boundary_cands(struct: Structure) -> list[Cand]:
    """Fallback: the traced node list cut at module boundaries, one level deeper until there are enough."""
    level = [""]
    for _ in range(6):
        nxt = []
        for name in level:
            kids = struct.kids(name)
            nxt += kids if kids else [name]
        nxt = [k for k in nxt if k]
        if not nxt:
            break
        level = sorted(set(nxt), key=struct.pos)
        if len(level) >= 8:
            break
    cands = [Cand(k, f"{k} ({_tname(struct, k)})", 1) for k in level]
    logits = _logits(struct)
    return [c for c in cands if struct.pos(c.node) < struct.pos(logits.node)] + [logits]
