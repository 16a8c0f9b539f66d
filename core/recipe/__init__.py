"""The decoder's recipe: registered parts (objective terms, parameterisations, transforms) and the presets
that combine them as data.

Importing this package registers every part, so `components.build` finds them by name.
"""

from core.recipe import objectives, params, transforms  # noqa: F401  (register their components)
from core.recipe.components import Component, build, names, register, spec
from core.recipe.presets import DEFAULT, LAB, MV, NATURAL, PAPER, PRESETS, Preset, get_preset

__all__ = ["Component", "DEFAULT", "LAB", "MV", "NATURAL", "PAPER", "PRESETS", "Preset", "build", "get_preset",
           "names", "register", "spec"]
