"""The module hierarchy read as stem, trunk of stages and head: which children are blocks,
norms, activations and pooling, and where the stages start and end."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

import torch.nn as nn

from core.models.autostops.tracing import Graph

_TRIVIAL_TYPES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.Flatten, nn.Unflatten)
_TRIVIAL_NAMES = {"Identity", "DropPath", "StochasticDepth", "Permute", "Flatten", "Dropout", "DropBlock2d"}
_STEM_NAME = re.compile(r"(^|_)stem($|_)|^patch_embed$|^conv_proj$|^patch_embedding$|^tokenizer$")
HEAD_NAME = re.compile(r"^(head|heads|head_dist|classifier|fc|fc_norm|pre_logits|logits)$")
_ACT_NAMES = {"ReLU", "ReLU6", "GELU", "SiLU", "Swish", "Hardswish", "HardSwish", "Hardsigmoid", "Mish", "Tanh",
              "Sigmoid", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELUTanh", "QuickGELU", "Softplus"}
_STAGE_NAME = re.compile(r"^(stage|layer|level|block|s)_?\d+$")
DOWN_NAME = re.compile(r"down|merg|reduc|transition|patch_embed", re.IGNORECASE)


def _trivial(m: nn.Module) -> bool:
    """Layers that change nothing worth seeing (identity, dropout, drop-path, flatten, permute)."""
    if isinstance(m, _TRIVIAL_TYPES) or type(m).__name__ in _TRIVIAL_NAMES:
        return True
    kids = list(m.children())
    return bool(kids) and not any(True for _ in m.parameters(recurse=False)) and all(_trivial(k) for k in kids)


def is_act(m: nn.Module) -> bool:
    t = type(m).__name__
    return t in _ACT_NAMES or ("Attention" not in t and type(m).__module__.endswith(("activation", "activations")))


def is_norm(m: nn.Module) -> bool:
    t = type(m).__name__
    return "Norm" in t and "Linear" not in t and "Conv" not in t


def is_pool(m: nn.Module) -> bool:
    return "Pool" in type(m).__name__


@dataclass
class Stage:
    name: str
    blocks: list[str]
    pre: list[str] = field(default_factory=list)  # in-stage parts before the first block
    between: list[tuple[str, int]] = field(default_factory=list)  # (part, index of the block before it)
    post: list[str] = field(default_factory=list)  # in-stage parts after the last block
    flat: bool = False  # a container whose leading / trailing parts are not blocks (stem / head layers)
    trimmed: Stage | None = None  # read as the only stage of a flat model (see `_container_stage`)


class Structure:
    """The module hierarchy read together with the graph: positions, kids in forward order, stages."""

    def __init__(self, module: nn.Module, graph: Graph):
        self.root = module
        self.graph = graph
        self.mods = dict(module.named_modules())
        self._stage: dict[str, Stage | None] = {}
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

    def stage(self, name: str) -> Stage | None:
        """The stage a module is, or None: see the module docstring."""
        if name not in self._stage:
            self._stage[name] = None  # guards recursion
            self._stage[name] = self._find_stage(name)
        return self._stage[name]

    def _find_stage(self, name: str) -> Stage | None:
        m = self.mods[name]
        attr = name.rsplit(".", 1)[-1]
        if name and (_STEM_NAME.search(attr) or HEAD_NAME.match(attr)):
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
                return Stage(name, st.blocks, pre + st.pre, st.between, st.post + post)
        # numbered blocks of one kind in a stage module: timm's RegStage s1 = (b1, b2, ...); only for a
        # module named as a stage or listed in feature_info (parallel branches are numbered too)
        if not (_STAGE_NAME.search(attr) or name in self.feature_modules):
            return None
        if all(self.composite(k) for k in kids) and len({type(self.mods[k]) for k in kids}) == 1:
            numbered = [re.fullmatch(r"([A-Za-z_]*?)_?(\d+)", k.rsplit(".", 1)[-1]) for k in kids]
            if all(numbered) and len({g.group(1) for g in numbered}) == 1:
                nums = [int(g.group(2)) for g in numbered]
                if nums == list(range(nums[0], nums[0] + len(nums))):
                    return Stage(name, kids)
        return None

    def _container_stage(self, name: str, kids: list[str], nested_ok: bool = False) -> Stage | None:
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

    def _split(self, name: str, kids: list[str], blocks: list[str]) -> Stage:
        i0, i1 = kids.index(blocks[0]), kids.index(blocks[-1])
        st = Stage(name, [], pre=kids[:i0], post=kids[i1 + 1:])
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
