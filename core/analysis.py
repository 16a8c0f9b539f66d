"""Distances between seeds: how far apart the reconstructions are, in pixels and in the layer."""

from __future__ import annotations

import torch

from core.checkpoints import LoadedModel
from core.devices import resolve_device
from core.encoder import Encoder
from core.modellock import MODEL_LOCK


def pairwise(x: torch.Tensor) -> list[list[float]]:
    """Matrix of L2 distances between the items of a batch."""
    flat = x.detach().double().flatten(1).cpu()
    return torch.cdist(flat, flat).tolist()


def seed_distances(model: LoadedModel, layer: str, images: torch.Tensor, device="cpu") -> dict:
    """Pairwise distances between reconstructions (input space) and between their embeddings."""
    dev = resolve_device(device)
    enc = Encoder(model, layer).to(dev)
    with torch.no_grad(), MODEL_LOCK.shared():
        emb = enc(images.float().to(dev))
    return {"input": pairwise(images), "embedding": pairwise(emb)}
