"""Models: the registry of architectures, their weights, loading a checkpoint, and cutting the traced graph
at a layer (the encoder `O_l`).

Data apart from mechanism, as timm's `_registry` / `_builder`: `registry` holds the `Architecture` entries,
`weights` where trained weights come from, `zoo` the curated entries, `checkpoints` builds a frozen model
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
from core.models.lock import MODEL_LOCK, RWLock
from core.models.encoder import Encoder, depth_stops, forward_position, graph_nodes, resolve_layer, stop_shapes
from core.models.health import signal_health
from core.models.classify import predict

__all__ = [
    "ARCHITECTURES", "Architecture", "BASE_SIZE", "Encoder", "LoadedModel", "MAX_SIZE", "MODEL_LOCK", "RWLock",
    "Stop", "WeightSource", "checkpoint_hash", "depth_stops", "download_trained",
    "forward_position", "get_architecture", "graph_nodes", "load_model", "predict", "read_state_dict", "register",
    "register_model", "resolve_layer", "signal_health", "stop_shapes", "trained_status", "unregister",
]
