"""Results in a notebook: a run and a clarity curve that display themselves in Jupyter, and the curve for notebook
users (`curve`, with a progress bar over its stops).

A run (`core.engine.InversionResult`) shows the picture of `result_grid` (`_repr_png_`), or that picture with a
table of its metrics per seed and its reading (`_repr_html_`). The engine sits below this package and cannot
import it, so this module hands it the drawings (`core.engine.result.DISPLAY`) when imported; `import core` does.
A curve (`Curve`, what `curve` returns) shows a table of its stops, the gallery and the chart (`_repr_html_`), or the
gallery alone (`_repr_png_`); `Curve.figure()` is the plotly chart, which draws itself in a notebook.

Every display is cheap (one small PNG) and never raises: a drawing that fails leaves the plain text.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field, replace
from html import escape
from typing import TYPE_CHECKING, Any, Callable, Sequence, TextIO

from core.engine import result as _result
from core.engine.loop import progress_bar
from core.engine.result import InversionResult
from core.engine.run_reading import reading, status
from core.jobs.pipeline import Callbacks
from core.models.checkpoints import load_model
from core.models.encoder import depth_stops
from core.recipe.presets import DEFAULT
from core.report.draw import png_bytes
from core.report.figures import curve_figure
from core.report.files import gallery, result_grid
from core.report.text import curve_title, run_title, short_checkpoint, unconverged_text
from core.studies.curve import CurveRow, iter_curve

if TYPE_CHECKING:  # hints only
    import torch

    from core.recipe.presets import Preset

__all__ = ["Curve", "curve", "curve_html", "result_html", "result_png"]

_TABLE = 'style="border-collapse:collapse;font-size:12px;margin:4px 0"'
_CELL = 'style="padding:2px 8px;border-bottom:1px solid #ddd;text-align:right"'


def _quiet(draw: Callable[[Any], Any], obj: Any) -> Any:
    """draw(obj), or None where it fails: a display never raises in a notebook (it shows the plain text instead)."""
    try:
        return draw(obj)
    except Exception:  # noqa: BLE001 - whatever went wrong, the notebook shows the text
        logging.getLogger(__name__).debug("could not draw a %s", type(obj).__name__, exc_info=True)
        return None


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}" style="max-width:100%"/>'


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v and abs(v) < 1e-3) else f"{v:.{digits}f}"
    return escape(str(v))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th {_CELL}>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def result_png(result: InversionResult) -> bytes:
    """A run's picture as PNG: the original and each seed's reconstruction with its caption (`result_grid`)."""
    return png_bytes(result_grid(result))


def result_html(result: InversionResult) -> str:
    """A run as HTML: its title, its picture, a table per seed (clarity, pixel fidelity, structure, m_g, m_i, m_r,
    m_g / m_r, SSIM, converged)
    and the reading (`core.engine.run_reading.reading`)."""
    m = result.metrics

    def at(name, i):
        values = m.get(name) or []
        return values[i] if i < len(values) else None

    rows = [[escape(str(s)), _num(at("clarity_per_seed", i)), _num(at("fidelity_per_seed", i)),
             _num(at("structure_per_seed", i)), _num(at("embedding_l2", i)), _num(at("input_l2", i)),
             _num(m.get("reference_l2")), _num(at("mg_over_mr", i)), _num(at("ssim", i)), _num(at("converged", i))]
            for i, s in enumerate(result.seeds)]
    table = _table(["seed", "clarity", "pixel fidelity", "structure", "m_g", "m_i", "m_r", "m_g / m_r", "SSIM",
                    "converged"], rows)
    try:
        verdict = reading(result)
    except (KeyError, TypeError, ValueError):  # a result without the full metrics
        verdict = ""
    clarity = m.get("clarity")
    mean = f"<p style='margin:2px 0'>clarity (mean over seeds) <b>{_num(clarity)}</b> · " if clarity is not None else "<p>"
    return (f"<div><p style='margin:2px 0'><b>{escape(run_title(result))}</b></p>{_img(result_png(result), 'run')}"
            f"{table}{mean}{escape(status(m))}</p><p style='margin:2px 0'>{escape(verdict)}</p></div>")


# a run draws itself with these (the engine cannot import this package; see the module docstring)
_result.DISPLAY.update(png=result_png, html=result_html)


@dataclass
class Curve:
    """A clarity curve: its rows (`core.studies.CurveRow`, one per checkpoint and stop) and the inverted image.

    In a notebook it shows a table of its stops, the gallery and the chart; `figure()` is the chart alone
    (plotly), `gallery()` the paper's picture, `table()` the rows as dicts (`CurveRow.to_json`).
    """

    rows: list[CurveRow]
    original: "torch.Tensor"  # (3, H, W) in [0, 1]
    settings: dict = field(default_factory=dict)  # what `core.report.text.curve_title` reads

    @property
    def title(self) -> str:
        return curve_title(self.settings, stops=len({r.layer for r in self.rows}))

    def table(self) -> list[dict]:
        return [r.to_json() for r in self.rows]

    def figure(self, metric: str = "clarity"):
        """The curve's chart (`core.report.curve_figure`): `metric` against depth, one line per checkpoint."""
        return curve_figure(self.table(), metric, self.title)

    def gallery(self, seed_index: int = 0):
        """The paper's picture (`core.report.gallery`), a PIL image: one row per checkpoint, one column per stop."""
        return gallery(self.rows, self.original, seed_index=seed_index, title=self.title)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"Curve({self.title}: {len(self.rows)} row{'s' if len(self.rows) != 1 else ''})"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_png_(self) -> bytes | None:
        """The gallery as PNG (`curve_png`); None where it cannot be drawn."""
        return _quiet(curve_png, self)

    def _repr_html_(self) -> str | None:
        """The table, the gallery and the chart (`curve_html`); None where they cannot be drawn."""
        return _quiet(curve_html, self)


