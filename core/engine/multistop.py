"""Every depth stop of a checkpoint as one optimisation: one batch through the shared prefix of the network.

A curve is many small runs of the same model, one per stop. Run one after another, each pays for its
own trip through the layers before its stop, and a GPU sits idle between tiny kernels. Here the seeds
of every stop ride in one batch, laid out deepest stop first. At each stop node of the traced graph
that stop's samples (the tail of the batch) are taken out as its activations and the rest go on
(`torch.narrow` on the batch), so no sample is computed past its own stop: no wasted FLOPs.

This is exact because depth stops are cut points of the graph (every path from the input to a later
node runs through the stop), which `MultiStopEncoder` checks, and because samples never mix in an
eval-mode network: each run's gradient is the one it would get alone. Each stop stays its own
`Inversion` (its optimiser, schedules, metrics and convergence rule); only the encoder's forward and
backward are shared (`run_together`). A converged stop leaves the batch.

`core.jobs.pipeline.run_stops` is the pipeline entry (cache, queue, out-of-memory fallback); the curve calls it
with `batch_stops` on (`core.studies.curve.iter_curve`).
"""

from __future__ import annotations

import operator
import time
from typing import Callable, Sequence

import torch

from core.errors import UserError
from core.models.checkpoints import LoadedModel
from core.models.encoder import Encoder
from core.models.lock import MODEL_LOCK


class NotCutPoints(UserError):
    """Some stop is not a cut point of the traced graph: its runs cannot share one batch."""


def _batch_nodes(body: torch.fx.GraphModule, size: int) -> set:
    """Nodes that carry the batch: their value (a tensor's shape, an int such as `x.shape[0]`) changes
    with the batch size. Found by running the graph on batches of 2 and 3 (shapes taken for ints like
    a ViT's patch count, which depend on the input but not on the batch, must not count)."""
    seen: dict = {}

    class Probe(torch.fx.Interpreter):
        def run_node(self, n):
            value = super().run_node(n)
            seen.setdefault(n, []).append(_signature(value))
            return value

    weights = next(iter(body.parameters()), None)  # where the model is (a run may have moved it to the GPU)
    device = weights.device if weights is not None else torch.device("cpu")
    g = torch.Generator().manual_seed(0)  # the global random state is the user's
    with torch.no_grad(), MODEL_LOCK.shared():
        for b in (2, 3):
            Probe(body).run(torch.rand(b, 3, size, size, generator=g).to(device))
    return {n for n, sig in seen.items() if len(sig) == 2 and sig[0] != sig[1]}


def _signature(value):
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape))
    if isinstance(value, (int, float, str, bool, type(None))):
        return value
    if isinstance(value, (tuple, list, torch.Size)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _signature(v)) for k, v in value.items())
    return type(value).__name__


def _not_cut_points(body: torch.fx.GraphModule, stops: list, size: int) -> list[str]:
    """The stops (pos, name, node) that a later node bypasses: it reads a batch value computed before the stop
    (e.g. a ViT's `n = x.shape[0]` taken before `conv_proj` and used after it)."""
    graph = body.graph
    nodes = list(graph.nodes)
    order = {n: i for i, n in enumerate(nodes)}
    batch = _batch_nodes(body, size)
    bad = []
    for pos, name, stop in stops:
        if any(i in batch and i is not stop and order[i] < pos
               for user in nodes[pos + 1:] if user.op != "output" for i in user.all_input_nodes):
            bad.append(name)
    return bad


_CUT_CACHE: dict[tuple, frozenset] = {}


def cut_points(model: LoadedModel, nodes: Sequence[str], size: int) -> tuple[list[str], list[str]]:
    """Split `nodes` into those that can share one batch (cut points of the traced graph) and the rest,
    which must run alone.

    Args:
        model: the loaded model.
        nodes: graph node names (depth stops).
        size: the run's image size (the check runs the graph on two small batches).

    Returns:
        (shared, alone), each in the order given."""
    key = (model.arch, model.image_size, int(size), tuple(sorted(nodes)))  # a graph property: any weights
    if key not in _CUT_CACHE:
        enc = Encoder(model, list(nodes))  # traces under the model lock itself
        returned = next(n for n in enc.body.graph.nodes if n.op == "output").args[0]
        order = {n: i for i, n in enumerate(enc.body.graph.nodes)}
        _CUT_CACHE[key] = frozenset(_not_cut_points(enc.body, sorted((order[returned[n]], n, returned[n])
                                                                     for n in nodes), size))
    bad = _CUT_CACHE[key]
    return [n for n in nodes if n not in bad], [n for n in nodes if n in bad]


