"""What kind of layer a stop is (first convolution, pooling, patch embedding, encoder block), from its `kind`,
label or layer name: findings 2 and 7 place their tests by it."""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.studies.verdicts.rows import stops_of


def _text(stop: dict) -> tuple[str, str, str]:
    kind = stop.get("kind")
    kind = kind.strip().lower() if isinstance(kind, str) and kind.strip() else ""
    return kind, str(stop.get("label") or "").lower(), str(stop.get("layer") or "").lower()


GLOBAL_POOL_LAYERS = ("avgpool", "global_pool", "head.global_pool", "pool", "head.pool")


def is_pooling(stop: dict) -> bool:
    """A pooling or strided stop that loses resolution (max-pool, pool1, stride, downsample), not the global pool.

    `kind` decides when present ("MaxPool2d", "AvgPool2d", "strided ...", "downsample"; "Adaptive..."/"global"
    pools do not count). Without it, the label and layer name: "pool" (max-pool, maxpool1, pool2 ...), "stride",
    "downsample"; a label with "global"/"adaptive" or a layer named avgpool / global_pool is the global average
    pool before the logits, which is not where exactness is *first* lost.
    """
    kind, label, layer = _text(stop)
    if kind:
        return (("pool" in kind and not any(w in kind for w in ("adaptive", "global")))
                or "stride" in kind or "downsample" in kind)
    if any(w in label for w in ("global", "adaptive")) or layer in GLOBAL_POOL_LAYERS:
        return False
    return any(re.search(r"pool|stride|downsample", t) is not None for t in (label, layer))


def is_patch_embedding(stop: dict) -> bool:
    """A ViT patch embedding: kind or label "patch embedding", or a layer named conv_proj / patch_embed(.proj)."""
    kind, label, layer = _text(stop)
    if kind:
        return "patch" in kind and "embed" in kind
    return "patch embed" in label or layer in ("conv_proj", "patch_embed", "patch_embed.proj")


def is_first_conv(stop: dict) -> bool:
    """The first convolution's stop: kind "Conv2d"/"conv", else the label or layer name says conv1 / stem conv
    ("Conv1 (before batch-norm)", "conv1 + ReLU", "stem conv", conv_stem, features.0, Conv2d_1a_3x3). A pooling
    stop ("Conv1 + max-pool") and a patch embedding are never it. `finding_2` takes the first such stop in
    forward order, and only if it comes before the first pooling stop."""
    if is_pooling(stop) or is_patch_embedding(stop):
        return False
    kind, label, layer = _text(stop)
    if kind:
        return "conv" in kind
    return (re.search(r"\bconv_?1\b", label) is not None or "stem conv" in label
            or layer in ("conv1", "conv_stem", "features.0", "stem.conv", "stem.0") or layer.startswith("conv2d_1a"))


def is_block(stop: dict) -> bool:
    """An encoder block: kind "block"/"encoder", else "block" in the label or a layer like blocks.3,
    encoder.layers.encoder_layer_3 (the final layer-norm, the head and the logits are not blocks)."""
    kind, label, layer = _text(stop)
    if kind:
        return "block" in kind or "encoder" in kind
    return ("block" in label or "encoder_layer" in layer
            or re.search(r"(^|\.)(blocks|layers)\.\d+$", layer) is not None)


def is_vit(model_name: str | None, rows: Iterable[dict]) -> bool:
    """ViT-like: the name contains "vit" or "deit", or the stops show a patch embedding followed by encoder blocks."""
    if model_name and any(w in model_name.lower() for w in ("vit", "deit")):
        return True
    stops = stops_of(rows)
    pe = [s["depth"] for s in stops if is_patch_embedding(s)]
    return bool(pe) and any(is_block(s) and s["depth"] > min(pe) for s in stops)
