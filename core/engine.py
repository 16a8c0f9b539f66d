"""The one inversion engine: gradient descent on a batch of inputs until their embeddings match.

All seeds of a run are one batch; only the input has gradients (the model is frozen). Per-step
distances stay on the device and are copied to the host only at snapshots, so the loop never
waits on the host. Iterate `Inversion.snapshots()` to watch a run (stop whenever you like),
then call `result()`; `invert()` does both to the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from core.checkpoints import LoadedModel
from core.devices import describe, resolve_device
from core.encoder import Encoder, resolve_layer
from core.errors import DivergenceError, UserError
from core.modellock import MODEL_LOCK
from core.metrics import (BASELINE_BLUR, clarity, l2_per_item, mean_pairwise, pairwise, perturbed, psnr,
                          ssim)
from core.presets import Preset
from core.priors import blur, lerp
from core.speed import SpeedOptions

MAX_SEEDS = 64
EXPLODED = 1e6  # pixel values this far outside [0, 1] mean the steps are too large to come back


@dataclass
class Snapshot:
    """The state of a run after `step` of `total` steps (images on the CPU)."""

    step: int
    total: int
    images: torch.Tensor  # (K, 3, H, W) in [0, 1] (clamped for display)
    loss: list[float]
    embedding_l2: list[float]  # m_g per seed at this step
    input_l2: list[float]  # m_i per seed at this step
    seconds: float


@dataclass
class InversionResult:
    """A finished (or stopped) run: settings, images, the METHOD.md metrics and the trajectories."""

    model: str
    checkpoint: str
    layer: str
    label: str
    size: int
    preset: Preset
    seeds: list[int]
    device: str
    seconds: float
    steps_done: int
    stopped_early: bool
    original: torch.Tensor  # (3, H, W)
    images: torch.Tensor  # (K, 3, H, W)
    embedding_shape: tuple
    metrics: dict
    history: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "model": self.model, "checkpoint": self.checkpoint, "layer": self.layer, "label": self.label,
            "size": self.size, "preset": self.preset.name, "preset_settings": self.preset.to_dict(),
            "iters": self.preset.iters, "steps_done": self.steps_done, "stopped_early": self.stopped_early,
            "seeds": list(self.seeds), "device": self.device, "seconds": round(self.seconds, 4),
            "embedding_shape": list(self.embedding_shape), "metrics": self.metrics, "history": self.history,
        }


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise UserError("at least one seed is needed")
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"{len(seeds)} seeds is too many: use at most {MAX_SEEDS}")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise UserError(f"seeds must be non-negative integers (got {seeds})")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds must be distinct (got {seeds})")
    return seeds


def start_images(seeds: Sequence[int], size: int, preset: Preset) -> torch.Tensor:
    """a_0 ~ N(init_mean, init_std) per seed from a CPU generator: the same start on every device."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        out.append(torch.randn(3, size, size, generator=g) * preset.init_std + preset.init_mean)
    return torch.stack(out)


