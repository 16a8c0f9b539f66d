"""The GPU section of BENCHMARKS.md, between its markers: `make gpu-check` writes it, the CPU benchmark keeps it.

Small and free of the check's imports, so the CPU runner can keep the section without loading the GPU check.
"""

from __future__ import annotations

GPU_START, GPU_END = "<!-- gpu:start -->", "<!-- gpu:end -->"


def splice(text: str, block: str) -> str:
    """`text` with its GPU block replaced by `block` (appended when it has none)."""
    if GPU_START in text and GPU_END in text:
        head, rest = text.split(GPU_START, 1)
        return head + block.rstrip("\n") + rest.split(GPU_END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block


def gpu_block(text: str) -> str | None:
    """The GPU block of a BENCHMARKS.md text, markers included (None without one): kept when the CPU
    benchmark rewrites the file."""
    if GPU_START in text and GPU_END in text:
        return GPU_START + text.split(GPU_START, 1)[1].split(GPU_END, 1)[0] + GPU_END + "\n"
    return None
