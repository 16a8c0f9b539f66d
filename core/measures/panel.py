"""The panel of measures of what a reconstruction keeps, each put on one 0-1 scale per run.

Every measure compares a reconstruction with the image and is then normalised between the run's own start
(0: no better than the random input it began from) and the image itself (1), per seed:

    similarity s:  (s - s_start) / (1 - s_start)        distance d:  (d_start - d) / d_start

clipped to [0, 1]. The measures, each named for what it measures:

- `fidelity` (pixel fidelity): SSIM (scikit-image). Rewards right colours, brightness and fine detail.
- `structure`: edge correlation on luminance (`core.measures.structure`), blind to colour and contrast.
- `content`: an independent trained judge's feature distance (`core.measures.judge`): is the object there.

`clarity` is the measure that agreed best with a person's judgement on the judged set (benchmarks/measures.py,
BENCHMARKS.md "Measures against the eye"); SSIM stays available as `fidelity` and raw as `ssim`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.measures.judge import Judge, Views, distance, get_judge, judge_for
from core.measures.structure import edge_correlation
from core.metrics import ssim

# measure -> (the raw metric it normalises, True where the raw value is a distance, what it measures in words)
MEASURES: dict[str, tuple[str, bool, str]] = {
    "fidelity": ("ssim", False, "pixel fidelity (SSIM: colours, brightness, fine detail)"),
    "structure": ("edge_corr", False, "structure (edges on luminance, blind to colour and contrast)"),
    "content": ("judge_distance", True, "recognisable content (an independent trained network's features)"),
}
CLARITY = "content"  # the measure `clarity` names: chosen on the judged set (see the module docstring)
ORDER = ("clarity", *MEASURES)  # as pickers and tables list them


@dataclass
class Baseline:
    """What one run's measures are normalised against: the image and the run's starts, seen once."""

    original: torch.Tensor  # (3, H, W) in [0, 1]
    judge: Judge
    seen: Views  # the judge's view of the image
    start: dict[str, list[float]]  # raw metric -> per seed, the starts' values


def _raw(images: torch.Tensor, original: torch.Tensor, judge: Judge, seen: Views) -> dict[str, list[float]]:
    views = judge.views(images)
    return {"ssim": [ssim(img, original) for img in images],
            "edge_corr": [edge_correlation(img, original) for img in images],
            "judge_distance": distance(views, seen)}


def baseline(original: torch.Tensor, starts: torch.Tensor, model_name: str) -> Baseline:
    """Measure a run's starts once, so that every later result is normalised against them.

    Args:
        original: the image (3, H, W) in [0, 1].
        starts: the seeds' first images (K, 3, H, W) in [0, 1].
        model_name: the inverted model's name (the judge is never that model: `judge_for`).

    Returns:
        A `Baseline`.
    """
    original = original.detach().float().cpu().clamp(0, 1)
    judge = get_judge(judge_for(model_name))
    seen = judge.views(original.unsqueeze(0))
    return Baseline(original, judge, seen, _raw(starts.detach().float().cpu().clamp(0, 1), original, judge, seen))


def normalise(value: float, start: float, is_distance: bool) -> float:
    """`value` on the run's 0 (its start) to 1 (the image) scale, clipped."""
    if is_distance:
        if value <= 0.0:
            return 1.0
        return float(min(1.0, max(0.0, (start - value) / max(start, 1e-12))))
    if value >= 1.0:
        return 1.0
    return float(min(1.0, max(0.0, (value - start) / max(1e-12, 1.0 - start))))


def measure(images: torch.Tensor, base: Baseline) -> dict:
    """Every measure of a run's images (K, 3, H, W) in [0, 1] against its baseline.

    Returns:
        Metrics fields: each raw metric and its `start_` values per seed, each measure per seed
        (`<measure>_per_seed`) and its mean over seeds, `clarity` (= CLARITY's), the judge's name.
    """
    raw = _raw(images.detach().float().cpu().clamp(0, 1), base.original, base.judge, base.seen)
    out: dict = {"judge": base.judge.name, "clarity_measure": CLARITY}
    for name, (key, is_distance, _) in MEASURES.items():
        per = [normalise(v, v0, is_distance) for v, v0 in zip(raw[key], base.start[key])]
        out.update({key: raw[key], f"start_{key}": base.start[key], f"{name}_per_seed": per,
                    name: sum(per) / len(per)})
    out["clarity_per_seed"], out["clarity"] = out[f"{CLARITY}_per_seed"], out[CLARITY]
    return out


def restore(original: torch.Tensor, metrics, model_name: str) -> Baseline:
    """A finished run's `Baseline` again, from its stored start values (`Metrics` or a dict), without its starts."""
    original = original.detach().float().cpu().clamp(0, 1)
    judge = get_judge(metrics.get("judge") or judge_for(model_name))
    start = {key: list(metrics.get(f"start_{key}") or []) for key, _, _ in MEASURES.values()}
    return Baseline(original, judge, judge.views(original.unsqueeze(0)), start)


def against_starts(image: torch.Tensor, base: Baseline) -> dict[str, float]:
    """Each measure of one image (3, H, W), normalised against each of the run's starts, then averaged
    (e.g. the lab's exact answer, scored on the run's own scale)."""
    raw = _raw(image.detach().float().cpu().clamp(0, 1).unsqueeze(0), base.original, base.judge, base.seen)
    out = {}
    for name, (key, is_distance, _) in MEASURES.items():
        per = [normalise(raw[key][0], v0, is_distance) for v0 in base.start[key]]
        out[name] = sum(per) / len(per)
    out["clarity"] = out[CLARITY]
    return out


def score(reconstruction: torch.Tensor, image: torch.Tensor, start: torch.Tensor, model_name: str = "") -> dict:
    """Every measure of one reconstruction (3, H, W) against the image, from the given start.

    Args:
        reconstruction, image, start: (3, H, W) in [0, 1].
        model_name: the inverted model, so the judge is another one ("" takes the first judge).

    Returns:
        {measure: 0-1 for each of ORDER, each raw metric, "judge", "psnr" ...} for one image.
    """
    base = baseline(image, start.unsqueeze(0), model_name)
    m = measure(reconstruction.unsqueeze(0), base)
    return {k: (v[0] if isinstance(v, list) else v) for k, v in m.items() if not k.endswith("_per_seed")}
