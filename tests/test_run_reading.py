"""The reading of a run (core/engine/run_reading.py) on constructed metrics: the uniqueness band on
mean(m_i) / ‖a′−a‖₂, its borders, and the readings it leaves alone (degenerate, borderline, not converged)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from core.engine.result import InversionResult, Metrics
from core.engine.run_reading import KEEPS_FIDELITY, NEAR_COPY, NON_UNIQUE, reading, status, uniqueness
from core.recipe.presets import DEFAULT

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`

SHIFT = 4.0  # ‖a′−a‖₂ (a power of two: ratio * SHIFT / SHIFT is exact)
EPS = 1e-6


def metrics(ratio: float | list[float], clarity: float = 0.5, mg_over_mr: float | list[float] = 0.5,
            degenerate: bool = False, k: int = 2, fidelity: float = 0.5) -> Metrics:
    """Metrics of a k-seed run whose m_i / ‖a′−a‖₂ is `ratio` (one value for every seed, or one per seed)."""
    ratios = ratio if isinstance(ratio, list) else [ratio] * k
    mgr = mg_over_mr if isinstance(mg_over_mr, list) else [mg_over_mr] * len(ratios)
    return Metrics(
        input_l2=[r * SHIFT for r in ratios], embedding_l2=[v * 2.0 for v in mgr],
        reference_l2=0.0 if degenerate else 2.0, shift_input_l2=SHIFT, degenerate=degenerate,
        converged=[True] * len(mgr) if degenerate else [v <= 1 for v in mgr], mg_over_mr=None if degenerate else mgr,
        clarity=clarity, clarity_per_seed=[clarity] * len(ratios), ssim=[0.5] * len(ratios), budget=400,
        fidelity=fidelity, clarity_measure="content")


def run(m: Metrics, stopped_early: bool = False):
    return SimpleNamespace(metrics=m, preset=DEFAULT, steps_done=120, stopped_early=stopped_early)


def test_near_copy_keeps_the_image():
    m = metrics(1.0)
    assert uniqueness(m) == "keeps the image"
    text = reading(run(m))
    assert "keeps the image" in text and "non-unique" not in text and "m_i ≈ 1.0 × ‖a′−a‖₂" in text


def test_the_reported_cell_is_no_longer_non_unique():
    """Converged, SSIM 0.89, m_i 1.4 × ‖a′−a‖₂: it read "m_i ≈ 1 × ‖a′−a‖₂: non-unique" (1.4 rounded to 1)."""
    m = metrics(1.4, clarity=0.7)
    assert uniqueness(m) == "keeps the image"
    text = reading(run(m))
    assert "non-unique" not in text and "1.4 ×" in text


def test_clear_non_unique():
    m = metrics(8.0)
    assert uniqueness(m) == "non-unique"
    text = reading(run(m))
    assert "non-unique" in text and "m_i ≈ 8.0 × ‖a′−a‖₂" in text and "cannot tell them apart" in text
    assert "m_i ≈ 23 ×" in reading(run(metrics(23.0)))  # whole from 10 on


def test_borderline_between_the_two():
    m = metrics(2.2)
    assert uniqueness(m) == "borderline"
    text = reading(run(m))
    assert "borderline" in text.lower() and "non-unique" in text and "more seeds or more steps decide" in text
    assert "m_i ≈ 2.2 ×" in text and "keeps the image." not in text


@pytest.mark.parametrize("ratio, expected", [
    (NEAR_COPY - EPS, "keeps the image"),
    (NEAR_COPY, "keeps the image"),  # inclusive
    (NEAR_COPY + EPS, "borderline"),
    (NON_UNIQUE - EPS, "borderline"),
    (NON_UNIQUE, "non-unique"),  # inclusive
    (NON_UNIQUE + EPS, "non-unique"),
])
def test_band_borders(ratio, expected):
    m = metrics(ratio)
    assert uniqueness(m) == expected
    text = reading(run(m))
    assert ("keeps the image." in text) == (expected == "keeps the image")
    assert ("more seeds or more steps decide" in text) == (expected == "borderline")
    assert ("cannot tell them apart" in text) == (expected == "non-unique")


def test_printed_ratio_never_rounds_onto_an_edge_it_is_not_on():
    assert "m_i ≈ 1.53 ×" in reading(run(metrics(1.53)))  # borderline, not "1.5" (the near-copy edge)
    assert "m_i ≈ 2.97 ×" in reading(run(metrics(2.97)))  # borderline, not "3.0" (the non-unique edge)
    assert "m_i ≈ 1.5 ×" in reading(run(metrics(NEAR_COPY)))
    assert "m_i ≈ 3.0 ×" in reading(run(metrics(NON_UNIQUE)))


def test_the_ratio_is_the_mean_over_seeds():
    assert uniqueness(metrics([1.0, 2.0])) == "keeps the image"  # mean 1.5
    assert uniqueness(metrics([1.0, 2.2])) == "borderline"  # mean 1.6
    assert uniqueness(metrics([1.0, 5.0])) == "non-unique"  # mean 3.0


def test_pixel_fidelity_from_0_9_keeps_the_image_whatever_the_ratio():
    assert uniqueness(metrics(5.0, fidelity=KEEPS_FIDELITY)) == "keeps the image"
    assert uniqueness(metrics(5.0, fidelity=0.95)) == "keeps the image"
    assert uniqueness(metrics(5.0, fidelity=KEEPS_FIDELITY - 0.001)) == "non-unique"
    text = reading(run(metrics(5.0, fidelity=0.93)))
    assert "keeps the image" in text and "pixel fidelity 0.93" in text


def test_recognisable_content_alone_is_not_a_copy():
    """Clarity (recognisable content) near 1 with pixels far from the image is a non-unique answer, not a copy."""
    assert uniqueness(metrics(5.0, clarity=0.97, fidelity=0.2)) == "non-unique"


def test_results_from_before_the_panel_read_clarity_as_pixel_fidelity():
    old = Metrics(**{**metrics(5.0).to_dict(), "clarity": 0.93, "fidelity": None, "clarity_measure": None})
    assert uniqueness(old) == "keeps the image"


def test_degenerate_and_unconverged_readings_are_unaffected():
    """No uniqueness before convergence; the words are the ones the reading always had."""
    deg = metrics(8.0, degenerate=True)
    assert status(deg) == "degenerate" and uniqueness(deg) is None
    assert reading(run(deg)).startswith("Degenerate layer: a near-copy of the image lands at the same embedding")
    border = metrics(8.0, mg_over_mr=1.1)
    assert status(border) == "borderline" and uniqueness(border) is None
    assert reading(run(border)) == ("Borderline: the worst seed's m_g is 1.10 × m_r, close to a near-copy's distance; "
                                    "continue the run to be sure before reading the picture as the layer's answer.")
    far = metrics(1.0, mg_over_mr=2.0)
    assert status(far) == "not converged" and uniqueness(far) is None
    assert reading(run(far)) == ("Not converged: m_g ≈ 2.0 × m_r (a near-copy's distance); this picture is the "
                                 "optimiser's, not the layer's answer — continue or raise iterations.")
    some = metrics(8.0, mg_over_mr=[0.5, 3.0])
    assert uniqueness(some) is None
    assert reading(run(some)).startswith("1 of 2 seeds matched the embedding like a near-copy")
    assert reading(run(far, stopped_early=True)).startswith("Stopped at step 120 of 400. Not converged")


def test_reading_and_uniqueness_agree_everywhere():
    for r in [x / 20 for x in range(0, 240)]:
        u = uniqueness(metrics(r))
        text = reading(run(metrics(r)))
        assert ("cannot tell them apart" in text) == (u == "non-unique")
        assert ("keeps the image." in text) == (u == "keeps the image")


def test_without_m_i_there_is_no_uniqueness():
    m = metrics(1.0)
    m.input_l2 = None
    with pytest.raises(ValueError):
        uniqueness(m)


def test_result_json_verdict_is_the_reading():
    m = metrics(2.2)
    res = InversionResult(model="resnet18", checkpoint="untrained", layer="layer2", label="layer2", size=8,
                          preset=DEFAULT, seeds=[0, 1], device="cpu", seconds=0.1, steps_done=120,
                          stopped_early=False, original=torch.zeros(3, 8, 8), images=torch.zeros(2, 3, 8, 8),
                          embedding_shape=(1, 4), metrics=m)
    verdict = res.to_json()["verdict"]
    assert verdict == reading(res) and "more seeds or more steps decide" in verdict
    res.metrics.input_l2 = None  # a hand-made result without m_i: no verdict rather than a wrong one
    assert res.to_json()["verdict"] is None
