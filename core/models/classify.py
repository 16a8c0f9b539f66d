"""Top-k ImageNet predictions of a trained classifier, for captions ("reconstruction still reads as a cat")."""

from __future__ import annotations

import torch

from core.models.checkpoints import LoadedModel
from core.models.lock import MODEL_LOCK


def predict(model: LoadedModel, images: torch.Tensor, k: int = 1) -> list[list[tuple[int, str, float]]] | None:
    """Per image, the k most likely classes as (index, name, probability); None for untrained weights."""
    if model.categories is None:
        return None
    mean = torch.tensor(model.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.std).view(1, 3, 1, 1)
    with torch.no_grad(), MODEL_LOCK.exclusive():  # may move weights: see core/models/lock.py
        # an encoder shares the model's parameters and moves only the modules up to its stop to the run's
        # device, so the rest of the model may still be on the CPU: bring the whole model to one device
        device = next(model.module.parameters()).device
        model.module.to(device)
        logits = model.module(((images.float().cpu() - mean) / std).to(device))
        if isinstance(logits, tuple):  # inception-style (logits, aux) outputs
            logits = logits[0]
        probs = logits.float().softmax(-1).cpu()
    top = probs.topk(k, dim=-1)
    return [[(int(i), model.categories[int(i)], float(p)) for p, i in zip(ps, idx)]
            for ps, idx in zip(top.values, top.indices)]
