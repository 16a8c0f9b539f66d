"""What the study pages (Clarity curve, Manifold, Compare, Lab, Sweeps) say about their settings: link values
they could not use (named, never dropped silently), how long a curve takes on this machine now (measured, not a
constant), and download names that say what they hold.

The one-layer pages (Invert, Non-uniqueness) get the same from `ui.pickers` and `ui.live`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence

import streamlit as st

from core.devices import describe, resolve_device
from core.jobs import Estimate, RunSpec, human, measure
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


def curve_seconds(arch: str, model, runs: list[tuple[int, str]], n_stops: int, first: str, last: str, size: int,
                  seeds: int, preset, device: str) -> float:
    """The time of `runs` ((stop index, checkpoint) pairs, one per run) of a curve, one by one: the first and last stop
    (`first`, `last`) measured on `model`, each stop between them interpolated by its index."""
    pj = json.dumps(preset.to_dict())
    a = _measured(arch, first, size, seeds, pj, device, model).seconds
    b = a if last == first else _measured(arch, last, size, seeds, pj, device, model).seconds
    span = max(1, n_stops - 1)
    return sum(a + (b - a) * i / span for i, _ in runs)


def curve_estimate(box, arch: str, loaded: list, checkpoints: list[str], plan: list[str], image, seeds: list[int],
                   preset, device: str, batch: str = "off") -> float | None:
    """Say in `box` how long the curve's runs that are not in the cache take on this machine now (measured at
    its first and last stop); returns the seconds (None: nothing measured)."""
    if not loaded or not plan or image is None:
        return None
    todo = []
    for ck, m in zip(checkpoints, loaded):
        for i, node in enumerate(plan):
            try:
                hit = live.cached(RunSpec.of(m, node, image, seeds, preset, device, checkpoint=ck)) is not None
            except Exception:  # noqa: BLE001 - a bad node is reported when the curve runs
                hit = False
            if not hit:
                todo.append((i, ck))
    if not todo:
        box.caption("Every run of this curve is in the cache: Run curve shows it at once.")
        return 0.0
    try:
        secs = curve_seconds(arch, loaded[0], todo, len(plan), plan[0], plan[-1], image.shape[-1], len(seeds),
                             preset, device)
    except Exception as exc:  # noqa: BLE001 - an estimate is a nicety; the run reports its own errors
        log.warning("no curve estimate: %s", exc)
        return None
    where = describe(resolve_device(device))
    cached = len(plan) * len(checkpoints) - len(todo)
    from_cache = f"; {cached} more from the cache" if cached else ""
    try:
        together = "; they run in one batch, which may be sooner" if batched(batch, resolve_device(device)) else ""
    except Exception:  # noqa: BLE001 - a bad value is refused when the curve runs
        together = ""
    early = "; early stop may end it sooner" if preset.early_stop else ""
    says = human(secs).replace("under a second", "a second")
    box.caption(f"Estimated on {where} now: up to **{says}** for {len(todo)} run{'s' if len(todo) > 1 else ''}"
                f"{from_cache}{together}{early} (from a few steps measured now at the first and last stop; the "
                "machine's load changes it).")
    return secs


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
