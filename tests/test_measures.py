"""The measures panel (core.measures): each measure on constructed images with a known answer, the judge, and
its agreement with a person's judgement on the judged set (tests/fixtures/judged)."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.measures import CHANGES, FIXTURE, agreement, judged_scores
from core.engine.loop import start_images
from core.measures import CLARITY, MEASURES, baseline, judge_for, measure, normalise
from core.recipe.presets import DEFAULT

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`

# The judged-set agreement of `clarity` stated in BENCHMARKS.md ("Measures against the eye"): 52 of 57 when it
# was chosen. A change to a measure that scores below this fails here.
CLARITY_AGREEMENT_FLOOR = 0.90


@pytest.fixture(scope="module")
def base(chelsea64):
    return baseline(chelsea64, start_images([0], 64, DEFAULT).clamp(0, 1), "efficientnet_lite0")


def panel(img, base) -> dict:
    m = measure(img.unsqueeze(0), base)
    return {name: m[name] for name in (*MEASURES, "clarity")}


def test_the_image_scores_1_and_the_start_0_on_every_measure(chelsea64, base):
    same = panel(chelsea64, base)
    assert all(v == pytest.approx(1.0) for v in same.values()), same
    start = panel(start_images([0], 64, DEFAULT)[0].clamp(0, 1), base)
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in start.values()), start


def test_every_measure_falls_down_a_noise_ladder(chelsea64, base):
    ladder = [panel(CHANGES[f"noise {s}"][1](chelsea64), base) for s in ("0.05", "0.1", "0.2", "0.4")]
    for name in MEASURES:
        values = [p[name] for p in ladder]
        assert values == sorted(values, reverse=True) and values[0] > values[-1] + 0.2, (name, values)


def test_structure_ignores_colour_brightness_and_contrast_where_pixel_fidelity_does_not(chelsea64, base):
    for change in ("colour (RGB -> BRG)", "brightness +0.2", "contrast x0.5"):
        p = panel(CHANGES[change][1](chelsea64), base)
        assert p["structure"] >= 0.95 and p["fidelity"] < p["structure"] - 0.05, (change, p)


def test_content_survives_a_one_pixel_shift_and_a_colour_change(chelsea64, base):
    for change in ("shift 1 px", "colour (RGB -> BRG)"):
        assert panel(CHANGES[change][1](chelsea64), base)["content"] >= 0.6, change


def test_phase_scrambling_and_shuffled_patches_lose_the_content(chelsea64, base):
    kept = panel(CHANGES["shift 1 px"][1](chelsea64), base)
    for change in ("phase scrambled", "patches shuffled (8 px)"):
        lost = panel(CHANGES[change][1](chelsea64), base)
        for name in MEASURES:
            assert lost[name] <= 0.25 and lost[name] < kept[name], (change, name, lost[name])


def test_normalise_puts_the_start_at_0_and_the_image_at_1():
    assert normalise(0.4, 0.4, False) == 0.0 and normalise(1.0, 0.4, False) == 1.0
    assert normalise(0.7, 0.4, False) == pytest.approx(0.5) and normalise(0.1, 0.4, False) == 0.0  # clipped
    assert normalise(0.0, 2.0, True) == 1.0 and normalise(1.0, 2.0, True) == pytest.approx(0.5)
    assert normalise(3.0, 2.0, True) == 0.0


def test_the_judge_is_never_the_inverted_model():
    assert judge_for("efficientnet_lite0") == "efficientnet_lite2"
    assert judge_for("efficientnet_lite2") != "efficientnet_lite2"
    assert judge_for("timm:efficientnet_lite2") != "efficientnet_lite2"


def test_a_run_carries_the_whole_panel(resnet18_32, chelsea32):
    from core import get_preset, invert

    r = invert(resnet18_32, "layer1", chelsea32, [0, 1], get_preset("default", iters=20), progress=False)
    m = r.metrics
    assert m["clarity_measure"] == CLARITY and m["judge"] == judge_for("resnet18")
    assert m["clarity"] == m[CLARITY] and m["clarity_per_seed"] == m[f"{CLARITY}_per_seed"]
    for name, (key, _, _) in MEASURES.items():
        assert len(m[f"{name}_per_seed"]) == 2 and len(m[key]) == 2 and len(m[f"start_{key}"]) == 2
        assert 0.0 <= m[name] <= 1.0
    assert json.loads(json.dumps(r.to_json()))["metrics"]["content"] == m["content"]


# ------------------------------------------------------------------ the judged set


@pytest.fixture(scope="module")
def judged():
    return judged_scores(FIXTURE)


def test_the_judged_set_goes_both_ways():
    """No measure can pass by preferring one checkpoint or one depth: pairs are judged each way, and the side
    a pair stores first is not the usual answer."""
    pairs = json.loads((FIXTURE / "judgements.json").read_text())["pairs"]
    runs = json.loads((FIXTURE / "runs.json").read_text())
    decided = [p for p in pairs if p["judgement"] != "unclear"]
    winners = [runs[p[p["judgement"]]] for p in decided]
    losers = [runs[p["b" if p["judgement"] == "a" else "a"]] for p in decided]
    trained_won = sum(w["checkpoint"] == "trained" and lo["checkpoint"] == "untrained" for w, lo in zip(winners, losers))
    untrained_won = sum(w["checkpoint"] == "untrained" and lo["checkpoint"] == "trained" for w, lo in zip(winners, losers))
    assert trained_won >= 10 and untrained_won >= 8
    assert 0.3 <= sum(p["judgement"] == "a" for p in decided) / len(decided) <= 0.7
    assert any(p["judgement"] == "unclear" for p in pairs)


def test_clarity_agrees_with_the_eye_on_the_judged_set(judged):
    a = agreement(FIXTURE, judged)
    assert a[CLARITY]["share"] >= CLARITY_AGREEMENT_FLOOR, a[CLARITY]


def test_preferring_trained_or_the_earlier_stop_does_not_pass_the_judged_set(judged):
    runs = json.loads((FIXTURE / "runs.json").read_text())
    order = {"blocks.1.0": 0, "layer1": 0, "blocks.3.0": 1, "layer3": 1, "blocks.5.0": 2, "conv_head": 3, "layer4": 3}
    for name, rule in (("prefers trained", lambda r: float(r["checkpoint"] == "trained")),
                       ("prefers the earlier stop", lambda r: -order[r["layer"]])):
        fake = {rid: {CLARITY: rule(runs[rid])} for rid in judged}
        share = agreement(FIXTURE, fake, names=(CLARITY,))[CLARITY]["share"]
        assert share < CLARITY_AGREEMENT_FLOOR, (name, share)


def _pair_run(checkpoint: str, clarity: float, fidelity: float, structure: float):
    from core.engine.result import InversionResult

    m = {"converged": [True, True], "mg_over_mr": [0.5, 0.6], "embedding_l2": [0.1, 0.1], "reference_l2": 1.0}
    for name, v in (("clarity", clarity), ("fidelity", fidelity), ("structure", structure), ("content", clarity)):
        m.update({name: v, f"{name}_per_seed": [v, v]})
    return InversionResult(model="efficientnet_lite0", checkpoint=checkpoint, layer="blocks.5.0",
                           label="stage 6 block 1", size=8, preset=DEFAULT, seeds=[0, 1], device="cpu", seconds=0.1,
                           steps_done=100, stopped_early=False, original=torch.zeros(3, 8, 8),
                           images=torch.zeros(2, 3, 8, 8), embedding_shape=(1, 4), metrics=m)


def test_the_invert_sentence_says_where_the_measures_disagree():
    """The issue's coffee case: more content in trained, more pixel fidelity and structure in untrained."""
    from core.report import pair_text

    trained, untrained = _pair_run("trained", 0.16, 0.00, 0.02), _pair_run("untrained", 0.06, 0.09, 0.20)
    text = pair_text(trained, untrained, "trained", "untrained")
    assert text.startswith("At stage 6 block 1, trained keeps more of the image than untrained: clarity 0.16")
    assert ("The measures disagree: untrained is closer in pixel colour and detail and in where its brightness "
            "edges lie") in text and "the object is more recognisable in trained's" in text
    agree = pair_text(trained, _pair_run("untrained", 0.06, 0.00, 0.01), "trained", "untrained")
    assert "disagree" not in agree and "closer in" not in agree  # pixels and edges within the margin: one sentence
    same = pair_text(trained, _pair_run("untrained", 0.15, 0.30, 0.02), "trained", "untrained")
    assert "keep about as much of the image" in same and "untrained is closer in pixel colour and detail" in same
