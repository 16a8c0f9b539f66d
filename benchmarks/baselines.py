"""The two loops the engine is measured against, written the way their sources write them.

- paper style (the public code of Badger 2022): one seed at a time (batch 1), the truncated model's
  weights left trainable so `backward()` also computes their gradients, summed L1 loss, a plain
  gradient step and the full-size Gaussian blur after every step.
- library style (Lucent-like feature visualisation): the whole model runs forward every step, a
  forward hook captures the layer, batch 1 per seed, the model's weights as the library leaves
  them (trainable: Lucent does not freeze them), the same loss and step.

Both use the same preset (start, loss, learning-rate and blur schedules), the same target
embedding and the same normalisation as the engine, so only the way of running differs.
Each returns per-seed m_g histories (measured on the forward already done in the step, as the
engine does) and the wall time of every step.
"""

from __future__ import annotations

import copy
import time

import torch

from core.engine import start_images
from core.metrics import l2_per_item
from core.priors import blur, lerp


def _trainable(module: torch.nn.Module) -> torch.nn.Module:
    m = copy.deepcopy(module).eval()
    for p in m.parameters():
        p.requires_grad_(True)
    return m


def _loop(forward, params, y, seeds, size, preset, iters, device, m_r=None):
    """Batch-1 gradient descent per seed; returns (m_g history [seed][step], seconds [seed][step])."""
    hist, times = [], []
    for x0 in start_images(seeds, size, preset):
        x = x0.unsqueeze(0).to(device).requires_grad_(True)
        h, ts = [], []
        t = time.perf_counter()
        for n in range(iters):
            out = forward(x)
            loss = (out - y).abs().sum()
            if preset.loss == "l1_relative":
                loss = loss / y.abs().sum()
            loss = loss * preset.loss_scale
            for p in params:
                p.grad = None
            x.grad = None
            loss.backward()
            with torch.no_grad():
                h.append(l2_per_item(out.detach(), y)[0])
                x -= lerp(preset.lr_start, preset.lr_end, n, preset.iters) * x.grad
                x.copy_(blur(x, preset.blur_kernel, lerp(preset.blur_sigma_start, preset.blur_sigma_end, n, preset.iters)))
                if preset.clamp:
                    x.clamp_(0, 1)
            now = time.perf_counter()
            ts.append(now - t)
            t = now
            if m_r is not None and n % 10 == 9 and float(h[-1]) <= m_r:
                break  # time to quality: this seed is done
        hist.append(torch.stack(h).tolist())
        times.append(ts)
    return hist, times


def paper_style(model, layer, y, seeds, size, preset, iters, device, m_r=None):
    from core.encoder import Encoder

    enc = Encoder(model, layer).to(device)
    body = _trainable(enc.body).to(device)
    mean, std = enc.mean, enc.std
    params = list(body.parameters())
    return _loop(lambda x: body((x - mean) / std)[layer], params, y, seeds, size, preset, iters, device, m_r)


def library_style(model, layer, y, seeds, size, preset, iters, device, m_r=None):
    from core.encoder import Encoder

    enc = Encoder(model, layer)
    mean, std = enc.mean.to(device), enc.std.to(device)
    net = _trainable(model.module).to(device)
    captured = {}
    target = dict(net.named_modules())[layer]
    handle = target.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))

    def forward(x):
        net((x - mean) / std)  # the whole model, every step
        return captured["out"]

    try:
        return _loop(forward, list(net.parameters()), y, seeds, size, preset, iters, device, m_r)
    finally:
        handle.remove()
