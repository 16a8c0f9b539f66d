"""The decoder's recipe: registered parts (objective terms, parameterisations, transforms) and the presets
that combine them as data.

Importing this package registers every part, so `components.build` finds them by name.
"""

from core.recipe import objectives, params, transforms  # noqa: F401  (register their components)
from core.recipe.components import Component, register
from core.recipe.presets import PRESETS, Preset, get_preset

__all__ = [
    "Component", "get_preset", "Preset", "PRESETS", "register",
]
