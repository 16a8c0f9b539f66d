"""Tracing a library model with torch.fx: the graph's nodes in forward order, the cuts feature
extraction accepts, and one forward pass that checks a set of stops."""

from __future__ import annotations

import inspect
import re
import warnings
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


def model_name(module: nn.Module) -> str:
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
    return UntraceableModel(f"{model_name(module)} cannot be traced by torch.fx ({_first_line(e)}); {hint}")


@dataclass
class Graph:
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


def trace(module: nn.Module, library: str) -> Graph:
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
    return Graph(list(eval_nodes), list(train_nodes))


def placeholders(module: nn.Module) -> set[str]:
    try:
        return {"x", *inspect.signature(module.forward).parameters}
    except (TypeError, ValueError):
        return {"x"}


def _probe_input(module: nn.Module, size: int) -> torch.Tensor:
    p = next((t for t in module.parameters() if t.is_floating_point()), None)
    if p is None:
        return torch.zeros(1, 3, size, size)
    return torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype)


def extract(module: nn.Module, library: str, nodes: list[str], size: int) -> dict:
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
                    raise NotACut(f"{bad.group(1)!r} is not a cut of {model_name(module)} that {library}'s "
                                  f"feature extraction accepts (not in its traced graph)", bad.group(1)) from e
                raise _untraceable(module, library, e) from e
            body.eval()
            try:
                with torch.no_grad():
                    return body(_probe_input(module, size))
            except Exception as e:
                raise UserError(f"{model_name(module)}: a forward pass at {size} px failed "
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
        if n in placeholders(module):
            raise UserError(f"stop {n!r} is the model's input, not a cut")
    out = extract(module, library, nodes, size)
    shapes = {}
    for n in nodes:
        v = out.get(n)
        if not (isinstance(v, torch.Tensor) and v.is_floating_point()):
            kind = type(v).__name__ if not isinstance(v, torch.Tensor) else f"{v.dtype} tensor"
            raise UserError(f"stop {n!r} of {model_name(module)} outputs a {kind}, not a floating tensor")
        shapes[n] = tuple(v.shape[1:])
    return shapes
