"""The two loops the engine is measured against, written the way their sources write them.

- paper style (the public code of Badger 2022): one seed at a time (batch 1), the truncated model's
  weights left trainable so `backward()` also computes their gradients, summed L1 loss, a plain
  gradient step and the full-size Gaussian blur after every step.
- library style (Lucent-like feature visualisation): the whole model runs forward every step, a
  forward hook captures the layer, batch 1 per seed, the model's weights as the library leaves
  them (trainable: Lucent does not freeze them), the same loss and step.

Both run the paper's protocol exactly as its script writes it (docs/method.md): raw [0, 1] pixels,
loss 0.15 x summed L1, a plain step whose learning rate interpolates start*(n-i)/n + end*i/n
(0.1 and 0.1), then torchvision's 3x3 Gaussian blur with sigma interpolated the same way from
2.4 to 0.4. Nothing here uses the engine's components, so a test can hold the engine's `paper`
preset against it. Each returns per-seed m_g histories (measured on the forward already done in
the step, as the engine does), the final images, and the wall time of every step.
"""

from __future__ import annotations

import copy
import time

import torch
from torchvision.transforms.functional import gaussian_blur

from core.engine.loop import start_images
from core.metrics import l2_per_item

PAPER_LOSS_SCALE, PAPER_LR, PAPER_SIGMA = 0.15, (0.1, 0.1), (2.4, 0.4)


def _trainable(module: torch.nn.Module) -> torch.nn.Module:
    m = copy.deepcopy(module).eval()
    for p in m.parameters():
        p.requires_grad_(True)
    return m


def _loop(forward, params, y, seeds, size, iters, device, m_r=None):
    """Batch-1 gradient descent per seed, the script's way; returns (m_g [seed][step], images, seconds [seed][step])."""
    hist, times, finals = [], [], []
    (lr0, lr1), (s0, s1) = PAPER_LR, PAPER_SIGMA
    for x0 in start_images(seeds, size, _Start()):
        x = x0.unsqueeze(0).to(device)
        h, ts = [], []
        t = time.perf_counter()
        for i in range(iters):
            x = x.detach().requires_grad_(True)
            out = forward(x)
            loss = PAPER_LOSS_SCALE * torch.sum(torch.abs(y - out))
            for p in params:
                p.grad = None
            loss.backward()
            with torch.no_grad():
                h.append(l2_per_item(out.detach(), y)[0])
                x = x - (lr0 * (iters - i) / iters + lr1 * i / iters) * x.grad
                x = gaussian_blur(x, 3, sigma=s0 * (iters - i) / iters + s1 * i / iters)
            now = time.perf_counter()
            ts.append(now - t)
            t = now
            if m_r is not None and i % 10 == 9 and float(h[-1]) <= m_r:
                break  # time to quality: this seed is done
        hist.append(torch.stack(h).tolist())
        times.append(ts)
        finals.append(x.detach()[0].cpu())
    return hist, torch.stack(finals), times


class _Start:
    """The paper's start a_0 ~ N(0.7, 1/20)."""

    init_mean, init_std = 0.7, 1 / 20


def paper_style(model, layer, y, seeds, size, iters, device, m_r=None):
    """The script's loop on the truncated model (weights trainable, so their gradients are computed too).

    Returns:
        (m_g history per seed, final images (K, 3, H, W) on the CPU, seconds per step per seed).
    """
    from core.models.encoder import Encoder

    enc = Encoder(model, layer, normalize=False).to(device)
    body = _trainable(enc.body).to(device)
    params = list(body.parameters())
    return _loop(lambda x: body(x)[layer], params, y, seeds, size, iters, device, m_r)


def library_style(model, layer, y, seeds, size, iters, device, m_r=None):
    """The same loop, Lucent's way: the whole model forward every step, a hook captures the layer."""
    net = _trainable(model.module).to(device)
    captured = {}
    target = dict(net.named_modules())[layer]
    handle = target.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))

    def forward(x):
        net(x)  # the whole model, every step
        return captured["out"]

    try:
        return _loop(forward, list(net.parameters()), y, seeds, size, iters, device, m_r)
    finally:
        handle.remove()
