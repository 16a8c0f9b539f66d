"""What one visitor may ask of a shared server, as its operator sets it.

A conference server is shared: one visitor's 20-minute run would hold the device while the room waits, and a
long queue makes every visitor wait for everyone. Two limits, read from the environment when a run is asked for:

- `INVERSION_MAX_RUN_S` (default `MAX_RUN_S`): the most one click may compute, by its measured estimate (a run,
  a side-by-side pair, a curve or a comparison). A longer request is refused with the cheaper way to ask.
- `INVERSION_MAX_WAITING` (default `MAX_WAITING`): the most runs that may wait for the device at once; past it a
  new run is refused ("try again in a minute") instead of joining a queue nobody can see the end of.

Each session queues at most one run by construction: its script runs one click at a time (a pair holds one slot).
"""

from __future__ import annotations

import os

from core.devices import resolve_device
from core.jobs import human, queue_for

MAX_RUN_S = 1800.0  # 30 minutes of computing for one click, by its estimate
MAX_WAITING = 8  # runs waiting for the device at once


def _number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def refusal(seconds: float | None, device: str) -> str | None:
    """Why this server refuses a request estimated at `seconds` on `device` now, or None when it may run.

    Args:
        seconds: the request's estimated computing time (None: not measured; only the queue is checked).
        device: the device it would run on ("cpu", "cuda", "auto").
    """
    cap = _number("INVERSION_MAX_RUN_S", MAX_RUN_S)
    if seconds is not None and seconds > cap:
        return (f"This server limits one run to {human(cap)} of computing (set by its operator: "
                f"INVERSION_MAX_RUN_S), and these settings take {human(seconds)}: choose a smaller image size, "
                "fewer seeds, iterations or stops.")
    waiting = queue_for(str(resolve_device(device))).state().get("waiting", 0)
    most = int(_number("INVERSION_MAX_WAITING", MAX_WAITING))
    if waiting >= most:
        return (f"The server is busy: {waiting} runs are waiting for the device (its operator allows {most}). "
                "Try again in a minute.")
    return None
