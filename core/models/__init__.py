"""Models: the registry of architectures, their weights, loading a checkpoint, and cutting the traced graph
at a layer (the encoder `O_l`).

Data apart from mechanism, as timm's `_registry` / `_builder`: `registry` holds the `Architecture` entries,
`weights` where trained weights come from, `zoo` the curated entries, `libraries` any torchvision or timm
classifier by name (`hub`: their trained weights through each library's cache), `custom` your own network,
`autostops` the depth stops derived for all of those, `checkpoints` builds a frozen model
from an entry and a checkpoint, `encoder` truncates it. `lock` keeps FX tracing away from forward passes.
"""

from core.models.registry import (
    ARCHITECTURES, BASE_SIZE, MAX_SIZE, Architecture, Stop, get_architecture, register, register_model, unregister,
)
from core.models.weights import WeightSource
from core.models import zoo  # noqa: F401  (registers the curated architectures)
from core.models.checkpoints import (
    LoadedModel, checkpoint_hash, download_trained, load_model, read_state_dict, trained_status,
)
from core.models import libraries  # noqa: F401  (resolves "torchvision:NAME" and "timm:NAME")
from core.models.libraries import all_names, split_name
from core.models.custom import file_architecture, load_operator_models, module_architecture
from core.models.lock import MODEL_LOCK, RWLock
from core.models.encoder import Encoder, depth_stops, forward_position, graph_nodes, resolve_layer, stop_shapes
from core.models.health import signal_health
from core.models.classify import predict

__all__ = [
    "ARCHITECTURES", "Architecture", "all_names", "file_architecture", "load_operator_models", "module_architecture",
    "split_name", "BASE_SIZE", "Encoder", "LoadedModel", "MAX_SIZE", "MODEL_LOCK", "RWLock",
    "Stop", "WeightSource", "checkpoint_hash", "depth_stops", "download_trained",
    "forward_position", "get_architecture", "graph_nodes", "load_model", "predict", "read_state_dict", "register",
    "register_model", "resolve_layer", "signal_health", "stop_shapes", "trained_status", "unregister",
]
