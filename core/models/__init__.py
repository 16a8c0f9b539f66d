"""Models: the registry of architectures, their weights, loading a checkpoint, and cutting the traced graph
at a layer (the encoder `O_l`).

Data apart from mechanism, as timm's `_registry` / `_builder`: `registry` holds the `Architecture` entries,
`weights` where trained weights come from, `zoo` the curated entries, `libraries` any torchvision or timm
classifier by name (`hub`: their trained weights through each library's cache), `custom` your own network,
`autostops` the depth stops derived for all of those, `checkpoints` builds a frozen model
from an entry and a checkpoint, `encoder` truncates it. `lock` keeps FX tracing away from forward passes.
"""

from core.models.registry import Architecture, Stop, register, register_model
from core.models import zoo  # noqa: F401  (registers the curated architectures)
from core.models.checkpoints import LoadedModel, load_model
from core.models import libraries  # noqa: F401  (resolves "torchvision:NAME" and "timm:NAME")
from core.models.libraries import all_names, split_name
from core.models.custom import file_architecture, load_operator_models, module_architecture
from core.models.lock import MODEL_LOCK
from core.models.encoder import depth_stops, forward_position, resolve_layer
from core.models.classify import predict

__all__ = [
    "all_names", "Architecture", "depth_stops", "file_architecture", "forward_position", "load_model",
    "load_operator_models", "LoadedModel", "MODEL_LOCK", "module_architecture", "predict", "register",
    "register_model", "resolve_layer", "split_name", "Stop",
]
