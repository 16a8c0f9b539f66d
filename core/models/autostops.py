"""Depth stops for any torchvision or timm classifier, derived from the model itself.

The curated entries of `core.models.zoo` list their stops by hand; `derive_stops` finds them for any other
classifier from what the libraries already know:

* the FX graph (torchvision's feature-extraction tracer, or timm's wrapper of it, which knows timm's leaf
  modules): it gives every cut that feature extraction accepts and the forward order (a node's index in
  the eval-mode node list; a module counts as its last node, which is the node that extraction returns
  for a module name);
* the module hierarchy: the *trunk* is the module with the most *stage* children, a stage being a container
  of blocks (an `nn.Sequential` / `ModuleList` / `ModuleDict` of composite modules, a stage module whose
  `blocks` / `layers` child is one, such as timm's `ConvNeXtStage` or torchvision's ViT `Encoder`, or a
  module whose children are numbered blocks of one kind, such as timm's `RegStage` `b1, b2, ...`). What comes
  before the trunk is the stem, what comes after is the head (final norm, pooling, logits);
* a model whose blocks are the root's own children (GoogLeNet, Inception) is read as one flat stage;
* timm's `feature_info` (the stage outputs it names, with their reductions): its modules are stage ends to
  keep when thinning, and the stages of a model whose hierarchy shows none (timm's VGG);
* where none of these finds a trunk, the traced node list sampled at module boundaries.

Every stop is checked by a forward pass through one feature extractor returning them all, so each is a node
that extraction returns and whose output is a floating tensor (channel-last and token layouts included).
A model that torch.fx cannot trace raises `UntraceableModel` (a `UserError`) with the reason.

`input_size_constraint` says which input sizes a module takes (a fixed size, a minimum, a multiple), from
timm's `pretrained_cfg`, torchvision's weights metadata and the module's own attributes.
"""

from __future__ import annotations

import inspect
import math
import re
import statistics
import sys
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from core.errors import UserError
from core.models.lock import MODEL_LOCK
from core.models.registry import Stop

LIBRARIES = ("torchvision", "timm")


class UntraceableModel(UserError):
    """torch.fx cannot trace the model, so it cannot be cut at depth stops."""


class NotACut(UserError):
    """A name that feature extraction does not accept for this model."""

    def __init__(self, message: str, node: str):
        super().__init__(message)
        self.node = node


# ---------------------------------------------------------------------------------------------- tracing


def _fx(library: str):
    """(create_feature_extractor, get_graph_node_names) of a library's graph cutter."""
    if library == "torchvision":
        from torchvision.models.feature_extraction import (
            create_feature_extractor,
            get_graph_node_names,
        )
    elif library == "timm":  # timm's wrapper knows its own leaf modules (e.g. padding-same convs)
        from timm.models._features_fx import (
            create_feature_extractor,
            get_graph_node_names,
        )
    else:
        raise UserError(f"library must be one of {', '.join(LIBRARIES)} (got {library!r})")
    return create_feature_extractor, get_graph_node_names


def _model_name(module: nn.Module) -> str:
    cfg = getattr(module, "pretrained_cfg", None)
    arch = cfg.get("architecture") if isinstance(cfg, dict) else None
    return arch or type(module).__name__


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


def _untraceable(module: nn.Module, library: str, e: BaseException) -> UntraceableModel:
    hint = "give its depth stops by hand"
    if library == "torchvision" and type(module).__module__.startswith("timm."):
        hint = "it is a timm model: use library='timm', whose tracer knows timm's leaf modules; or " + hint
    elif library == "timm":
        hint += " or register the offending module with timm.layers.register_notrace_module"
    return UntraceableModel(f"{_model_name(module)} cannot be traced by torch.fx ({_first_line(e)}); {hint}")


