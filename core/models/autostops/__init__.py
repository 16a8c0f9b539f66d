"""Depth stops for any torchvision or timm classifier, derived from the model itself.

The curated entries of `core.models.zoo` list their stops by hand; `derive_stops` finds them for any other
classifier from what the libraries already know:

* the FX graph (torchvision's feature-extraction tracer, or timm's wrapper of it, which knows timm's leaf
  modules): it gives every cut that feature extraction accepts and the forward order (a node's index in
  the eval-mode node list; a module counts as its last node, which is the node that extraction returns
  for a module name);
* the module hierarchy: the *trunk* is the module with the most *stage* children, a stage being a container
  of blocks (an `nn.Sequential` / `ModuleList` / `ModuleDict` of composite modules, a stage module whose
  `blocks` / `layers` child is one, such as timm's `ConvNeXtStage` or torchvision's ViT `Encoder`, or a
  module whose children are numbered blocks of one kind, such as timm's `RegStage` `b1, b2, ...`). What comes
  before the trunk is the stem, what comes after is the head (final norm, pooling, logits);
* a model whose blocks are the root's own children (GoogLeNet, Inception) is read as one flat stage;
* timm's `feature_info` (the stage outputs it names, with their reductions): its modules are stage ends to
  keep when thinning, and the stages of a model whose hierarchy shows none (timm's VGG);
* where none of these finds a trunk, the traced node list sampled at module boundaries.

Every stop is checked by a forward pass through one feature extractor returning them all, so each is a node
that extraction returns and whose output is a floating tensor (channel-last and token layouts included).
A model that torch.fx cannot trace raises `UntraceableModel` (a `UserError`) with the reason.

`input_size_constraint` says which input sizes a module takes (a fixed size, a minimum, a multiple), from
timm's `pretrained_cfg`, torchvision's weights metadata and the module's own attributes.
"""

from core.models.autostops.input_size import input_size_constraint
from core.models.autostops.selection import derive_stops, stops_of
from core.models.autostops.tracing import (
           LIBRARIES,
           NotACut,
           UntraceableModel,
           check_stops,
)

__all__ = ["LIBRARIES", "NotACut", "UntraceableModel", "check_stops", "derive_stops", "input_size_constraint",
           "stops_of"]
