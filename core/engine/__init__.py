"""The engine: one loop that descends a batch of inputs towards a layer's embedding (`loop.Inversion`),
what it produces (`result`), when a seed has converged (`stopping`), what the numbers say (`verdict`), and
how fast a step runs (`speed`, `cudagraphs`, `hostcopy`, `multistop`: several stops through one batch).

Like Lucent's `optvis`, the objective, the parameterisation and the transforms come from `core.recipe`;
this package owns only the loop and its step API.
"""

from core.engine.stopping import BORDERLINE, DEGENERATE, converged_mask, is_degenerate
from core.engine.result import InversionResult, Metrics, Snapshot
from core.engine.verdict import reading, status, uniqueness
from core.engine.speed import SpeedOptions, fold_batchnorm, pick_cpu_threads
from core.engine.hostcopy import HostCopy
from core.engine.cudagraphs import GraphedEncoder
from core.engine.loop import MAX_SEEDS, Inversion, check_seeds, invert, start_images
from core.engine.multistop import MultiStopEncoder, NotCutPoints, cut_points, run_together

__all__ = [
    "BORDERLINE", "DEGENERATE", "GraphedEncoder", "HostCopy", "Inversion", "InversionResult", "MAX_SEEDS", "Metrics",
    "MultiStopEncoder", "NotCutPoints", "Snapshot", "SpeedOptions", "check_seeds", "converged_mask", "cut_points",
    "fold_batchnorm", "invert", "is_degenerate", "pick_cpu_threads", "reading", "run_together", "start_images", "uniqueness",
    "status",
]
