"""A run as data: `RunSpec`, frozen and hashable, whose `key()` is its cache key.

The key is a SHA-256 over every setting (`KEY_FORMAT` included), so a cache written by an earlier version is
read as long as neither the settings' meaning nor `KEY_FORMAT` changed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass, field, replace
from typing import Sequence

import torch

from core.devices import resolve_device
from core.engine.loop import check_seeds
from core.errors import UserError
from core.jobs.cache import image_hash
from core.models.checkpoints import checkpoint_hash
from core.models.encoder import resolve_layer
from core.recipe.presets import Preset

KEY_FORMAT = 6  # bump when the meaning of a stored result changes (5: RunSpec keys; 6: no early stop before the horizon)


def library_versions() -> dict[str, str]:
    """torch, torchvision and timm versions: recorded with every result."""
    import torchvision

    versions = {"torch": torch.__version__.split("+")[0], "torchvision": torchvision.__version__.split("+")[0]}
    try:  # from the installed metadata, not an import: a torchvision model's run need not load timm (0.3 s)
        versions["timm"] = importlib.metadata.version("timm")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - timm is a requirement
        versions["timm"] = "absent"
    return versions


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass(frozen=True, eq=False)
class RunSpec:
    """A frozen, hashable description of one run; `key()` is its cache key.

    Args:
        model: architecture name ("resnet18").
        checkpoint: "untrained", "trained", a state-dict path, or "upload:<sha256>".
        checkpoint_hash: SHA-256 of the weights file (None for untrained weights).
        init_seed: the untrained initialisation's seed.
        layer: the resolved graph node.
        size: image side in px.
        seeds: the seeds, in order.
        preset: the recipe, every component's settings included.
        image_hash: SHA-256 of the image as the engine sees it (`core.jobs.cache.image_hash`).
        device: the device type the run uses ("cpu", "cuda", "mps"): results differ by rounding across them.
        versions: torch, torchvision, timm versions (the key uses major.minor; the full ones are recorded).
        continued: the steps each Continue added after the run finished, in order (`then`); () for a plain
            run. A continued run goes on from its parent's end with the optimiser's state carried over, so it
            is a function of the spec like any run, and its key differs from every plain run's.

    Example:
        >>> spec = RunSpec.of(model, "layer2", image, [0, 1], get_preset("default"), "cpu")
        >>> spec.key()[:8]
        'a3f0…'
    """

    model: str
    checkpoint: str
    checkpoint_hash: str | None
    init_seed: int
    layer: str
    size: int
    seeds: tuple[int, ...]
    preset: Preset
    image_hash: str
    device: str = "cpu"
    versions: tuple[tuple[str, str], ...] = field(default_factory=lambda: tuple(sorted(library_versions().items())))
    continued: tuple[int, ...] = ()

    @classmethod
    def of(cls, model, layer: str, image: torch.Tensor, seeds: Sequence[int], preset: Preset,
           device: str | torch.device = "auto", checkpoint: str | None = None) -> "RunSpec":
        """The spec of running `model` (a `LoadedModel`) at `layer` on `image`.

        Args:
            model: a loaded model; its checkpoint, weights hash and init seed go into the spec.
            layer: a depth stop or any graph node (resolved here; unknown names raise UserError).
            image: (3, N, N) in [0, 1].
            seeds, preset: as for `Inversion`.
            device: "auto", "cpu", "cuda[:N]", "mps" or a torch.device.
            checkpoint: the id to record instead of the model's own (an upload's "upload:<sha256>").

        Returns:
            The RunSpec.
        """
        node = resolve_layer(model, layer).node
        ck = checkpoint or model.checkpoint
        digest = ck.split(":", 1)[1] if ck.startswith("upload:") else checkpoint_hash(model)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        init = int(model.init_seed) if ck == "untrained" else 0  # loaded weights overwrite the initialisation
        return cls(model.name, ck, digest, init, node, int(image.shape[-1]),
                   tuple(check_seeds(seeds)), preset, image_hash(image), dev.type)

    def to_dict(self) -> dict:
        """Every setting as JSON-able data (recorded in result.json and the app's downloads)."""
        return {"model": self.model, "checkpoint": self.checkpoint, "checkpoint_hash": self.checkpoint_hash,
                "init_seed": self.init_seed, "layer": self.layer, "size": self.size, "seeds": list(self.seeds),
                "preset": self.preset.to_dict(), "image_hash": self.image_hash, "device": self.device,
                "versions": dict(self.versions), **({"continued": list(self.continued)} if self.continued else {})}

    def key(self) -> str:
        """The cache key: SHA-256 over every setting (library versions as major.minor)."""
        d = self.to_dict()
        d["versions"] = {k: _minor(v) for k, v in d["versions"].items()}
        text = json.dumps({"format": KEY_FORMAT, **d}, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def replace(self, **changes) -> "RunSpec":
        return replace(self, **changes)

    def then(self, steps: int) -> "RunSpec":
        """This run continued by `steps` more steps once it has finished."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise UserError(f"continue needs a positive number of steps (got {steps!r})")
        return self.replace(continued=(*self.continued, steps))

    def parent(self) -> "RunSpec":
        """The run this one continues (itself for a plain run)."""
        return self.replace(continued=self.continued[:-1])

    @property
    def steps(self) -> int:
        """At most how many steps the whole run takes: the budget plus every continuation."""
        return self.preset.iters + sum(self.continued)

    def __eq__(self, other) -> bool:
        return isinstance(other, RunSpec) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())
