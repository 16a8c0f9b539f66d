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

from core.devices import describe, resolve_device
from core.jobs import Estimate, RunSpec, human, measure, plan_seconds
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


# --------------------------------------------------------------------------- a curve's time, measured now


PROBE_STEPS = 1  # after the warm-up step: a second or two even on a loaded 2-core machine; cached for a minute


@st.cache_data(show_spinner="Measuring a few steps to estimate the time…", max_entries=64, ttl=60)
def _measured(arch: str, layer: str, size: int, seeds: int, preset_json: str, device: str, _model) -> Estimate:
    """One stop's run measured from a warm-up step and `PROBE_STEPS` steps (again after a minute: the load
    changes). The checkpoint does not change the cost, so it is not part of the key."""
    from core import get_preset

    preset = get_preset("default").replace(**json.loads(preset_json))
    return measure(_model, layer, size, seeds, preset, device, probe_steps=PROBE_STEPS)


def line_seconds(arch: str, model, stops: list[int], nodes: list[str], size: int, seeds: int, preset,
                 device: str) -> float:
    """The time of the runs at `stops` (indices into `nodes`) of one model's line (`core.jobs.plan_seconds`), each
    stop measured here at most once a minute."""
    pj = json.dumps(preset.to_dict())
    return plan_seconds([(nodes, stops)], lambda node: _measured(arch, node, size, seeds, pj, device, model))


def plan_time(lines: list[tuple], image, seeds: list[int], preset, device: str, times: int = 1) -> tuple[float, int, int]:
    """(seconds, runs to make, runs in the cache) of the runs of `lines` on this machine now (see `plan_estimate`)."""
    todo, n_all = [], 0
    for arch, model, ck, nodes in lines:
        stops = []
        for i, node in enumerate(nodes):
            n_all += 1
            try:
                hit = live.cached(RunSpec.of(model, node, image, seeds, preset, device, checkpoint=ck)) is not None
            except Exception:  # noqa: BLE001 - a bad node is reported when it runs
                hit = False
            if not hit:
                stops.append(i)
        if stops:
            todo.append((arch, model, stops, nodes))
    runs = sum(len(t[2]) for t in todo) * times
    secs = times * sum(line_seconds(arch, model, stops, nodes, image.shape[-1], len(seeds), preset, device)
                       for arch, model, stops, nodes in todo)
    return secs, runs, n_all * times - runs


def say_time(box, secs: float, runs: int, cached: int, preset, device: str, batch: str = "off", what: str = "") -> None:
    """The estimate's one line (or that everything is in the cache)."""
    if not runs:
        box.caption("Every run is in the cache: it shows at once.")
        return
    dev = resolve_device(device)
    from_cache = f"; {cached} more from the cache" if cached else ""
    try:
        together = "; a model's stops run in one batch, which may be sooner" if batched(batch, dev) else ""
    except Exception:  # noqa: BLE001 - a bad value is refused when it runs
        together = ""
    early = "; early stop may end it sooner" if preset.early_stop else ""
    says = human(secs).replace("under a second", "a second")
    box.caption(f"Estimated on {describe(dev)} now: up to **{says}** for {runs} run{'s' if runs > 1 else ''}"
                f"{' ' + what if what else ''}{from_cache}{together}{early} (from a few steps measured now at each "
                "model's first and last stop; the machine's load changes it).")


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
        secs, runs, cached = plan_time(lines, image, seeds, preset, device, times)
    except Exception as exc:  # noqa: BLE001 - an estimate is a nicety; the run reports its own errors
        log.warning("no estimate: %s", exc)
        return None
    say_time(box, secs, runs, cached, preset, device, batch, what)
    return secs


def curve_estimate(box, arch: str, loaded: list, checkpoints: list[str], plan: list[str], image, seeds: list[int],
                   preset, device: str, batch: str = "off") -> float | None:
    """`plan_estimate` for a curve: every checkpoint of `arch` at the stops of `plan`."""
    if not loaded or not plan:
        return None
    return plan_estimate(box, [(arch, m, ck, plan) for ck, m in zip(checkpoints, loaded)], image, seeds, preset,
                         device, batch)


# --------------------------------------------------------------------------- download names


def stem(*parts) -> str:
    """A download's name without its suffix from `parts` (lists joined with '-', empty parts left out), safe in
    any file system: `stem("compare", ["resnet18", "vgg16"], "64px")` -> "compare_resnet18-vgg16_64px"."""
    out = []
    for p in parts:
        if isinstance(p, (list, tuple)):
            p = "-".join(str(x) for x in p if str(x))
        if str(p):
            out.append(str(p))
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in "_".join(out))