@dataclass
class _Graph:
    """The traced node names of a module and where each name (node or module prefix) sits."""

    eval_nodes: list[str]
    train_nodes: list[str]
    last: dict[str, int] = field(default_factory=dict)  # name or module prefix -> index of its last eval node
    first: dict[str, int] = field(default_factory=dict)  # ... and of its first
    in_train: set[str] = field(default_factory=set)  # names and prefixes present in the train graph too

    def __post_init__(self):
        for i, n in enumerate(self.eval_nodes):
            parts = n.split(".")
            for k in range(1, len(parts) + 1):
                self.last[".".join(parts[:k])] = i
                self.first.setdefault(".".join(parts[:k]), i)
        for n in self.train_nodes:
            parts = n.split(".")
            for k in range(1, len(parts) + 1):
                self.in_train.add(".".join(parts[:k]))

    def pos(self, name: str) -> int | None:
        """Forward position of a cut (None: not a cut that feature extraction accepts in both modes)."""
        return self.last.get(name) if name in self.in_train else None


def _trace(module: nn.Module, library: str) -> _Graph:
    _, get_names = _fx(library)
    with MODEL_LOCK.exclusive(), warnings.catch_warnings():  # tracing: see core/models/lock.py
        warnings.simplefilter("ignore")
        was_training = module.training
        try:
            train_nodes, eval_nodes = get_names(module)
        except UserError:
            raise
        except Exception as e:
            raise _untraceable(module, library, e) from e
        finally:
            module.train(was_training)
    return _Graph(list(eval_nodes), list(train_nodes))


def _placeholders(module: nn.Module) -> set[str]:
    try:
        return {"x", *inspect.signature(module.forward).parameters}
    except (TypeError, ValueError):
        return {"x"}


def _probe_input(module: nn.Module, size: int) -> torch.Tensor:
    p = next((t for t in module.parameters() if t.is_floating_point()), None)
    if p is None:
        return torch.zeros(1, 3, size, size)
    return torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype)


