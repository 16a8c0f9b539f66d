"""The machine facts every benchmark prints or waits on: one copy, so every results file states them alike."""

from __future__ import annotations

import platform

import torch

# imported for their versions where present; a missing one is recorded as None
APP_PACKAGES = ("streamlit", "plotly", "pandas", "pyarrow", "google.protobuf")


def sync(device) -> None:
    """Wait for the device's queued work (a no-op off CUDA), so a wall-clock time measures the work."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _version(module: str) -> str | None:
    try:
        return __import__(module, fromlist=["__version__"]).__version__
    except Exception:  # noqa: BLE001 - a missing optional package is a fact to record, not an error
        return None


def versions(gpu: bool = False) -> dict:
    """Python, torch and the model libraries' versions.

    Args:
        gpu: also CUDA, cuDNN and the app's packages (the GPU check records what the machine had).

    Returns:
        name -> version (None for a package that is not installed).
    """
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "timm", "numpy"):
        out[mod] = _version(mod)
    if gpu:
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        for mod in APP_PACKAGES:
            out[mod.split(".")[-1]] = _version(mod)
    return out


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(path, name: str, text: str) -> None:
    """Put `text` between `<!-- name:start -->` and `<!-- name:end -->` in the markdown file `path` (replacing
    what was there, or appended with the markers), so each benchmark rewrites only its own section."""
    import re
    from pathlib import Path

    path = Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)