class MultiStopEncoder(Encoder):
    """x (B, 3, H, W), its samples grouped by stop, deepest stop first -> each stop's activations of its
    own samples.

    `forward(x, counts)`: `counts[j]` samples belong to `nodes[j]` (nodes in forward order, shallowest
    first; 0 for a stop that has left the batch), laid out deepest first, so stop j's samples are the
    batch's tail when the graph reaches it. Returns one tensor per stop, in `nodes` order.

    Raises `NotCutPoints` when a later node reads a batch value computed before a stop other than the
    stop itself (then the samples that left would be needed again).
    """

    def __init__(self, model: LoadedModel, nodes: Sequence[str], normalize: bool = True, size: int | None = None,
                 check: bool = True):
        super().__init__(model, list(nodes), normalize)
        graph = self.body.graph
        order = {n: i for i, n in enumerate(graph.nodes)}
        output = next(n for n in graph.nodes if n.op == "output")
        returned = output.args[0]  # {return name: node}
        stops = sorted(((order[returned[name]], name, returned[name]) for name in self.nodes))
        if len({s[0] for s in stops}) != len(stops):
            raise NotCutPoints("two stops are the same graph node")
        self.nodes = [name for _, name, _ in stops]
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise NotCutPoints(f"the traced graph takes {len(placeholders)} inputs, not one image batch")
        if check:  # (a prefix of checked stops needs no new check)
            bad = cut_points(model, self.nodes, size or model.image_size)[1]
            if bad:
                raise NotCutPoints(f"{', '.join(bad)} of {model.name} not a cut point of the traced graph: "
                                   "a later node reads a batch value computed before it")
        with graph.inserting_after(placeholders[0]):
            keep = graph.placeholder("keep")
        for j, (_, _, stop) in enumerate(stops):
            with graph.inserting_after(stop):
                k = graph.call_function(operator.getitem, (keep, j))
            with graph.inserting_after(k):
                rest = graph.call_function(torch.narrow, (stop, 0, 0, k))
            stop.replace_all_uses_with(rest, delete_user_cb=lambda u, rest=rest: u is not rest and u.op != "output")
        graph.lint()
        self.body.recompile()

    def forward(self, x: torch.Tensor, counts: Sequence[int] | None = None) -> list[torch.Tensor]:
        counts = list(counts) if counts is not None else [x.shape[0] // len(self.nodes)] * len(self.nodes)
        if len(counts) != len(self.nodes) or sum(counts) != x.shape[0]:
            raise ValueError(f"counts {counts} do not split a batch of {x.shape[0]} over {len(self.nodes)} stops")
        keep = [sum(counts[j + 1:]) for j in range(len(counts))]  # samples of deeper stops, past stop j
        out = self.body(self.prepare(x), keep)
        return [out[name][keep[j]:] for j, name in enumerate(self.nodes)]


def run_together(runs: Sequence, model: LoadedModel, every: int = 10,
                 on_snapshot: Callable | None = None) -> None:
    """Step every run (`core.engine.loop.Inversion`s of one model, image size and preset, at different stops)
    until each has finished, through one shared forward and backward per step.

    Each run keeps its own optimiser, schedules, history and convergence rule; a finished run leaves the
    batch. A run's `seconds` is the wall time of the steps it took part in.

    Args:
        runs: the runs, any order; their stops must be cut points (`MultiStopEncoder`).
        model: their model.
        every: steps between snapshots.
        on_snapshot: `on_snapshot(run, snapshot)` every `every` steps of each run and at its end.
    """
    if not runs:
        return
    first = runs[0]
    dev, speed, normalize = first.device, first.speed, first.preset.normalize
    nodes = [r.stop.node for r in runs]
    with MODEL_LOCK.exclusive():  # tracing: see core/models/lock.py
        full = MultiStopEncoder(model, nodes, normalize, first.size)  # checks the cut points, orders the stops
    order = full.nodes
    index = {node: j for j, node in enumerate(order)}
    runs = sorted(runs, key=lambda r: -index[r.stop.node])  # the batch's layout: deepest first
    # the deepest active stop only moves up (runs only leave), so one encoder is current at a time
    current = (len(order) - 1, _step_call(speed, speed.prepare_encoder(full.to(dev), dev), dev))
    speed.apply_global(dev)
    watch = speed.watch(dev)  # the load, followed between steps as a single run does
    last = {id(r): None for r in runs}
    every = max(1, int(every))
    while True:
        active = [r for r in runs if r.steps_done < r.total and not r.finished]
        if not active:
            return
        deepest = index[active[0].stop.node]  # samples never go past the deepest active stop
        if deepest != current[0]:
            current = None  # the deeper encoder (and its CUDA graphs, if any) goes before the next is built
            with MODEL_LOCK.exclusive():
                enc = MultiStopEncoder(model, order[:deepest + 1], normalize, check=False)
            current = (deepest, _step_call(speed, speed.prepare_encoder(enc.to(dev), dev), dev))
        counts = [0] * (deepest + 1)
        for r in active:
            counts[index[r.stop.node]] = len(r.seeds)
        t0 = time.perf_counter()
        with MODEL_LOCK.shared():
            steps = [r.steps_done for r in active]
            inputs = [r.inputs(n) for r, n in zip(active, steps)]
            outs = current[1](torch.cat([seen for _, seen in inputs]), counts)
            losses = [r.loss(img, outs[index[r.stop.node]]) for r, (img, _) in zip(active, inputs)]
            for r in active:
                r.optimizer().zero_grad(set_to_none=True)
            torch.stack([loss.sum() for loss in losses]).sum().backward()
            for r, n, (img, _), loss in zip(active, steps, inputs, losses):
                r.apply(n, img, outs[index[r.stop.node]], loss)
        spent = time.perf_counter() - t0
        first.follow(watch)  # the process's thread count, for every run of the batch
        for r, n in zip(active, steps):
            t1 = time.perf_counter()
            r.advance()  # its convergence rule's check uses the run's own encoder
            r.seconds += spent + time.perf_counter() - t1
            if r.steps_done % every == 0 or r.finished:
                last[id(r)] = r.snapshot(n, last[id(r)])
                if on_snapshot:
                    on_snapshot(r, last[id(r)])


def _step_call(speed, encoder: MultiStopEncoder, dev: torch.device) -> Callable:
    """The batched step's forward: from CUDA graphs (one recording per set of stops in the batch) when
    `SpeedOptions.cuda_graphs` is on, else the encoder under the options' autocast."""
    graphed = speed.step_encoder(encoder, dev, keep=1)
    if graphed is not None:
        return graphed

    def call(x: torch.Tensor, counts: list[int]) -> list[torch.Tensor]:
        with speed.autocast(dev):
            return encoder(x, counts)

    return call
