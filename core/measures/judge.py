"""Recognisable content: does an independent trained network see in a reconstruction what it sees in the image?

The judge is a trained classifier other than the model being inverted (`judge_for`). It reads both images
at its own resolution, and `distance` compares what it sees: an LPIPS-style feature distance without learned
weights (Zhang et al., 2018, with the "lin" layers set to 1): at each of the judge's deeper stages,
unit-normalise every position's channel vector, take the squared difference, average over positions, then
over stages. Deeper stages answer to shapes and parts more than to colour, which a trained layer's
reconstruction gets wrong. (The overlap of the judge's class probabilities was tried too, and agreed with
the judged set on 33 of 57 pairs at 64 px against 52 for this distance: BENCHMARKS.md.)

Offline the judges are the trained EfficientNet-Lite0/1/2 that ship with their pip packages. A judge of the
same family as the inverted model may be biased towards it: an inversion that matches a Lite0 layer may
carry textures any EfficientNet reads as the object more readily than a person would. The judge is loaded
once per process and shared (and never runs in the step loop: only per result).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.models import MODEL_LOCK, load_model

JUDGES = ("efficientnet_lite2", "efficientnet_lite1")  # the first that is not the inverted model is used
STAGES = ("blocks.2", "blocks.3", "blocks.4", "blocks.5", "blocks.6")  # strides 8 to 32
SIDE = 224  # the judge's input side (every reconstruction is resized to it, bilinear)

_LOCK = threading.Lock()  # one forward at a time (the hooks write one shared dict); always taken inside MODEL_LOCK
_BUILD = threading.Lock()  # building a judge (apart from _LOCK, so a build never waits on a forward)
_LOADED: dict[str, "Judge"] = {}


def judge_for(model_name: str) -> str:
    """The judge for a run of `model_name`: trained Lite2, or trained Lite1 when Lite2 is the inverted model."""
    base = str(model_name).split(":")[-1]
    return next(j for j in JUDGES if j != base)


@dataclass
class Views:
    """What the judge sees of a batch: its stages' features, unit length over channels at every position."""

    stages: list[torch.Tensor]  # each (N, C, h, w)


class Judge:
    """A frozen trained classifier read at `STAGES`."""

    def __init__(self, name: str):
        self.name = name
        loaded = load_model(name, "trained", SIDE)
        self.module = loaded.module
        self.mean = torch.tensor(loaded.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(loaded.std, dtype=torch.float32).view(1, 3, 1, 1)
        mods = dict(self.module.named_modules())
        self._hooks, self._seen = [], {}
        for s in STAGES:
            self._hooks.append(mods[s].register_forward_hook(lambda _m, _i, out, s=s: self._seen.__setitem__(s, out)))

    @torch.no_grad()
    def views(self, images: torch.Tensor) -> Views:
        """The judge's view of (N, 3 or 1, H, W) images in [0, 1] (on the CPU)."""
        x = images.detach().float().cpu().clamp(0, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False, antialias=True)
        with MODEL_LOCK.shared(), _LOCK:  # a forward pass: no FX trace elsewhere meanwhile (core/models/lock.py)
            self._seen.clear()
            self.module((x - self.mean) / self.std)
            stages = [F.normalize(self._seen[s].float(), dim=1) for s in STAGES]
        return Views(stages)


def get_judge(name: str) -> Judge:
    """The process's one `Judge` of that name (built on first use)."""
    with _BUILD:
        if name not in _LOADED:
            _LOADED[name] = Judge(name)
        return _LOADED[name]


def distance(a: Views, b: Views) -> list[float]:
    """LPIPS-style distance of every item of `a` to `b` (one item, broadcast), 0 for the same view."""
    parts = [((x - y) ** 2).sum(dim=1).mean(dim=(1, 2)) for x, y in zip(a.stages, b.stages)]
    return (torch.stack(parts).mean(dim=0)).tolist()
