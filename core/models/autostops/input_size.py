"""Which input sizes a library model takes (a fixed size, a minimum, a multiple), from timm's
`pretrained_cfg`, torchvision's weights metadata and the module's own attributes."""

from __future__ import annotations

import sys

import torch.nn as nn

from core.errors import UserError
from core.models.autostops.tracing import LIBRARIES


def _torchvision_min_size(module: nn.Module) -> int | None:
    """The smallest `min_size` in the weights metadata of the torchvision module that defines the class."""
    try:
        from torchvision.models._api import WeightsEnum
    except ImportError:  # pragma: no cover
        return None
    pymod = sys.modules.get(type(module).__module__)
    sizes = []
    for obj in vars(pymod).values() if pymod else ():
        if isinstance(obj, type) and issubclass(obj, WeightsEnum) and obj is not WeightsEnum:
            for w in obj:
                ms = w.meta.get("min_size")
                if ms:
                    sizes.append(int(max(ms)))
    return min(sizes) if sizes else None


def _pair(v) -> int:
    return int(v[0] if isinstance(v, (tuple, list)) else v)


def input_size_constraint(module: nn.Module, library: str) -> dict:
    """Which square input sizes `module` takes: `{"min_size", "multiple", "fixed", "default", "why"}`.

    `fixed` is the one size a model built for a fixed input takes (None if any), `min_size` the smallest
    size worth using, `multiple` what a size must be a multiple of, `default` the size it was made for.

    * timm: a patch embedding built strictly for one size (its `img_size`: timm does not update
      `pretrained_cfg` for `img_size=`), else `pretrained_cfg` (`input_size`, `fixed_input_size`,
      `min_input_size`); otherwise the largest reduction of `feature_info` as the minimum; a patchify
      embedding's stride as the multiple;
    * torchvision: the `min_size` of the weights metadata of the model's builder module; a ViT's
      `image_size` / `patch_size` attributes (its position embeddings are built for one size); MaxViT's
      `partition_size` and the grids its blocks were built for (a stride-2 stem, then each block halves,
      and every block's grid is fixed at build). Swin pads its windows, so it takes any size.
    """
    if library not in LIBRARIES:
        raise UserError(f"library must be one of {', '.join(LIBRARIES)} (got {library!r})")
    out = {"min_size": 1, "multiple": 1, "fixed": None, "default": 224, "why": ""}
    cfg = getattr(module, "pretrained_cfg", None) or getattr(module, "default_cfg", None)
    cfg = cfg if isinstance(cfg, dict) else {}
    if cfg.get("input_size"):
        out["default"] = int(cfg["input_size"][-1])
    pe = getattr(module, "patch_embed", None)
    if pe is not None and getattr(pe, "patch_size", None) is not None:
        proj = getattr(pe, "proj", None)
        if isinstance(proj, nn.Conv2d) and proj.kernel_size == proj.stride:  # patchify: a size in whole patches
            out["multiple"] = proj.stride[0]
        # the size the patch embedding was built for (timm does not update pretrained_cfg for img_size=)
        if getattr(pe, "strict_img_size", False) and getattr(pe, "img_size", None) \
                and not getattr(module, "dynamic_img_size", False):
            fixed = _pair(pe.img_size)
            out.update(fixed=fixed, min_size=fixed, default=fixed, why="patch embedding built for one image size")
            return out
    if cfg.get("fixed_input_size") and cfg.get("input_size"):
        out.update(fixed=out["default"], min_size=out["default"], why="pretrained_cfg fixed_input_size")
        return out
    if cfg.get("min_input_size"):
        out.update(min_size=int(cfg["min_input_size"][-1]), why="pretrained_cfg min_input_size")
    info = getattr(module, "feature_info", None)
    if out["min_size"] == 1 and info:
        try:
            red = max(int(f["reduction"]) for f in info)
            out.update(min_size=red, why="largest feature_info reduction")
        except (TypeError, KeyError, ValueError):
            pass
    if library == "torchvision":
        ms = _torchvision_min_size(module)
        if ms:
            out.update(min_size=ms, why="torchvision weights min_size")
        image_size, patch = getattr(module, "image_size", None), getattr(module, "patch_size", None)
        if isinstance(image_size, int) and isinstance(patch, int):  # torchvision ViT
            out.update(fixed=image_size, min_size=image_size, multiple=patch, default=image_size,
                       why="position embeddings built for image_size")
            return out
        blocks = getattr(module, "blocks", None)
        partition = getattr(module, "partition_size", None)
        if isinstance(partition, int) and blocks is not None and len(blocks) \
                and getattr(blocks[-1], "grid_size", None) is not None:  # torchvision MaxVit
            scale = 2 ** (len(blocks) + 1)  # stem /2, then each block /2
            fixed = _pair(blocks[-1].grid_size) * scale
            out.update(fixed=fixed, min_size=fixed, multiple=partition * scale, default=fixed,
                       why="MaxViT grids fixed at build (partition size x 32)")
            return out
    return out
