"""What the study pages (Clarity curve, Manifold, Compare, Lab, Sweeps) say about their settings: link values
they could not use (named, never dropped silently), how long a curve takes on this machine now (measured, not a
constant, `plan_estimate`), and download names that say what they hold.

The one-layer pages (Invert, Non-uniqueness) get the same from `ui.pickers` and `ui.live`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence

import streamlit as st

from core.devices import resolve_device
from core.jobs import PROBE_STEPS, Estimate, PlanTime, measure, time_text
from core.jobs import plan_time as core_plan_time
from core.studies import batched
from ui import live
from ui.state import PageState

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- link values


def link_values(page: PageState, *names: str) -> dict[str, list[str]]:
    """The link's comma lists for `names` that this render takes from the URL (call before `page.bind()`): a
    setting already in the session (this visit's widgets, or a kept copy from an earlier visit) keeps its own,
    so only the link's first render is checked."""
    out = {}
    for name in names:
        key = page.key(name)
        if name in st.query_params and key not in st.session_state and f"_keep_{key}" not in st.session_state:
            out[name] = [x.strip() for x in str(st.query_params[name]).split(",") if x.strip()]
    return out


def unknown(asked: Iterable[str] | None, known: Iterable[str]) -> list[str]:
    """The items of `asked` that are not in `known`, in the link's order."""
    known = set(known)
    return [x for x in (asked or []) if x not in known]


def names(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values)


def ignored_stops(asked: list[str] | None, arch: str, known: Iterable[str], what: str = "stops") -> str | None:
    """The notice for a link's depth stops that `arch` lacks (None when every one is known)."""
    bad = unknown(asked, known)
    if not bad:
        return None
    kept = len(bad) < len(asked or [])
    return (f"ignored the link's {what} {names(bad)}: {arch} has no depth stop of "
            f"{'that name' if len(bad) == 1 else 'those names'}; "
            + ("kept the link's others" if kept else "showing the defaults"))


def known_only(page: PageState, name: str, asked: list[str] | None, known: Iterable[str], default: list[str],
               what: str, notices) -> None:
    """Keep only the link's `name` items that are in `known` (call after `page.bind()`, before its widget is
    drawn), with a notice naming the others; none known: `default`, said so."""
    if asked is None:
        return
    known = list(known)
    bad = unknown(asked, known)
    if not bad:
        return
    good = [x for x in asked if x in known]
    page[name] = good or list(default)
    notices.warning(f"ignored the link's {name} {names(bad)}: not {what} here; "
                    + (f"showing {', '.join(good)}" if good else f"showing the default ({', '.join(default)})"))


# --------------------------------------------------------------------------- a plan's time, measured now


@st.cache_data(show_spinner="Measuring a few steps to estimate the time…", max_entries=64, ttl=60)
def _measured(arch: str, layer: str, size: int, seeds: int, preset_json: str, device: str, _model) -> Estimate:
    """One stop's run measured from a warm-up step and `PROBE_STEPS` steps (again after a minute: the load
    changes). The checkpoint does not change the cost, so it is not part of the key."""
    from core import get_preset

    preset = get_preset("default").replace(**json.loads(preset_json))
    return measure(_model, layer, size, seeds, preset, device, probe_steps=PROBE_STEPS)


def measurer(seeds: int, preset, device: str):
    """`measure_at` for `core.jobs.plan_time`: each stop measured here at most once a minute."""
    pj = json.dumps(preset.to_dict())
    return lambda arch, model, node, size: _measured(arch, node, size, seeds, pj, device, model)


def in_cache(spec) -> bool:
    """`is_cached` for `core.jobs.plan_time`: the app's run cache holds `spec`."""
    return live.cached(spec) is not None


def plan_time(lines: list[tuple], image, seeds: list[int], preset, device: str, times: int = 1) -> PlanTime:
    """The forecast (`core.jobs.plan_time`) of the runs of `lines` on this machine now, the app's cache looked up."""
    return core_plan_time(lines, image, seeds, preset, device, measurer(len(seeds), preset, device),
                          in_cache, times)


def say_time(box, plan: PlanTime, preset, device: str, batch: str = "off", what: str = "") -> None:
    """The forecast's one line in `box` (`core.jobs.time_text`)."""
    try:
        together = batched(batch, resolve_device(device))
    except Exception:  # noqa: BLE001 - a bad value is refused when it runs
        together = False
    box.caption(time_text(plan, preset, device, together, what, bold=True))


def plan_estimate(box, lines: list[tuple], image, seeds: list[int], preset, device: str, batch: str = "off",
                  times: int = 1, what: str = "") -> float | None:
    """Say in `box` how long the runs of `lines` that are not in the cache take on this machine now; returns the
    seconds (None: nothing measured). Every page that runs several inversions says its time through this.

    Args:
        lines: (architecture, loaded model, checkpoint, depth stops) per model × checkpoint; each line's first and
            last stop are measured (a few real steps, cached for a minute) and the stops between interpolated.
        image: the image every run inverts (for the cache lookup; the cost does not depend on it).
        times: the plan runs this many times over (e.g. once per image of a sweep); the cache is looked up for the
            first only.
        what: words after the count of runs (e.g. "over 4 images").
    """
    if not lines or image is None:
        return None
    try:
        plan = plan_time(lines, image, seeds, preset, device, times)
    except Exception as exc:  # noqa: BLE001 - an estimate is a nicety; the run reports its own errors
        log.warning("no estimate: %s", exc)
        return None
    say_time(box, plan, preset, device, batch, what)
    return plan.seconds


def curve_estimate(box, arch: str, loaded: list, checkpoints: list[str], plan: list[str], image, seeds: list[int],
                   preset, device: str, batch: str = "off") -> float | None:
    """`plan_estimate` for a curve: every checkpoint of `arch` at the stops of `plan`."""
    if not loaded or not plan:
        return None
    return plan_estimate(box, [(arch, m, ck, plan) for ck, m in zip(checkpoints, loaded)], image, seeds, preset,
                         device, batch)
