"""The engine: one loop that descends a batch of inputs towards a layer's embedding (`loop.Inversion`),
what it produces (`result`), when a seed has converged (`stopping`), what the numbers say (`run_reading`), and
how fast a step runs (`speed`, `cudagraphs`, `hostcopy`, `multistop`: several stops through one batch).

Like Lucent's `optvis`, the objective, the parameterisation and the transforms come from `core.recipe`;
this package owns only the loop and its step API.
"""

from core.engine.result import InversionResult, Metrics
from core.engine.run_reading import reading, status
from core.engine.loop import Inversion

__all__ = [
    "Inversion", "InversionResult", "Metrics", "reading", "status",
]
