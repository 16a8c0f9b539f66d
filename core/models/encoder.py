"""The encoder `O_l`: take an image in [0, 1], normalise it if the recipe asks, run the model up to a node.

Truncation is torchvision's feature extraction (timm's wrapper of it where the architecture's
entry says `feature_extraction="timm"`): the traced graph is cut after the requested nodes, so
no later layer is ever computed.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn

from core.errors import UserError
from core.models.checkpoints import LoadedModel
from core.models.lock import MODEL_LOCK
from core.models.registry import Stop


def _torchvision_fx():
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    return create_feature_extractor, get_graph_node_names


def _timm_fx():
    # timm's wrapper knows its own leaf modules (e.g. padding-same convs) that must not be traced into
    from timm.models._features_fx import create_feature_extractor, get_graph_node_names

    return create_feature_extractor, get_graph_node_names


# `Architecture.feature_extraction` -> (create_feature_extractor, get_graph_node_names)
_FEATURE_EXTRACTION = {"torchvision": _torchvision_fx, "timm": _timm_fx}


def _fx(model: LoadedModel):
    return _FEATURE_EXTRACTION[model.arch.feature_extraction]()


_STOPS_CACHE: dict[tuple, list[Stop]] = {}


def depth_stops(model: LoadedModel) -> list[Stop]:
    """The named depth stops of this model, in forward order: the entry's own list, else derived from the module
    and its traced graph (`core.models.autostops.derive_stops`; once per entry and size)."""
    if model.arch.stops_of is not None:
        return model.arch.stops_of(model.module)
    key = (model.arch, model.image_size)
    if key not in _STOPS_CACHE:
        from core.models.autostops import derive_stops

        with MODEL_LOCK.exclusive():  # tracing: see core/models/lock.py
            if key not in _STOPS_CACHE:  # another session may have traced it while this one waited
                _STOPS_CACHE[key] = derive_stops(model.module, model.arch.feature_extraction)
    return list(_STOPS_CACHE[key])


_NODE_CACHE: dict[tuple, tuple[frozenset, tuple]] = {}


def _nodes(model: LoadedModel) -> tuple[frozenset, tuple]:
    key = (model.arch, model.image_size)  # the entry itself: a re-registered name is a new model
    if key not in _NODE_CACHE:
        _, get_names = _fx(model)
        with MODEL_LOCK.exclusive():  # tracing: see core/models/lock.py
            if key not in _NODE_CACHE:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # train/eval graphs differ only in aux heads
                    _, eval_nodes = get_names(model.module)
                modules = {name for name, _ in model.module.named_modules() if name}
                _NODE_CACHE[key] = (frozenset(eval_nodes) | frozenset(modules), tuple(eval_nodes))
    return _NODE_CACHE[key]


def graph_nodes(model: LoadedModel) -> frozenset[str]:
    """Every name accepted as a layer: traced graph nodes plus module names (their last output)."""
    return _nodes(model)[0]


def forward_position(model: LoadedModel, name: str) -> int:
    """Where `name` sits in forward order: its index among the traced graph's nodes; a module name
    counts as its last node (its output). -1 for a name that is not in the graph."""
    order = _nodes(model)[1]
    best = -1
    for i, n in enumerate(order):
        if n == name or n.startswith(name + "."):
            best = i
    return best


def resolve_layer(model: LoadedModel, layer: str) -> Stop:
    """The stop for `layer` (a depth stop or any graph node), or a message listing the stops."""
    for stop in depth_stops(model):
        if stop.node == layer:
            return stop
    if layer in graph_nodes(model) and layer != "x":
        return Stop(layer, layer)
    names = ", ".join(s.node for s in depth_stops(model))
    raise UserError(f"unknown layer {layer!r} for {model.name}: use one of {names} (or any graph node name)")


class Encoder(nn.Module):
    """x in [0, 1] of shape (B, 3, H, W) -> activations at `nodes` (a dict, or a tensor for one).

    `normalize=True` feeds the model the mean/std it was trained with; False feeds raw [0, 1]
    pixels, as the paper's script does. It is a recipe's choice (`Preset.normalize`).
    """

    def __init__(self, model: LoadedModel, nodes: list[str] | str, normalize: bool = True):
        super().__init__()
        self.normalize = bool(normalize)
        self.single = isinstance(nodes, str)
        self.nodes = [nodes] if self.single else list(nodes)
        for n in self.nodes:
            resolve_layer(model, n)
        create, _ = _fx(model)
        with MODEL_LOCK.exclusive(), warnings.catch_warnings():  # tracing: see core/models/lock.py
            warnings.simplefilter("ignore", UserWarning)
            self.body = create(model.module, return_nodes={n: n for n in self.nodes})
        self.body.eval()
        self.register_buffer("mean", torch.tensor(model.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(model.std, dtype=torch.float32).view(1, 3, 1, 1))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """What the model's first layer sees."""
        return (x - self.mean) / self.std if self.normalize else x

    def forward(self, x: torch.Tensor):
        out = self.body(self.prepare(x))
        for n, v in out.items():
            if not (isinstance(v, torch.Tensor) and v.is_floating_point()):
                raise UserError(f"layer {n!r} does not output an activation tensor; pick another node")
        return out[self.nodes[0]] if self.single else out


_SHAPE_CACHE: dict[tuple, dict[str, tuple]] = {}


def stop_shapes(model: LoadedModel, size: int | None = None) -> dict[str, tuple[int, ...]]:
    """Output shape (without batch) of every depth stop for a square input of `size` px."""
    size = size or model.image_size
    model.arch.check_size(size)
    key = (model.arch, model.image_size, size)
    if key not in _SHAPE_CACHE:
        with MODEL_LOCK.exclusive():  # builds (traces) an encoder, then one forward pass
            if key not in _SHAPE_CACHE:
                stops = [s.node for s in depth_stops(model)]
                enc = Encoder(model, stops)
                with torch.no_grad():
                    out = enc(torch.zeros(1, 3, size, size))
                _SHAPE_CACHE[key] = {n: tuple(out[n].shape[1:]) for n in stops}
    return _SHAPE_CACHE[key]
