"""One depth, two checkpoints: the sentence that compares what they keep and the exported two-row grid.

The Invert page's side-by-side view ("compare with") and its download use these, so the words on the
screen and on the slide are the same. A difference is stated only as far as the runs support it: a
run that has not converged is said to be one, a gap inside the seeds' own spread is "about the same", and
where the measures disagree (a trained deep layer: the object in wrong colours) the sentence says which says what.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PIL import Image

from core.engine.run_reading import status
from core.report.draw import CELL, render_rows
from core.report.files import seed_cells
from core.report.text import measures_text

if TYPE_CHECKING:  # hints only
    from core.engine.result import InversionResult

SAME = 0.02  # gaps up to this (or inside the seeds' own spread of the measure) read as "about the same"
# the measures beside clarity that the sentence checks, and what it says when one sides with the other run
OTHERS = {"fidelity": ("pixel fidelity", "pixel colour and detail"), "structure": ("structure", "where its brightness edges lie")}


def _spread(result: "InversionResult", name: str) -> float:
    """Half the range of the seeds' values of a measure: how far it moves between seeds of one run."""
    per = (result.metrics or {}).get(f"{name}_per_seed") or []
    return (max(per) - min(per)) / 2 if len(per) > 1 else 0.0


def _side(a: "InversionResult", b: "InversionResult", name: str) -> int:
    """+1 where `a` scores higher on the measure, -1 where `b` does, 0 inside the seeds' spread (or no value)."""
    va, vb = a.metrics.get(name), b.metrics.get(name)
    if va is None or vb is None or abs(va - vb) <= max(SAME, _spread(a, name), _spread(b, name)):
        return 0
    return 1 if va > vb else -1


def _nums(a: "InversionResult", b: "InversionResult", name: str, word: str) -> str:
    va, vb = float(a.metrics[name]), float(b.metrics[name])
    return f"{word} {va:.2f} against {vb:.2f} ({'+' if va >= vb else '−'}{abs(va - vb):.2f})"


def _named(a: "InversionResult", b: "InversionResult", name: str, word: str, name_a: str, name_b: str) -> str:
    return f"{word}: {name_a} {float(a.metrics[name]):.2f}, {name_b} {float(b.metrics[name]):.2f}"


def pair_text(a: "InversionResult", b: "InversionResult", name_a: str, name_b: str) -> str:
    """One sentence (two where the measures disagree): which of two runs at the same depth keeps more of the
    image, by how much, and how sure.

    Clarity (the measure that agrees with the eye: `core.measures.CLARITY`) decides the headline; where pixel
    fidelity or structure side with the other run beyond the seeds' spread, the text says so in words ("closer
    in pixel colour and detail, but the object is more recognisable in ..."), so the sentence never contradicts
    what the two rows show.

    Args:
        a, b: the two runs (same image, layer, seeds and recipe; another checkpoint).
        name_a, name_b: the checkpoints' names as the page shows them.

    Returns:
        e.g. "At stage 6 block 1, trained keeps more of the image than untrained: clarity 0.16 against 0.06
        (+0.10). The measures disagree: untrained is closer in pixel colour and detail (pixel fidelity: trained 0.00,
        untrained 0.09), but the object is more recognisable in trained's.", with a warning appended when either
        run has not converged.
    """
    where = f"At {a.label}" if a.label else f"At {a.layer}"
    nums = _nums(a, b, "clarity", "clarity")
    side = _side(a, b, "clarity")
    if side == 0:
        text = f"{where}, {name_a} and {name_b} keep about as much of the image: {nums}, within the seeds' spread."
    else:
        text = f"{where}, {name_a} keeps {'more' if side > 0 else 'less'} of the image than {name_b}: {nums}."
    against = {n: _side(a, b, n) for n in OTHERS}
    against = {n: s for n, s in against.items() if s != 0 and s != side}
    if against and side != 0:
        winner, loser = (name_a, name_b) if side > 0 else (name_b, name_a)
        what = " and in ".join(OTHERS[n][1] for n in against)
        nums_o = "; ".join(_named(a, b, n, OTHERS[n][0], name_a, name_b) for n in against)
        text += (f" The measures disagree: {loser} is closer in {what} ({nums_o}), but the object is more "
                 f"recognisable in {winner}'s.")
    elif against:
        for s_ in (1, -1):
            mine = [n for n, s in against.items() if s == s_]
            if mine:
                who = name_a if s_ > 0 else name_b
                text += (f" {who} is closer in {' and in '.join(OTHERS[n][1] for n in mine)} "
                         f"({'; '.join(_named(a, b, n, OTHERS[n][0], name_a, name_b) for n in mine)}).")
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
    rows = [(f"{name_a} · {measures_text(a.metrics)}", seed_cells(a, width), False),
            (f"{name_b} · {measures_text(b.metrics)}", seed_cells(b, width, original=False), True)]
    full = ". ".join(t for t in (title, pair_text(a, b, name_a, name_b)) if t)  # the grid font may lack "—"
    return render_rows(rows, scale, title=full)[0]
