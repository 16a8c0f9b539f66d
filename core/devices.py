"""Pick the compute device and describe it."""

from __future__ import annotations

import torch

from core.errors import UserError
from core.threads import cores as cpu_cores
from core.threads import requested


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto` means CUDA, then Apple's MPS, then CPU; an explicit name must be usable here."""
    if isinstance(name, torch.device):
        return _cpu() if name.type == "cpu" else name
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return _cpu()
    if name == "cpu":
        return _cpu()
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} asked for but no CUDA GPU is visible: use --device cpu or auto")
        return torch.device(name)
    if name == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise UserError("device 'mps' asked for but Apple MPS is not available: use --device cpu or auto")
        return torch.device("mps")
    raise UserError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")


def _cpu() -> torch.device:
    """CPU with the user's thread count, else one thread per core this process may use (a run then takes what
    `core.threads` says the load leaves it)."""
    n = requested() or cpu_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return str(device)


def is_oom(err: BaseException) -> bool:
    """Whether `err` is a device running out of memory (CUDA's own error, or any backend's message)."""
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()

