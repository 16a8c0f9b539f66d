"""One depth, two checkpoints: the sentence that compares their clarity and the exported two-row grid.

The Invert page's side-by-side view ("compare with") and its download use these, so the words on the
screen and on the slide are the same. A difference is stated only as far as the runs support it: a
run that has not converged is said to be one, and a gap inside the seeds' own spread is "about the same".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PIL import Image

from core.engine.verdict import status
from core.report.draw import CELL, render_rows
from core.report.files import seed_cells

if TYPE_CHECKING:  # hints only
    from core.engine.result import InversionResult

SAME = 0.02  # clarity gaps up to this (or inside the seeds' spread of SSIM) read as "about the same"


def _spread(result: "InversionResult") -> float:
    """Half the range of the seeds' SSIM: how far a clarity moves between seeds of one run."""
    ssim = (result.metrics or {}).get("ssim") or []
    return (max(ssim) - min(ssim)) / 2 if len(ssim) > 1 else 0.0


def pair_text(a: "InversionResult", b: "InversionResult", name_a: str, name_b: str) -> str:
    """One sentence: which of two runs at the same depth keeps more of the image, by how much, and how sure.

    Args:
        a, b: the two runs (same image, layer, seeds and recipe; another checkpoint).
        name_a, name_b: the checkpoints' names as the page shows them.

    Returns:
        e.g. "At stage 2 block 2, trained keeps less of the image than untrained: clarity 0.63 against 0.75
        (−0.12)." with a warning appended when either run has not converged.
    """
    ca, cb = float(a.metrics["clarity"]), float(b.metrics["clarity"])
    diff = ca - cb
    where = f"At {a.label}" if a.label else f"At {a.layer}"
    nums = f"clarity {ca:.2f} against {cb:.2f} ({'+' if diff >= 0 else '−'}{abs(diff):.2f})"
    if abs(diff) <= max(SAME, _spread(a), _spread(b)):
        text = f"{where}, {name_a} and {name_b} keep about as much of the image: {nums}, within the seeds' spread."
    else:
        more = "more" if diff > 0 else "less"
        text = f"{where}, {name_a} keeps {more} of the image than {name_b}: {nums}."
    loose = [n for n, r in ((name_a, a), (name_b, b)) if status(r.metrics) != "converged"]
    if loose:
        text += (f" Not converged yet: {' and '.join(loose)} (the picture is the optimiser's, not the layer's answer "
                 "yet); continue both before comparing.")
    return text


def pair_grid(a: "InversionResult", b: "InversionResult", name_a: str, name_b: str, title: str = "",
              cell: int = CELL) -> Image.Image:
    """The exported picture of a side-by-side run: row `name_a` (the original, then its seeds), row `name_b`
    (its seeds under them), the comparison sentence in the title.

    Args:
        a, b: the two runs.
        name_a, name_b: the rows' names (the checkpoints).
        title: the first title line (e.g. `run_title(a)`); the comparison sentence follows it.
        cell: smallest cell side in px.

    Returns:
        A PIL image.
    """
    scale = max(1, math.ceil(cell / min(int(s) for s in a.original.shape[-2:])))
    width = int(a.original.shape[-1]) * scale
    rows = [(f"{name_a} · clarity {a.metrics['clarity']:.2f}", seed_cells(a, width), False),
            (f"{name_b} · clarity {b.metrics['clarity']:.2f}", seed_cells(b, width, original=False), True)]
    full = ". ".join(t for t in (title, pair_text(a, b, name_a, name_b)) if t)  # the grid font may lack "—"
    return render_rows(rows, scale, title=full)[0]
