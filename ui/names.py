"""Download names, made one way on every page: what a file holds, in characters any file system takes."""

from __future__ import annotations


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