def _extract(module: nn.Module, library: str, nodes: list[str], size: int) -> dict:
    """One feature extractor returning all `nodes`, run once (eval mode, no grad) on zeros of `size` px."""
    create, _ = _fx(library)
    with MODEL_LOCK.exclusive(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        was_training = module.training
        try:
            try:
                body = create(module, return_nodes={n: n for n in nodes})
            except Exception as e:
                bad = re.search(r"node: '([^']+)'", str(e))
                if bad:
                    raise NotACut(f"{bad.group(1)!r} is not a cut of {_model_name(module)} that {library}'s "
                                  f"feature extraction accepts (not in its traced graph)", bad.group(1)) from e
                raise _untraceable(module, library, e) from e
            body.eval()
            try:
                with torch.no_grad():
                    return body(_probe_input(module, size))
            except Exception as e:
                raise UserError(f"{_model_name(module)}: a forward pass at {size} px failed "
                                f"({_first_line(e)}); check the input size") from e
        finally:
            module.train(was_training)


def check_stops(module: nn.Module, library: str, stops, size: int) -> dict[str, tuple[int, ...]]:
    """Build one feature extractor returning every stop (`Stop`s or node names), run it on
    `torch.zeros(1, 3, size, size)` and return `{node: shape}` (shape without the batch dimension).
    Raises UserError naming the first node that is not a cut, or whose output is not a floating tensor."""
    nodes = [s.node if isinstance(s, Stop) else str(s) for s in stops]
    if not nodes:
        return {}
    if len(set(nodes)) != len(nodes):
        dup = next(n for n in nodes if nodes.count(n) > 1)
        raise UserError(f"stop {dup!r} is listed twice")
    for n in nodes:
        if n in _placeholders(module):
            raise UserError(f"stop {n!r} is the model's input, not a cut")
    out = _extract(module, library, nodes, size)
    shapes = {}
    for n in nodes:
        v = out.get(n)
        if not (isinstance(v, torch.Tensor) and v.is_floating_point()):
            kind = type(v).__name__ if not isinstance(v, torch.Tensor) else f"{v.dtype} tensor"
            raise UserError(f"stop {n!r} of {_model_name(module)} outputs a {kind}, not a floating tensor")
        shapes[n] = tuple(v.shape[1:])
    return shapes


# ------------------------------------------------------------------------------------ module structure

_TRIVIAL_TYPES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.Flatten, nn.Unflatten)
_TRIVIAL_NAMES = {"Identity", "DropPath", "StochasticDepth", "Permute", "Flatten", "Dropout", "DropBlock2d"}
_STEM_NAME = re.compile(r"(^|_)stem($|_)|^patch_embed$|^conv_proj$|^patch_embedding$|^tokenizer$")
_HEAD_NAME = re.compile(r"^(head|heads|head_dist|classifier|fc|fc_norm|pre_logits|logits)$")
_ACT_NAMES = {"ReLU", "ReLU6", "GELU", "SiLU", "Swish", "Hardswish", "HardSwish", "Hardsigmoid", "Mish", "Tanh",
              "Sigmoid", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELUTanh", "QuickGELU", "Softplus"}
_STAGE_NAME = re.compile(r"^(stage|layer|level|block|s)_?\d+$")
_DOWN = re.compile(r"down|merg|reduc|transition|patch_embed", re.IGNORECASE)


def _trivial(m: nn.Module) -> bool:
    """Layers that change nothing worth seeing (identity, dropout, drop-path, flatten, permute)."""
    if isinstance(m, _TRIVIAL_TYPES) or type(m).__name__ in _TRIVIAL_NAMES:
        return True
    kids = list(m.children())
    return bool(kids) and not any(True for _ in m.parameters(recurse=False)) and all(_trivial(k) for k in kids)


def _is_act(m: nn.Module) -> bool:
    t = type(m).__name__
    return t in _ACT_NAMES or ("Attention" not in t and type(m).__module__.endswith(("activation", "activations")))


def _is_norm(m: nn.Module) -> bool:
    t = type(m).__name__
    return "Norm" in t and "Linear" not in t and "Conv" not in t


def _is_pool(m: nn.Module) -> bool:
    return "Pool" in type(m).__name__


@dataclass
class _Stage:
    name: str
    blocks: list[str]
    pre: list[str] = field(default_factory=list)  # in-stage parts before the first block
    between: list[tuple[str, int]] = field(default_factory=list)  # (part, index of the block before it)
    post: list[str] = field(default_factory=list)  # in-stage parts after the last block
    flat: bool = False  # a container whose leading / trailing parts are not blocks (stem / head layers)
    trimmed: _Stage | None = None  # read as the only stage of a flat model (see `_container_stage`)


class _Structure:
    """The module hierarchy read together with the graph: positions, kids in forward order, stages."""

    def __init__(self, module: nn.Module, graph: _Graph):
        self.root = module
        self.graph = graph
        self.mods = dict(module.named_modules())
        self._stage: dict[str, _Stage | None] = {}
        self._weight: dict[str, int] = {}
        self._kids: dict[str, list[str]] = {}
        info = getattr(module, "feature_info", None) or []
        self.feature_info_names = [f.get("module") for f in info if isinstance(f, dict)]
        self.feature_modules = set(self.feature_info_names)

    def pos(self, name: str) -> int | None:
        return self.graph.pos(name)

    def kids(self, name: str) -> list[str]:
        """Non-trivial children that run in the eval graph, in forward order (by their last node)."""
        if name not in self._kids:
            out = []
            for attr, k in self.mods[name].named_children():
                full = f"{name}.{attr}" if name else attr
                if not _trivial(k) and self.pos(full) is not None:
                    out.append(full)
            self._kids[name] = sorted(out, key=self.pos)
        return list(self._kids[name])

    def composite(self, name: str) -> bool:
        """A module made of other layers (whether or not the tracer goes inside it)."""
        return any(not _trivial(k) for k in self.mods[name].children())

    def weight(self, name: str) -> int:
        """How much a module holds: its non-trivial leaf layers."""
        if name not in self._weight:
            m = self.mods[name]
            kids = [f"{name}.{a}" if name else a for a, k in m.named_children() if not _trivial(k)]
            self._weight[name] = sum(self.weight(k) for k in kids) if kids else 1
        return self._weight[name]

    def stage(self, name: str) -> _Stage | None:
        """The stage a module is, or None: see the module docstring."""
        if name not in self._stage:
            self._stage[name] = None  # guards recursion
            self._stage[name] = self._find_stage(name)
        return self._stage[name]

    def _find_stage(self, name: str) -> _Stage | None:
        m = self.mods[name]
        attr = name.rsplit(".", 1)[-1]
        if name and (_STEM_NAME.search(attr) or _HEAD_NAME.match(attr)):
            return None
        kids = self.kids(name)
        if not kids:
            return None
        if isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            return self._container_stage(name, kids)
        for inner_attr in ("blocks", "layers"):
            inner = f"{name}.{inner_attr}" if name else inner_attr
            if inner in kids and isinstance(self.mods[inner], (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
                st = self._container_stage(inner, self.kids(inner), nested_ok=True)
                if st is None:
                    continue
                p = self.pos(st.blocks[0])
                q = self.pos(st.blocks[-1])
                pre = [k for k in kids if k != inner and self.pos(k) < p]
                post = [k for k in kids if k != inner and self.pos(k) > q]
                return _Stage(name, st.blocks, pre + st.pre, st.between, st.post + post)
        # numbered blocks of one kind in a stage module: timm's RegStage s1 = (b1, b2, ...); only for a
        # module named as a stage or listed in feature_info (parallel branches are numbered too)
        if not (_STAGE_NAME.search(attr) or name in self.feature_modules):
            return None
        if all(self.composite(k) for k in kids) and len({type(self.mods[k]) for k in kids}) == 1:
            numbered = [re.fullmatch(r"([A-Za-z_]*?)_?(\d+)", k.rsplit(".", 1)[-1]) for k in kids]
            if all(numbered) and len({g.group(1) for g in numbered}) == 1:
                nums = [int(g.group(2)) for g in numbered]
                if nums == list(range(nums[0], nums[0] + len(nums))):
                    return _Stage(name, kids)
        return None

    def _container_stage(self, name: str, kids: list[str], nested_ok: bool = False) -> _Stage | None:
        """A container of blocks: its composite children (the layers before the first, after the last
        and between them are its pre / post / between parts). `trimmed` is the same stage read as a flat
        list, its light composite children at either end (a stem conv, a head conv) left out of the blocks."""
        if not nested_ok and any(self.stage(k) for k in kids):
            return None  # a container of stages, not of blocks
        comp = [k for k in kids if self.composite(k)]
        if not comp:
            return None
        if len(comp) == 1 and len(kids) > 1 and not _STAGE_NAME.search(name.rsplit(".", 1)[-1]):
            return None  # one block with loose layers around it: a block itself (ConvMixer's)
        st = self._split(name, kids, comp)
        threshold = 0.5 * statistics.median(self.weight(k) for k in comp)
        heavy = [k for k in comp if self.weight(k) >= threshold]
        if heavy != comp:
            st.trimmed = self._split(name, kids, heavy)
            st.trimmed.flat = True
        return st

    def _split(self, name: str, kids: list[str], blocks: list[str]) -> _Stage:
        i0, i1 = kids.index(blocks[0]), kids.index(blocks[-1])
        st = _Stage(name, [], pre=kids[:i0], post=kids[i1 + 1:])
        for k in kids[i0:i1 + 1]:
            if k in blocks:
                st.blocks.append(k)
            else:
                st.between.append((k, len(st.blocks) - 1))
        st.flat = bool(st.pre or st.post or st.between)
        return st

    def find_trunk(self) -> tuple[str, list[str]] | None:
        """(trunk, its stage children): the module with the most stage children (shallowest first) among
        those whose stages hold at least 40% of the model's layers (so no block's inner branches win)."""
        best, best_n = None, 0
        total = self.weight("")
        queue = [""]
        while queue:
            name = queue.pop(0)
            kids = self.kids(name)
            stages = [k for k in kids if self.stage(k)]
            if len(stages) > best_n and sum(self.weight(k) for k in stages) >= 0.4 * total:
                best, best_n = (name, stages), len(stages)
            queue += [k for k in kids if not self.stage(k) and self.composite(k)]
        return best


# ----------------------------------------------------------------------------------------- candidates


SOFT, HARD = 1, 2  # `_Cand.keep`


@dataclass
class _Cand:
    node: str
    label: str
    priority: int = 1  # among candidates that cut at the same node, the highest is kept
    keep: int = 0  # when thinned to max_stops: 2 kept first (stage ends, logits), 1 next (stem end, head)


def _tname(struct: _Structure, name: str) -> str:
    return type(struct.mods[name]).__name__ if name in struct.mods else name.rsplit(".", 1)[-1]


def _attr(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _part(name: str) -> str:
    """A part's name in a label: its attribute, or `layer i` for an index in a container."""
    a = _attr(name)
    return f"layer {a}" if a.isdigit() else a


def _stem_cands(struct: _Structure, parts: list[str]) -> list[_Cand]:
    if len(parts) == 1:
        return [_Cand(parts[0], f"stem ({_tname(struct, parts[0])})", 2, SOFT)]
    out = []
    for j, p in enumerate(parts, 1):
        a = _attr(p)
        a = str(j) if a.isdigit() else a
        out.append(_Cand(p, f"stem {a} ({_tname(struct, p)})", 2, SOFT if j == len(parts) else 0))
    return out


def _head_label(struct: _Structure, p: str) -> str:
    m, t = struct.mods[p], _tname(struct, p)
    if _is_norm(m):
        return f"final norm ({t})"
    if _is_pool(m):
        return f"global pool ({t})"
    if _is_act(m):
        return f"head act ({t})"
    if "Conv" in t or "conv" in _attr(p):
        return f"head conv ({t})"
    return f"{_attr(p)} ({t})" if _attr(p).startswith("head") else f"head {_part(p)} ({t})"


def _head_cands(struct: _Structure, parts: list[str], logits: _Cand) -> list[_Cand]:
    """The layers between the trunk and the logits, then those inside the logits module."""
    lp = struct.pos(logits.node)
    out = []
    for p in parts:
        if struct.pos(p) < lp and not (logits.node == p or logits.node.startswith(p + ".")):
            out.append(_Cand(p, _head_label(struct, p), 3, SOFT))
    if logits.node in struct.mods:
        out += _inner_head_cands(struct, logits.node)
    return out


def _inner_head_cands(struct: _Structure, name: str) -> list[_Cand]:
    """Inside the logits module: its pooling, its norm, and the activation of a hidden layer (pre-logits)."""
    out = []
    kids = struct.kids(name)
    for i, p in enumerate(kids):
        m, t = struct.mods[p], _tname(struct, p)
        later = [_tname(struct, k) for k in kids[i + 1:]]
        if _is_pool(m):
            out.append(_Cand(p, f"global pool ({t})", 3, SOFT))
        elif _is_norm(m):
            out.append(_Cand(p, f"final norm ({t})", 3, SOFT))
        elif _is_act(m):
            if any("Linear" in k or "Conv" in k for k in later):  # a hidden layer's output
                out.append(_Cand(p, f"pre-logits ({t})", 3, SOFT))
        elif struct.composite(p) and not ("Linear" in t or "Conv" in t):
            out += _inner_head_cands(struct, p)
    return out


_RESHAPE = re.compile(r"^(flatten|view|reshape|squeeze|contiguous|float)(_\d+)?$")


def _logits(struct: _Structure) -> _Cand:
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
            return _Cand(name, f"logits ({_tname(struct, name)})", 4, HARD)
    if nodes[last] in struct.mods:
        return _Cand(nodes[last], f"logits ({_tname(struct, nodes[last])})", 4, HARD)
    return _Cand(nodes[-1], f"logits ({nodes[-1]})", 4, HARD)


def _stage_cands(struct: _Structure, st: _Stage, k: int, n_stages: int) -> list[_Cand]:
    """The blocks of stage k (1-based) of n, with the downsampling and transitions inside the stage. The
    leading parts of the first stage and the trailing parts of the last are left to the caller when the
    stage is flat or the only one (they are the stem's and the head's)."""
    where = f"stage {k} " if n_stages > 1 else ""
    out = []
    if not (k == 1 and (st.flat or n_stages == 1)):
        for p in st.pre:
            t = _tname(struct, p)
            if _DOWN.search(_attr(p)) or _DOWN.search(t):
                label = f"downsample {k - 1}->{k} ({t})" if k > 1 else f"{where}downsample ({t})"
            else:
                label = f"{where}{_part(p)} ({t})"
            out.append(_Cand(p, label, 2))
    for j, b in enumerate(st.blocks):
        label = f"{where}block {j + 1} ({_tname(struct, b)})"
        # the last block: named by the stage when that is where the stage's output is
        end = j == len(st.blocks) - 1
        out.append(_Cand(st.name if end and struct.pos(b) == struct.pos(st.name) else b, label, 2, HARD if end else 0))
        for p, after in st.between:
            if after == j:
                what = "pool" if _is_pool(struct.mods[p]) else "transition"
                out.append(_Cand(p, f"{where}{what} after block {j + 1} ({_tname(struct, p)})", 2))
    if not (k == n_stages and (st.flat or n_stages == 1)):
        for p in st.post:
            out.append(_Cand(p, f"{where}{_part(p)} ({_tname(struct, p)})", 2))
    out.append(_Cand(st.name, f"{where or 'trunk '}output ({_tname(struct, st.name)})", 1, HARD))
    return out


def _trunk_cands(struct: _Structure, trunk: str, stages: list[str], infos: list[_Stage]) -> list[_Cand]:
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
    cands: list[_Cand] = _stem_cands(struct, stem) if stem else []
    between = [k for k in struct.kids(trunk) if k not in stages and first < struct.pos(k) < last] \
        if stages != [trunk] else []
    for k, (s, st) in enumerate(zip(stages, infos), 1):
        cands += _stage_cands(struct, st, k, n)
        nxt = struct.pos(stages[k]) if k < n else last
        for b in between:
            if struct.pos(s) < struct.pos(b) < nxt:
                cands.append(_Cand(b, f"downsample {k}->{k + 1} ({_tname(struct, b)})", 2))
    logits = _logits(struct)
    cands += _head_cands(struct, head, logits)
    cands += _function_pools(struct, last, struct.pos(logits.node))
    cands.append(logits)
    return cands


def _structural_cands(struct: _Structure) -> list[_Cand] | None:
    """Stem, stages and blocks, head, from the module hierarchy; None if it shows no trunk."""
    found = struct.find_trunk()
    if found is None:
        return None
    trunk, stages = found
    infos = [struct.stage(s) for s in stages]
    if len(infos) == 1 and infos[0].trimmed:  # a flat model: its light first / last units are stem / head
        infos = [infos[0].trimmed]
    return _trunk_cands(struct, trunk, stages, infos)


def _flat_root_cands(struct: _Structure) -> list[_Cand] | None:
    """A model whose blocks are the root's own children (GoogLeNet, Inception v3): one flat stage."""
    kids = [k for k in struct.kids("") if not _HEAD_NAME.match(k)]
    st = struct._container_stage("", kids, nested_ok=True) if kids else None
    st = st.trimmed if st is not None and st.trimmed else st
    if st is None or len(st.blocks) < 3:
        return None
    return _trunk_cands(struct, "", [""], [st])


def _first_pos(struct: _Structure, name: str) -> int:
    return struct.graph.first.get(name, len(struct.graph.eval_nodes))


def _function_pools(struct: _Structure, after: int, before: int) -> list[_Cand]:
    """Top-level pooling done by a function after the trunk (`x.mean((2, 3))`, `F.adaptive_avg_pool2d`)."""
    out = []
    for i in range(after + 1, before):
        n = struct.graph.eval_nodes[i]
        if "." not in n and n not in struct.mods and re.match(r"(adaptive_)?(avg|max)?_?pool|mean", n) \
                and struct.pos(n) == i:
            out.append(_Cand(n, f"global pool ({n})", 3, SOFT))
    return out


def _feature_info_cands(struct: _Structure) -> list[_Cand] | None:
    """timm's named stage outputs, each preceded by its composite parts, then the head."""
    names = [n for n in dict.fromkeys(struct.feature_info_names) if n in struct.mods and struct.pos(n) is not None]
    names.sort(key=struct.pos)
    if len(names) < 2:
        return None
    cands, prev = [], -1
    for k, s in enumerate(names, 1):
        for p in struct.kids(s):
            if prev < struct.pos(p) < struct.pos(s) and struct.composite(p):
                cands.append(_Cand(p, f"stage {k} {_part(p)} ({_tname(struct, p)})", 2))
        cands.append(_Cand(s, f"stage {k} output ({_tname(struct, s)})", 2, HARD))
        prev = struct.pos(s)
    stem = [k for k in struct.kids("") if struct.pos(k) < struct.pos(names[0]) and not names[0].startswith(k + ".")]
    logits = _logits(struct)
    head = [k for k in struct.kids("") if struct.pos(k) > prev]
    return (_stem_cands(struct, stem) if stem else []) + cands + _head_cands(struct, head, logits) \
        + _function_pools(struct, prev, struct.pos(logits.node)) + [logits]


def _boundary_cands(struct: _Structure) -> list[_Cand]:
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
    cands = [_Cand(k, f"{k} ({_tname(struct, k)})", 1) for k in level]
    logits = _logits(struct)
    return [c for c in cands if struct.pos(c.node) < struct.pos(logits.node)] + [logits]


# ------------------------------------------------------------------------------------------ selection


def _order(struct: _Structure, cands: list[_Cand], forbidden: set[str]) -> list[_Cand]:
    """In forward order, one per cut position (highest priority, then first found), none at the input."""
    by_pos: dict[int, _Cand] = {}
    for c in cands:
        p = struct.pos(c.node)
        if p is None or c.node in forbidden:
            continue
        m = struct.mods.get(c.node)
        if isinstance(m, (nn.ModuleList, nn.ModuleDict)) and not struct.stage(c.node):
            continue  # parallel branches (HRNet, CrossViT): the name would cut only the last one
        old = by_pos.get(p)
        if old is None or c.priority > old.priority:
            by_pos[p] = _Cand(c.node, c.label, c.priority, max(c.keep, old.keep if old else 0))
        else:
            old.keep = max(old.keep, c.keep)
    return [by_pos[p] for p in sorted(by_pos)]


def _thin(cands: list[_Cand], max_stops: int) -> list[_Cand]:
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


def _unique_labels(cands: list[_Cand]) -> list[Stop]:
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
    graph = _trace(module, library)
    struct = _Structure(module, graph)
    forbidden = _placeholders(module)
    cands = None
    for find in (_structural_cands, _flat_root_cands, _feature_info_cands if library == "timm" else None):
        if find is not None and (cands is None or len(_order(struct, cands, forbidden)) < 3):
            cands = find(struct) or cands
    if cands is None or len(_order(struct, cands, forbidden)) < 3:
        cands = _boundary_cands(struct)
    for c in cands:  # timm's named stage outputs are stage ends too
        if c.node in struct.feature_modules:
            c.keep = HARD
    ordered = _order(struct, cands, forbidden)
    ordered = _verified(module, library, ordered, [size] if size else _probe_sizes(module, library))
    if not ordered:
        raise UserError(f"{_model_name(module)}: no depth stop outputs a floating tensor")
    return _unique_labels(_thin(ordered, max_stops))


def _verified(module: nn.Module, library: str, cands: list[_Cand], sizes: list[int]) -> list[_Cand]:
    """The candidates whose cut outputs a floating tensor, by one forward pass (the first size that runs)."""
    err = None
    cands = list(cands)
    for s in sizes:
        while cands:
            try:
                out = _extract(module, library, [c.node for c in cands], s)
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


# ------------------------------------------------------------------------------------------ input size


def _torchvision_min_size(module: nn.Module) -> int | None:
    """The smallest `min_size` in the weights metadata of the torchvision module that defines the class."""
    try:
        from torchvision.models._api import WeightsEnum
    except ImportError:  # pragma: no cover
        return None
    pymod = sys.modules.get(type(module).__module__)
    sizes = []
    for obj in vars(pymod).values() if pymod else ():
        if isinstance(obj, type) and issubclass(obj, WeightsEnum) and obj is not WeightsEnum:
            for w in obj:
                ms = w.meta.get("min_size")
                if ms:
                    sizes.append(int(max(ms)))
    return min(sizes) if sizes else None


def _pair(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def input_size_constraint(module: nn.Module, library: str) -> dict:
    """Which square input sizes `module` takes: `{"min_size", "multiple", "fixed", "default", "why"}`.

    `fixed` is the one size a model built for a fixed input takes (None if any), `min_size` the smallest
    size worth using, `multiple` what a size must be a multiple of, `default` the size it was made for.

    * timm: a patch embedding built strictly for one size (its `img_size`: timm does not update
      `pretrained_cfg` for `img_size=`), else `pretrained_cfg` (`input_size`, `fixed_input_size`,
      `min_input_size`); otherwise the largest reduction of `feature_info` as the minimum; a patchify
      embedding's stride as the multiple;
    * torchvision: the `min_size` of the weights metadata of the model's builder module; a ViT's
      `image_size` / `patch_size` attributes (its position embeddings are built for one size); MaxViT's
      `partition_size` and the grids its blocks were built for (a stride-2 stem, then each block halves,
      and every block's grid is fixed at build). Swin pads its windows, so it takes any size.
    """
    if library not in LIBRARIES:
        raise UserError(f"library must be one of {', '.join(LIBRARIES)} (got {library!r})")
    out = {"min_size": 1, "multiple": 1, "fixed": None, "default": 224, "why": ""}
    cfg = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None)
    cfg = cfg if isinstance(cfg, dict) else {}
    if cfg.get("input_size"):
        out["default"] = int(cfg["input_size"][-1])
    pe = getattr(module, "patch_embed", None)
    if pe is not None and getattr(pe, "patch_size", None) is not None:
        proj = getattr(pe, "proj", None)
        if isinstance(proj, nn.Conv2d) and proj.kernel_size == proj.stride:  # patchify: a size in whole patches
            out["multiple"] = proj.stride[0]
        # the size the patch embedding was built for (timm does not update pretrained_cfg for img_size=)
        if getattr(pe, "strict_img_size", False) and getattr(pe, "img_size", None) \
                and not getattr(module, "dynamic_img_size", False):
            fixed = _pair(pe.img_size)
            out.update(fixed=fixed, min_size=fixed, default=fixed, why="patch embedding built for one image size")
            return out
    if cfg.get("fixed_input_size") and cfg.get("input_size"):
        out.update(fixed=out["default"], min_size=out["default"], why="pretrained_cfg fixed_input_size")
        return out
    if cfg.get("min_input_size"):
        out.update(min_size=int(cfg["min_input_size"][-1]), why="pretrained_cfg min_input_size")
    info = getattr(module, "feature_info", None)
    if out["min_size"] == 1 and info:
        try:
            red = max(int(f["reduction"]) for f in info)
            out.update(min_size=red, why="largest feature_info reduction")
        except (TypeError, KeyError, ValueError):
            pass
    if library == "torchvision":
        ms = _torchvision_min_size(module)
        if ms:
            out.update(min_size=ms, why="torchvision weights min_size")
        image_size, patch = getattr(module, "image_size", None), getattr(module, "patch_size", None)
        if isinstance(image_size, int) and isinstance(patch, int):  # torchvision ViT
            out.update(fixed=image_size, min_size=image_size, multiple=patch, default=image_size,
                       why="position embeddings built for image_size")
            return out
        blocks = getattr(module, "blocks", None)
        partition = getattr(module, "partition_size", None)
        if isinstance(partition, int) and blocks is not None and len(blocks) \
                and getattr(blocks[-1], "grid_size", None) is not None:  # torchvision MaxVit
            scale = 2 ** (len(blocks) + 1)  # stem /2, then each block /2
            fixed = _pair(blocks[-1].grid_size) * scale
            out.update(fixed=fixed, min_size=fixed, multiple=partition * scale, default=fixed,
                       why="MaxViT grids fixed at build (partition size x 32)")
            return out
    return out