class Inversion:
    """One run: encode `image` at `layer`, then descend every seed's input towards that embedding."""

    def __init__(self, model: LoadedModel, layer: str, image: torch.Tensor, seeds: Sequence[int],
                 preset: Preset, device: str | torch.device = "auto", encoder: Encoder | None = None,
                 speed: SpeedOptions | None = None):
        if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] != image.shape[2]:
            raise UserError(f"image must be a square RGB tensor (3, N, N); got {tuple(image.shape)}")
        self.model, self.preset = model, preset
        self.stop = resolve_layer(model, layer)
        self.seeds = check_seeds(seeds)
        self.size = int(image.shape[-1])
        model.arch.check_size(self.size)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        # speed=None: SpeedOptions.auto (only options exact up to rounding); SpeedOptions.off(): plain
        self.speed = speed if speed is not None else SpeedOptions.auto(self.device)
        self.speed.apply_global(self.device)
        with MODEL_LOCK.exclusive():  # building the encoder (and BN folding) traces: see core/modellock.py
            self.raw_encoder = (encoder or Encoder(model, self.stop.node)).to(self.device)
            self.encoder = self.speed.prepare_encoder(self.raw_encoder, self.device)
        self.original = image.detach().float().cpu().clamp(0, 1)
        self.a = self.original.unsqueeze(0).to(self.device)
        with torch.no_grad(), MODEL_LOCK.shared():
            self.y = self.encoder(self.a)
            a_ref = perturbed(self.a)
            self.m_r = float(l2_per_item(self.encoder(a_ref), self.y)[0])
            self.shift = float(l2_per_item(a_ref, self.a)[0])
            self.y_l1 = self.y.abs().sum().clamp_min(1e-12)
        if not bool(torch.isfinite(self.y).all()):
            raise UserError(f"{model.name} outputs NaN/inf at {self.stop.node} for this image: the checkpoint "
                            "holds non-finite weights or is broken")
        x0 = start_images(self.seeds, self.size, preset).to(self.device)
        self.baseline = l2_per_item(blur(x0, *BASELINE_BLUR), self.a)
        self.x = self.speed.format_input(x0.clone()).requires_grad_(True)
        k, n = len(self.seeds), preset.iters
        self._hist = torch.full((n + 1, 3, k), float("nan"), device=self.device)  # loss, m_g, m_i per step
        self.steps_done = 0
        self.seconds = 0.0

    # ------------------------------------------------------------------ the loop

    def _optimizer(self) -> torch.optim.Optimizer:
        if self.preset.optimizer == "adam":
            return torch.optim.Adam([self.x], lr=self.preset.lr_start)
        return torch.optim.SGD([self.x], lr=self.preset.lr_start)

    def _loss(self, out: torch.Tensor) -> torch.Tensor:
        """Per-seed L1 loss; summing over seeds keeps every seed's gradient its own."""
        per_seed = (out - self.y).abs().flatten(1).sum(1)
        if self.preset.loss == "l1_relative":
            per_seed = per_seed / self.y_l1
        return per_seed * self.preset.loss_scale

    def snapshots(self, every: int = 10) -> Iterator[Snapshot]:
        """Run the remaining steps, yielding a snapshot every `every` steps and at the end."""
        p, every = self.preset, max(1, int(every))
        opt = self._optimizer()
        last: Snapshot | None = None
        self.speed.apply_global(self.device)
        t0 = time.perf_counter() - self.seconds
        while self.steps_done < p.iters:
            n = self.steps_done
            for group in opt.param_groups:
                group["lr"] = lerp(p.lr_start, p.lr_end, n, p.iters)
            with MODEL_LOCK.shared():  # one step; never held across the yield below
                with self.speed.autocast(self.device):
                    out = self.encoder(self.x)
                per_seed = self._loss(out.float())
                opt.zero_grad(set_to_none=True)
                per_seed.sum().backward()
                with torch.no_grad():
                    self._hist[n, 0] = per_seed.detach()
                    self._hist[n, 1] = l2_per_item(out.detach(), self.y)
                    self._hist[n, 2] = l2_per_item(self.x, self.a)
                    opt.step()
                    self.x.copy_(blur(self.x, p.blur_kernel, lerp(p.blur_sigma_start, p.blur_sigma_end, n, p.iters)))
                    if p.clamp:
                        self.x.clamp_(0, 1)
            self.steps_done = n + 1
            if self.steps_done % every == 0 or self.steps_done == p.iters:
                self.seconds = time.perf_counter() - t0
                if not bool(torch.isfinite(self.x).all()) or float(self.x.detach().abs().max()) > EXPLODED:
                    raise DivergenceError(
                        f"the run diverged (NaN/inf or exploding pixels) before step {self.steps_done}: lower lr_start "
                        f"(now {p.lr_start:g}) or loss_scale (now {p.loss_scale:g}), or use the default preset",
                        last_snapshot=last,
                    )
                last = self._snapshot(n)
                yield last

    def _snapshot(self, n: int) -> Snapshot:
        h = self._hist[n].cpu()
        return Snapshot(self.steps_done, self.preset.iters, self.x.detach().clamp(0, 1).cpu(), h[0].tolist(),
                        h[1].tolist(), h[2].tolist(), self.seconds)

    def run(self, every: int | None = None) -> "InversionResult":
        for _ in self.snapshots(every or max(1, self.preset.iters // 10)):
            pass
        return self.result()

    # ------------------------------------------------------------------ the answer

    def result(self) -> InversionResult:
        """Metrics of the current images (the final ones, or the last ones of a stopped run)."""
        with torch.no_grad(), MODEL_LOCK.shared():
            x = self.x.detach()
            out = self.encoder(x)
            m_g = l2_per_item(out, self.y)
            m_i = l2_per_item(x, self.a)
            self._hist[self.steps_done, 0] = self._loss(out)
            self._hist[self.steps_done, 1] = m_g
            self._hist[self.steps_done, 2] = m_i
            clar = clarity(m_i, self.baseline)
        images = x.float().cpu()
        hist = self._hist[: self.steps_done + 1].cpu()
        reached = [next((i for i, v in enumerate(hist[:, 1, s].tolist()) if v <= self.m_r), None)
                   for s in range(len(self.seeds))]
        metrics = {
            "input_l2": m_i.cpu().tolist(),
            "embedding_l2": m_g.cpu().tolist(),
            "ssim": [ssim(img, self.original) for img in images],
            "psnr": [psnr(img, self.original) for img in images],
            "clarity_per_seed": clar.cpu().tolist(),
            "baseline_input_l2": self.baseline.cpu().tolist(),
            "reference_l2": self.m_r,
            "shift_input_l2": self.shift,
            "seed_spread_input": mean_pairwise(x),
            "seed_spread_embedding": mean_pairwise(out),
            "seed_distances_input": pairwise(x),  # K x K, for the non-uniqueness view
            "seed_distances_embedding": pairwise(out),
            "clarity": float(clar.mean()),
            "steps_to_reference": reached,
        }
        history = {"step": list(range(self.steps_done + 1)), "loss": hist[:, 0].T.tolist(),
                   "embedding_l2": hist[:, 1].T.tolist(), "input_l2": hist[:, 2].T.tolist()}
        return InversionResult(
            self.model.name, self.model.checkpoint, self.stop.node, self.stop.label, self.size, self.preset,
            self.seeds, describe(self.device), self.seconds, self.steps_done, self.steps_done < self.preset.iters,
            self.original, images, tuple(self.y.shape[1:]), metrics, history,
        )


def invert(model: LoadedModel, layer: str, image: torch.Tensor, seeds: Sequence[int], preset: Preset,
           device: str | torch.device = "auto", speed: SpeedOptions | None = None) -> InversionResult:
    """Run an inversion to the end and return its result."""
    return Inversion(model, layer, image, seeds, preset, device, speed=speed).run()
