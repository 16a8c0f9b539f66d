"""Feature inversion of vision models: a plain library (no UI) used by the app, CLI, benchmarks and tests.

    from core import load_model, load_image, get_preset, invert
    model = load_model("resnet18", "untrained", 64)   # or "timm:resnet26d", "torchvision:regnet_y_400mf", a Module
    result = invert(model, "layer2", load_image("assets/chelsea.png", 64), [0, 1], get_preset("default"))

In a notebook a result and a curve (`curve`) display themselves, and long runs show a progress bar
(`progress=False` turns it off); see docs/notebook_example.py.
"""

from core.models.registry import ARCHITECTURES, Architecture, Stop, get_architecture, register, register_model
from core.models.checkpoints import download_trained, load_model, trained_status
from core.studies.curve import clarity_curve, iter_curve
from core.models.encoder import Encoder, depth_stops, resolve_layer, stop_shapes
from core.engine.loop import Inversion, invert
from core.engine.result import InversionResult, Snapshot
from core.errors import DivergenceError, UserError, WeightsNotCached
from core.images import load_image, sample_images
from core.recipe.presets import DEFAULT, PAPER, PRESETS, Preset, get_preset
from core.report.notebook import Curve, curve  # also lets a result draw itself in a notebook

__all__ = [
    "ARCHITECTURES", "Architecture", "Stop", "register", "register_model", "Curve", "DEFAULT", "PAPER", "PRESETS", "DivergenceError", "Encoder", "Inversion", "InversionResult",
    "Preset", "Snapshot", "UserError", "WeightsNotCached", "clarity_curve", "curve", "depth_stops", "download_trained",
    "get_architecture", "get_preset", "invert", "iter_curve", "load_image", "load_model", "resolve_layer",
    "sample_images", "stop_shapes", "trained_status",
]