def curve_png(c: Curve) -> bytes:
    """A curve's gallery as PNG."""
    return png_bytes(c.gallery())


def curve_html(c: Curve) -> str:
    """A curve as HTML: its title, a table of its rows (checkpoint, stop, the measures, SSIM, m_g / m_r, status), the
    gallery, the not-converged points, and the plotly chart (plotly.js from its CDN: where the notebook is offline
    the chart stays blank, the table and the gallery do not)."""
    table = c.table()
    rows = [[escape(short_checkpoint(str(r["checkpoint"]))), escape(str(r["label"] or r["layer"])),
             escape(str(r["layer"])), _num(r["clarity"]), _num(r.get("fidelity")), _num(r.get("structure")),
             _num(r["ssim_mean"]), _num(r["mg_over_mr_max"]), escape(r["status"]), f"{r['steps_done']}"] for r in table]
    html = [f"<div><p style='margin:2px 0'><b>{escape(c.title)}</b></p>",
            _table(["checkpoint", "stop", "node", "clarity", "pixel fidelity", "structure", "SSIM", "max m_g / m_r",
                    "status", "steps"], rows)]
    bad = unconverged_text(table)
    if bad:
        html.append(f"<p style='margin:2px 0'>Not converged, borderline or degenerate: {escape(bad)}</p>")
    html.append(_img(curve_png(c), "gallery"))
    if table:
        html.append(c.figure().to_html(full_html=False, include_plotlyjs="cdn", default_height=420))
    return "".join(html) + "</div>"



def pick_stops(stops: Sequence[str], n: int) -> list[str]:
    """`n` of `stops` spread evenly from the first to the last (all of them where n >= their number)."""
    if n < 1:
        raise ValueError(f"a curve needs at least one stop (got {n})")
    if n >= len(stops):
        return list(stops)
    if n == 1:
        return [stops[-1]]
    return list(dict.fromkeys(stops[round(i * (len(stops) - 1) / (n - 1))] for i in range(n)))


def curve(arch: str, image: "torch.Tensor", checkpoints: Sequence[str] | str = ("untrained", "trained"),
          layers: Sequence[str] | str | int | None = None, *, seeds: Sequence[int] = (0, 1),
          preset: "Preset | None" = None, device: str = "auto", init_seed: int = 0,
          progress: bool | TextIO | None = None, callbacks: "Callbacks | None" = None, **kwargs) -> Curve:
    """The clarity curve of `image` through `arch` for each checkpoint, as a `Curve` that displays itself.

    Args:
        arch: architecture name ("efficientnet_lite0", "resnet18", ...).
        image: (3, N, N) in [0, 1] (`core.load_image`).
        checkpoints: "untrained", "trained", state-dict paths, or one of them as a string.
        layers: None or "stops" for every depth stop, node names, or a number n: n stops spread evenly from the
            first to the last.
        seeds, preset, device, init_seed: as for `core.studies.iter_curve`.
        progress: a bar over the stops (`core.engine.loop.progress_bar`): None (default) only in a notebook, False
            never, True always, a text stream writes a plain one to it.
        callbacks: `core.jobs.Callbacks` passed on (their `stop` is called too).
        **kwargs: the rest of `iter_curve`'s options (every, speed, models, cache, use_cache, batch_stops).

    Returns:
        A `Curve`: `rows`, `figure()`, `gallery()`, `table()`.

    Example:
        >>> c = curve("efficientnet_lite0", load_image("assets/chelsea.png", 64), ["trained"], 3, seeds=[0, 1])
        >>> c  # in a notebook: the table, the gallery and the chart
    """
    checkpoints = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints)
    size = int(image.shape[-1])
    if isinstance(layers, int) and not isinstance(layers, bool):
        models = kwargs.get("models")
        if models is None:  # loaded once here and handed on, so iter_curve does not load them again
            models = kwargs["models"] = [load_model(arch, ck, size, init_seed) for ck in checkpoints]
        layers = pick_stops([s.node for s in depth_stops(models[0])], layers)
    cb = callbacks or Callbacks()
    bar = None
    outer_stop = cb.next_run

    def on_stop(done, total, ck, layer):
        nonlocal bar
        if bar is None and total:
            bar = progress_bar(progress, total, f"{arch} curve", unit="stop")
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)
            bar.set_postfix_str(f"{short_checkpoint(str(ck))} {layer}" if layer else "")  # the stop now running
        if outer_stop:
            outer_stop(done, total, ck, layer)

    cb = replace(cb, next_run=on_stop)
    rows: list[CurveRow] = []
    try:
        for row in iter_curve(arch, image, checkpoints, layers, seeds=seeds, preset=preset, device=device,
                              init_seed=init_seed, callbacks=cb, **kwargs):
            rows.append(row)
            if bar is not None:
                bar.update(len(rows) - bar.n)
    finally:
        if bar is not None:
            bar.close()
    preset_used = preset or DEFAULT
    settings = {"model": arch, "checkpoints": checkpoints, "size": size, "seeds": list(seeds),
                "preset": preset_used.name, "iters": preset_used.iters}
    return Curve(rows, image, settings)
