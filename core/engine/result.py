"""What a run produces: `Snapshot`s while it runs, and the `InversionResult` at its end.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

import torch

from core.engine.run_reading import reading
from core.recipe.presets import Preset

# How a result draws itself in a notebook: "png" -> bytes, "html" -> str, per result. The drawing is core.report's,
# a layer above this one, so it is handed in, not imported: `core.report.notebook` fills this in when imported
# (`import core` imports it). Left empty, a result shows as its one-line text (`_repr_pretty_`).
DISPLAY: dict[str, Callable[[Any], Any]] = {}


def shown(obj: Any, kind: str) -> Any:
    """DISPLAY[kind](obj), or None where there is no such drawing or it fails: a display never raises in a
    notebook (IPython then shows the next format it has, the plain text)."""
    draw = DISPLAY.get(kind)
    if draw is None:
        return None
    try:
        return draw(obj)
    except Exception:  # noqa: BLE001 - whatever went wrong, the notebook shows the text instead
        logging.getLogger(__name__).debug("could not draw a %s as %s", type(obj).__name__, kind, exc_info=True)
        return None


@dataclass
class Snapshot:
    """The state of a run after `step` of `total` steps (images on the CPU)."""

    step: int
    total: int
    images: torch.Tensor  # (K, 3, H, W) in [0, 1] (clamped for display)
    loss: list[float]
    embedding_l2: list[float]  # m_g per seed at this step
    input_l2: list[float]  # m_i per seed at this step
    seconds: float


@dataclass
class Metrics:
    """A run's docs/method.md metrics, per seed where a list (seed order = the run's seeds).

    Typed fields instead of a free dict, so a misspelt name fails where it is written or read:
    `from_dict` and `m["name"]` raise KeyError for a name that is not a field. Stored runs that predate a
    field load with it None. Reading by name (`m["clarity"]`, `m.get("budget")`) stays, for the tables and
    files that pick metrics by a column name.
    """

    input_l2: list[float] | None = None  # m_i: pixel L2 to the image
    embedding_l2: list[float] | None = None  # m_g: embedding L2 to the image's
    ssim: list[float] | None = None
    psnr: list[float] | None = None
    clarity_per_seed: list[float] | None = None  # the measure core.measures.CLARITY names, per seed
    start_ssim: list[float] | None = None  # fidelity's zero point, per seed
    # the panel of measures (core.measures): each raw, its start's value, and normalised 0 (start) - 1 (image)
    edge_corr: list[float] | None = None
    start_edge_corr: list[float] | None = None
    judge_distance: list[float] | None = None
    start_judge_distance: list[float] | None = None
    fidelity_per_seed: list[float] | None = None  # pixel fidelity: SSIM normalised
    structure_per_seed: list[float] | None = None
    content_per_seed: list[float] | None = None
    fidelity: float | None = None  # each a mean over seeds
    structure: float | None = None
    content: float | None = None
    judge: str | None = None  # the trained network that judged content
    clarity_measure: str | None = None  # which measure `clarity` is
    start_input_l2: list[float] | None = None
    reference_l2: float | None = None  # m_r: a near-copy's embedding distance
    shift_input_l2: float | None = None  # that near-copy's pixel distance, ‖a′−a‖₂
    embedding_norm: float | None = None
    degenerate: bool | None = None  # m_r about 0: m_g / m_r means nothing
    converged: list[bool] | None = None  # m_g <= m_r per seed
    mg_over_mr: list[float] | None = None
    seed_spread_input: float | None = None
    seed_spread_embedding: float | None = None
    seed_distances_input: list[list[float]] | None = None  # K x K
    seed_distances_embedding: list[list[float]] | None = None
    clarity: float | None = None  # mean over seeds
    steps_to_reference: list[int | None] | None = None
    stop_reason: str | None = None  # "converged", "budget" or None (stopped by the caller)
    budget: int | None = None  # the steps the run was to take (a continued run's included)
    signal: dict | None = None  # core.models.health.signal_health

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: "dict | Metrics") -> "Metrics":
        """The metrics of a stored dict (a cache entry, a results file).

        Raises:
            KeyError: a key that is not a metric (a misspelling, or another format).
        """
        if isinstance(d, Metrics):
            return d
        unknown = sorted(set(d) - set(cls.names()))
        if unknown:
            raise KeyError(f"not a metric: {', '.join(unknown)} (metrics are {', '.join(cls.names())})")
        return cls(**d)

    def to_dict(self) -> dict:
        """Every metric by name, JSON-ready (what results files and the cache store)."""
        return asdict(self)

    def __getitem__(self, name: str) -> Any:
        if name not in self.names():
            raise KeyError(f"not a metric: {name!r}")
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        """The metric `name`, or `default` where the run has none; KeyError for a name that is not a metric."""
        value = self[name]
        return default if value is None else value


@dataclass
class InversionResult:
    """A finished (or stopped) run: settings, images, the docs/method.md metrics and the trajectories."""

    model: str
    checkpoint: str
    layer: str
    label: str
    size: int
    preset: Preset
    seeds: list[int]
    device: str
    seconds: float
    steps_done: int
    stopped_early: bool  # stopped by the caller before the run finished (not stored in the cache)
    original: torch.Tensor  # (3, H, W)
    images: torch.Tensor  # (K, 3, H, W)
    embedding_shape: tuple
    metrics: Metrics  # a dict is read with `Metrics.from_dict`
    history: dict = field(default_factory=dict)
    spec: dict = field(default_factory=dict)  # every setting of the run (`core.jobs.spec.RunSpec.to_dict`)

    def __post_init__(self):
        self.metrics = Metrics.from_dict(self.metrics)

    def to_json(self) -> dict:
        try:
            verdict = reading(self)  # the app's plain-language verdict, word for word
        except (KeyError, TypeError, ValueError):  # a result without the full metrics (hand-made in a test)
            verdict = None
        return {
            "model": self.model, "checkpoint": self.checkpoint, "layer": self.layer, "label": self.label,
            "size": self.size, "preset": self.preset.name, "preset_settings": self.preset.to_dict(),
            "iters": self.preset.iters, "steps_done": self.steps_done, "stopped_early": self.stopped_early,
            "stop_reason": self.metrics.get("stop_reason"),
            "seeds": list(self.seeds), "device": self.device, "seconds": round(self.seconds, 4),
            "embedding_shape": list(self.embedding_shape), "verdict": verdict, "spec": self.spec,
            "metrics": self.metrics.to_dict(), "history": self.history,
        }

    # ------------------------------------------------------------------ in a notebook (IPython's display hooks)

    def summary(self) -> str:
        """One line on the run and its plain-language reading under it (a notebook's text for the result)."""
        m = self.metrics
        line = (f"InversionResult: {self.model} · {self.checkpoint} · {self.layer} ({self.label}) · {self.size} px · "
                f"{len(self.seeds)} seed{'s' if len(self.seeds) != 1 else ''} · {self.steps_done} steps")
        if m.clarity is not None:
            line += f" · clarity {m.clarity:.3f}"
        try:
            return line + "\n" + reading(self)
        except (KeyError, TypeError, ValueError):  # a result without the full metrics
            return line

    def _repr_pretty_(self, p, cycle: bool) -> None:
        try:
            text = self.summary()
        except Exception:  # noqa: BLE001 - a display never raises: the dataclass's own repr
            text = repr(self)
        p.text(text)

    def _repr_png_(self) -> bytes | None:
        """The original and each seed's reconstruction with their numbers (`core.report.result_grid`), as PNG."""
        return shown(self, "png")

    def _repr_html_(self) -> str | None:
        """That picture, a table of the metrics per seed and the reading (`core.report.notebook.result_html`)."""
        return shown(self, "html")
