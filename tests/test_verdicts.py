"""The findings as falsifiable tests (core.studies.verdicts) on constructed rows whose answer is known."""

from __future__ import annotations

import json
import random

import pytest

from core.studies import verdicts as V
from core.studies.verdicts.rows import fmt
from core.studies.verdicts import (
    VERDICT_FIELDS,
    evaluate,
    finding_1,
    finding_2,
    finding_3,
    finding_4,
    finding_5,
    finding_6,
    finding_7,
    is_first_conv,
    is_pooling,
    is_vit,
    spearman,
    validate,
)

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`

IMAGES = ["astronaut", "chelsea", "coffee", "horse", "rocket"]
RESNET = [("conv1", "Conv1 (before batch-norm)"), ("bn1", "Conv1 + batch-norm"), ("maxpool", "Conv1 + max-pool"),
          ("layer1", "Conv2 = layer1 (block 2)"), ("layer2", "Conv3 = layer2 (block 2)"),
          ("layer3", "Conv4 = layer3 (block 2)"), ("layer4", "Conv5 = layer4 (block 2)"), ("fc", "logits (fc)")]
VIT = [("conv_proj", "patch embedding")] + [(f"encoder.layers.encoder_layer_{i}", f"encoder block {i + 1}")
                                            for i in range(6)] + [("encoder.ln", "final layer-norm"),
                                                                  ("heads", "logits (head)")]


def row(image, stop, clarity, *, stops=RESNET, model="resnet18", checkpoint="untrained", converged=True,
        status=None, ratio=5.0, shift=2.0, **extra):
    layer, label = stops[stop]
    r = {"image": image, "model": model, "checkpoint": checkpoint, "layer": layer, "label": label,
         "depth": float(stop), "relative_depth": (stop + 1) / len(stops), "clarity": clarity, "ssim_mean": clarity,
         "input_l2_mean": ratio * shift, "embedding_l2_mean": 0.5, "reference_l2": 1.0, "shift_input_l2": shift,
         "seed_spread_input": ratio * shift * 0.8, "converged": converged,
         "status": status or ("converged" if converged else "not converged"), "error": None}
    r.update(extra)
    return r


def curve(fn, images=IMAGES, stops=RESNET, **kw):
    """A row per image and stop with clarity fn(image index, stop index)."""
    return [row(img, s, fn(i, s), stops=stops, **kw) for i, img in enumerate(images) for s in range(len(stops))]


def falling(i, s):
    return 1.0 - 0.1 * s - 0.01 * i


def accounted(v, rows):
    """Every row of the scope is used or left out with a reason."""
    return v.n + sum(v.left_out.values()) == len(rows)


# --------------------------------------------------------------------------- finding 1


def test_f1_falling_curve_holds():
    rows = curve(falling)
    v = finding_1(rows)
    assert v.verdict == "holds" and v.value == pytest.approx(-1.0) and v.ci[1] < 0
    assert v.n == len(rows) and v.left_out == {} and v.model == "resnet18" and v.checkpoint == "untrained"


def test_f1_flat_and_rising_do_not_hold():
    assert finding_1(curve(lambda i, s: 0.5)).verdict == "does not hold"  # no trend: rho 0, CI (0, 0)
    v = finding_1(curve(lambda i, s: 0.2 + 0.1 * s))
    assert v.verdict == "does not hold" and v.ci[0] >= 0


def test_f1_ci_straddling_zero_is_inconclusive():
    v = finding_1(curve(lambda i, s: falling(i, s) if i % 2 else 0.2 + 0.1 * s))
    assert v.verdict == "inconclusive" and v.ci[0] < 0 < v.ci[1] and "straddles" in v.why


def test_f1_too_few_converged_is_inconclusive_and_counted():
    rows = curve(falling)
    for r in rows:  # only astronaut keeps 3+ converged stops; the others keep 2
        if r["image"] != "astronaut" and r["depth"] >= 2:
            r["converged"], r["status"] = False, "not converged"
    v = finding_1(rows)
    assert v.verdict == "inconclusive" and "only 1 image" in v.why
    assert v.left_out["not converged"] == 4 * 6 and v.left_out["image with fewer than 3 converged stops"] == 4 * 2
    assert v.n == len(RESNET) and accounted(v, rows)


def test_f1_unconverged_rows_never_count():
    good = curve(falling)
    bad = [row(img, s, 1.0, converged=False) for img in IMAGES for s in (5, 6, 7)]  # would make the curve rise
    bad += [row("chelsea", 7, 1.0, converged=False, status="borderline"),
            row("coffee", 7, 1.0, converged=True, status="degenerate"),
            row("horse", 7, float("nan"), converged=False, status="error", error="out of memory")]
    v = finding_1(good + bad)
    assert v.verdict == "holds" and v.value == pytest.approx(-1.0)
    assert v.left_out == {"not converged": 15, "borderline": 1, "degenerate": 1, "error": 1}
    assert v.n == len(good) and accounted(v, good + bad)


def test_f1_ci_is_deterministic_whatever_the_row_order():
    rows = curve(lambda i, s: falling(i, s) + (0.3 * s if i == 2 else 0) + 0.02 * ((i * s) % 3))
    a = finding_1(rows)
    shuffled = rows[:]
    random.Random(4).shuffle(shuffled)
    b = finding_1(shuffled)
    assert a.ci == b.ci == finding_1(rows).ci and a.value == b.value


def test_f1_reads_one_model_only():
    rows = curve(falling) + curve(falling, model="vgg16")
    with pytest.raises(ValueError, match="several models"):
        finding_1(rows)
    assert finding_1(rows, "vgg16").n == len(IMAGES) * len(RESNET)


def test_spearman_ties_and_flat():
    assert spearman([0, 1, 2, 3], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([0, 1, 2], [1, 1, 1]) == 0.0
    assert spearman([0, 1, 2, 3], [1, 1, 2, 2]) == pytest.approx(0.894, abs=1e-3)


# --------------------------------------------------------------------------- finding 2


def test_f2_exact_conv_then_pool_loss_holds():
    v = finding_2(curve(lambda i, s: 0.97 - 0.005 * i if s < 2 else 0.6 - 0.1 * s))
    assert v.verdict == "holds" and v.value == pytest.approx(0.96)
    assert v.evidence["conv"]["layer"] == "conv1" and v.evidence["pool"]["layer"] == "maxpool"
    assert v.evidence["pool"]["verdict"] == "holds" and v.n == 2 * len(IMAGES)


def test_f2_blurry_conv_does_not_hold():
    v = finding_2(curve(lambda i, s: 0.7 - 0.05 * s))
    assert v.verdict == "does not hold" and "first-conv part does not hold" in v.why


def test_f2_without_pool_or_conv_stop_is_inconclusive():
    lite = [("conv_stem", "stem conv"), ("bn1", "stem conv + BN + ReLU6"), ("blocks.0.0", "stage 1 block 1"),
            ("global_pool", "global average pool"), ("classifier", "logits")]
    v = finding_2(curve(falling, stops=lite, model="efficientnet_lite0"))
    assert v.verdict == "inconclusive" and "pooling" in v.why and v.n == 0
    blocks = [(f"b{i}", f"stage 1 block {i}") for i in range(4)]
    assert "first-convolution" in finding_2(curve(falling, stops=blocks)).why


def test_f2_kinds_decide_when_given():
    stops = [("a", "first"), ("b", "second"), ("c", "third")]
    kinds = {"a": "Conv2d", "b": "ReLU", "c": "MaxPool2d"}
    rows = [dict(r, kind=kinds[r["layer"]]) for r in curve(lambda i, s: 0.98 if s < 2 else 0.5, stops=stops)]
    v = finding_2(rows)
    assert v.verdict == "holds" and v.evidence["conv"]["layer"] == "a" and v.evidence["pool"]["layer"] == "c"


def test_stop_kinds_from_names():
    assert is_first_conv({"layer": "conv1", "label": "Conv1 (before batch-norm)"})
    assert not is_first_conv({"layer": "maxpool", "label": "Conv1 + max-pool"})
    assert is_pooling({"layer": "maxpool", "label": "Conv1 + max-pool"})
    assert is_pooling({"layer": "features.4", "label": "downsample 1->2"})
    assert not is_pooling({"layer": "avgpool", "label": "global average pool"})
    assert not is_pooling({"layer": "global_pool", "label": "global average pool"})
    assert not is_first_conv({"layer": "conv_proj", "label": "patch embedding"})
    assert is_first_conv({"layer": "features.1", "label": "conv1 + ReLU"})


# --------------------------------------------------------------------------- finding 3


def test_f3_converged_and_far_holds():
    rows = curve(falling, ratio=5.0)
    v = finding_3(rows)
    assert v.verdict == "holds" and v.value == pytest.approx(5.0) and v.ci[0] >= 3
    assert v.n == len(IMAGES) and v.evidence["converged_fraction"] == 1.0 and accounted(v, rows)
    assert v.left_out["outside the last third of depth"] == len(IMAGES) * 5


def test_f3_near_copies_do_not_hold_and_between_is_inconclusive():
    assert finding_3(curve(falling, ratio=1.1)).verdict == "does not hold"
    assert finding_3(curve(falling, ratio=2.2)).verdict == "inconclusive"


def test_f3_deepest_converged_stop_per_image():
    rows = [r for r in curve(falling, ratio=5.0)]
    for r in rows:
        if r["layer"] == "fc":
            r["converged"] = False  # fc not converged: layer4 is the deepest converged deep stop
        if r["layer"] == "layer4":
            r["input_l2_mean"] = 1.0 * r["shift_input_l2"]
    v = finding_3(rows)
    assert v.value == pytest.approx(1.0) and v.verdict == "does not hold"  # 10 of 15 deep runs converged
    assert v.evidence["converged_fraction"] == pytest.approx(2 / 3, abs=1e-4) and v.left_out["not converged"] == len(IMAGES)


def test_f3_optimiser_failure_is_inconclusive():
    rows = curve(falling, ratio=5.0)
    for r in rows:
        if r["relative_depth"] >= 2 / 3 and r["image"] != "astronaut":
            r["converged"] = False
    v = finding_3(rows)
    assert v.verdict == "inconclusive" and "optimiser failed" in v.why
    assert v.left_out["not converged"] == 4 * 3


def test_f3_without_shift_is_inconclusive():
    rows = curve(falling)
    for r in rows:
        r.pop("shift_input_l2")
    v = finding_3(rows)
    assert v.verdict == "inconclusive" and v.left_out["no m_i or ||a'-a||_2"] == len(IMAGES) * 3


# --------------------------------------------------------------------------- finding 4

STAGES = [("conv_stem", "stem conv"), ("blocks.1.0", "stage 2 block 1"), ("blocks.2.0", "stage 3 block 1"),
          ("blocks.4.0", "stage 5 block 1"), ("blocks.5.0", "stage 6 block 1"), ("classifier", "logits")]


def two(early_delta, late_delta, noise=0.01, late_pixel=lambda s: -0.1, pixels=True):
    """Untrained falling curve; trained = untrained + early_delta at relative depth <= 1/3, + late_delta at >= 2/3.
    Pixel fidelity follows clarity, except trained's at the late stops: untrained's + late_pixel (no fidelity
    column at all with pixels=False: rows from before the measures panel)."""
    rows = curve(falling, stops=STAGES, model="efficientnet_lite0")
    for r in rows:
        r["fidelity"] = r["clarity"]
    for i, img in enumerate(IMAGES):
        for s in range(len(STAGES)):
            rd = (s + 1) / len(STAGES)
            late = rd >= 2 / 3 - 1e-9
            d = early_delta(s) if rd <= 1 / 3 + 1e-9 else (late_delta(s) if late else 0.3)
            r = row(img, s, falling(i, s) + d + noise * (i - 2), stops=STAGES, model="efficientnet_lite0",
                    checkpoint="trained")
            r["fidelity"] = falling(i, s) + late_pixel(s) + noise * (i - 2) if late else r["clarity"]
            rows.append(r)
    if not pixels:
        for r in rows:
            del r["fidelity"]
    return rows


def test_f4_both_parts_hold():
    """Early stops clearer; late stops abstract: less pixel fidelity than untrained, the content gained."""
    v = finding_4(two(lambda s: 0.2, lambda s: 0.1))
    assert v.verdict == "holds" and v.evidence["early"]["verdict"] == v.evidence["late"]["verdict"] == "holds"
    assert v.evidence["late"]["pixel"]["value"] == pytest.approx(-0.1) and v.evidence["late"]["kept"]["verdict"] == "holds"
    assert v.value == pytest.approx(0.2) and v.checkpoint == "trained vs untrained"
    assert v.left_out == {"middle third of depth": 2 * len(IMAGES)}


def test_f4_content_kept_within_the_margin_is_still_abstract():
    v = finding_4(two(lambda s: 0.2, lambda s: -0.02))
    assert v.evidence["late"]["verdict"] == "holds" and v.verdict == "holds"


def test_f4_early_fails_and_names_the_stop():
    v = finding_4(two(lambda s: 0.05 if s == 0 else -0.3, lambda s: 0.1))
    assert v.verdict == "does not hold" and v.evidence["early"]["verdict"] == "does not hold"
    assert v.why.startswith("early part does not hold") and "stage 2 block 1" in v.why and "-0.30" in v.why
    assert "late" not in v.why  # the late part holds: the why names only what fails


def test_f4_late_fails_when_the_pixels_are_clearer():
    v = finding_4(two(lambda s: 0.2, lambda s: 0.2, late_pixel=lambda s: 0.2))
    assert v.verdict == "does not hold" and v.evidence["late"]["verdict"] == "does not hold"
    assert v.evidence["late"]["pixel"]["verdict"] == "does not hold"
    assert "late part (abstract images) does not hold" in v.why and "above 0" in v.why


def test_f4_late_fails_when_the_content_is_lost():
    v = finding_4(two(lambda s: 0.2, lambda s: -0.3))
    assert v.evidence["late"]["verdict"] == "does not hold" and v.evidence["late"]["kept"]["verdict"] == "does not hold"
    assert v.evidence["late"]["pixel"]["verdict"] == "holds" and "lost" in v.why


def test_f4_late_straddling_is_inconclusive():
    v = finding_4(two(lambda s: 0.2, lambda s: 0.1, noise=0.05, late_pixel=lambda s: 0.0))
    assert v.verdict == "inconclusive" and v.evidence["late"]["verdict"] == "inconclusive" and "late" in v.why
    # the headline value is the early part's (+0.20): the why says that part holds, after what decides
    assert v.why.startswith("late part (abstract images) is inconclusive") and "early part holds" in v.why
    assert "+0.20" in v.why and v.value == pytest.approx(0.2)


def test_f4_rows_without_pixel_fidelity_leave_the_late_part_inconclusive():
    v = finding_4(two(lambda s: 0.2, lambda s: 0.1, pixels=False))
    assert v.evidence["early"]["verdict"] == "holds" and v.evidence["late"]["verdict"] == "inconclusive"
    assert "pixel fidelity" in v.why


def test_findings_on_the_curve_are_stated_under_each_measure():
    """Clarity falls with depth, pixel fidelity rises: finding 1 holds under clarity only, and says so."""
    rows = curve(falling)
    for r in rows:
        r["fidelity"] = 1.0 - r["clarity"]
        r["structure"] = r["clarity"]
    v = next(x for x in evaluate(rows) if x.id == "1")
    by = v.evidence["by_measure"]
    assert set(by) == {"clarity", "fidelity", "structure"}
    assert by["clarity"]["verdict"] == by["structure"]["verdict"] == "holds" == v.verdict
    assert by["fidelity"]["verdict"] == "does not hold" and by["fidelity"]["value"] > 0
    assert v.why.endswith("Under each measure: holds under clarity (recognisable content) and structure; "
                          "does not hold under pixel fidelity.")
    assert validate(v.to_dict())


def test_a_tiny_effect_prints_with_three_decimals():
    assert fmt(-0.0012, (-0.0031, 0.0009), True) == "-0.001 [-0.003, +0.001]"
    assert fmt(-0.12, (-0.15, -0.0009), True) == "-0.12 [-0.15, -0.00]"
    assert fmt(0.5) == "0.50" and fmt(float("nan")) == "n/a"


def test_f4_unpaired_rows_are_left_out():
    rows = two(lambda s: 0.2, lambda s: 0.1)
    for r in rows:
        if r["checkpoint"] == "trained" and r["image"] == "chelsea":
            r["converged"] = False
    v = finding_4(rows)
    assert v.left_out["not converged"] == len(STAGES)
    assert v.left_out["no converged partner at the other checkpoint"] == len(STAGES)
    assert v.evidence["paired_images"] == 4 and accounted(v, rows) and v.verdict == "holds"


# --------------------------------------------------------------------------- finding 5


def manifold(delta):
    rows = []
    for i, kind in enumerate(["noise", "gaussian", "disc", "stripes"]):
        for layer in ("blocks.5.0", "conv_head"):
            for ck, nat in (("untrained", 0.2 + 0.01 * i), ("trained", 0.2 + 0.01 * i + delta + 0.01 * (i % 2))):
                rows.append({"input_kind": kind, "checkpoint": ck, "layer": layer, "naturalness": nat,
                             "converged": True, "status": "converged"})
    return rows


def test_f5_holds_fails_inconclusive():
    assert finding_5(manifold(0.3)).verdict == "holds"
    assert finding_5(manifold(-0.3)).verdict == "does not hold"
    v = finding_5([])
    assert v.verdict == "inconclusive" and v.n == 0
    rows = manifold(0.3) + [{"input_kind": "natural", "checkpoint": "trained", "layer": "conv_head",
                             "naturalness": 9.0, "converged": True}]
    rows[0]["converged"] = False
    v = finding_5(rows)
    assert v.left_out == {"natural input": 1, "not converged": 1, "no converged partner at the other checkpoint": 1}
    assert accounted(v, rows)


# --------------------------------------------------------------------------- finding 6


def lab(unique):
    rows = []
    for act in ("relu", "linear", "tanh"):
        for w in (0.5, 1.0, 1.25, 2.0, 4.0):
            rows.append({"width_ratio": w, "activation": act, "unique": unique(act, w), "converged": True})
    return rows


def paper(act, w):
    return w >= 2 if act == "relu" else w >= 1


def test_f6_paper_answer_holds():
    v = finding_6(lab(paper))
    assert v.verdict == "holds" and v.value == 1.0 and v.evidence["narrow"] == {"runs": 3, "unique": 0,
                                                                                "verdict": "holds",
                                                                                "rank_deficient": 0}


def test_f6_narrow_unique_does_not_hold_and_missing_inconclusive():
    v = finding_6(lab(lambda act, w: True))
    assert v.verdict == "does not hold" and "width ratio < 1" in v.why
    v = finding_6([r for r in lab(paper) if r["width_ratio"] < 2])
    assert v.verdict == "inconclusive" and "no converged ReLU runs at width ratio >= 2" in v.why
    rows = lab(paper) + [{"width_ratio": 0.5, "activation": "relu", "unique": True, "converged": False}]
    v = finding_6(rows)
    assert v.verdict == "holds" and v.left_out["not converged"] == 1 and accounted(v, rows)


def test_f6_a_rank_deficient_jacobian_proves_non_uniqueness_without_a_converged_run():
    wide = [r for r in lab(paper) if not (r["activation"] == "relu" and r["width_ratio"] < 1.5)]
    stuck = [{"width_ratio": w, "activation": "relu", "unique": False, "converged": False} for w in (0.5, 1.0)]
    v = finding_6(wide + stuck)  # the narrow ReLU runs did not converge: no evidence for part (b) ...
    assert v.verdict == "inconclusive" and "width ratio < 1.5" in v.why
    proved = [{**r, "rank_deficient": True} for r in stuck]
    v = finding_6(wide + proved)  # ... until their Jacobians' rank deficit proves it
    assert v.verdict == "holds" and v.evidence["relu_narrow"]["rank_deficient"] == 2 and accounted(v, wide + proved)
    lying = [{**r, "unique": True, "converged": True, "rank_deficient": True} for r in stuck]
    assert finding_6(wide + lying).evidence["relu_narrow"]["unique"] == 0  # the exact rank outranks a clarity


def test_f6_the_rank_proof_does_not_count_in_the_wide_group():
    # Unconverged wide ReLU runs say nothing, even rank-deficient ones: counting them would add only "not unique"
    # while the unconverged full-rank runs stay out, tilting the wide group's fraction against the finding.
    wide = [{"width_ratio": w, "activation": "relu", "unique": False, "converged": False, "rank_deficient": True}
            for w in (2.0, 2.0, 4.0, 4.0, 4.0)]
    rows = lab(paper) + wide
    v = finding_6(rows)
    assert v.verdict == "holds" and v.evidence["relu_wide"] == {"runs": 2, "unique": 2, "verdict": "holds",
                                                                "rank_deficient": 0}
    assert v.left_out["not converged"] == 5 and accounted(v, rows)


def test_f6_clarity_stands_in_for_unique():
    rows = [{"width_ratio": r["width_ratio"], "activation": r["activation"], "converged": True,
             "clarity": 0.99 if r["unique"] else 0.6} for r in lab(paper)]
    assert finding_6(rows).verdict == "holds"


# --------------------------------------------------------------------------- finding 7


def vit_rows(block, pe=0.5, **kw):
    return curve(lambda i, s: pe if s == 0 else (block(i, s) if s <= 6 else 0.1), stops=VIT, model="vit_b_16", **kw)


def test_f7_flat_blocks_loss_at_patch_embedding_holds():
    v = finding_7(vit_rows(lambda i, s: 0.47 - 0.005 * s + 0.002 * i))
    assert v.verdict == "holds" and v.value == pytest.approx(0.025, abs=1e-6)
    assert v.evidence["flat"]["verdict"] == v.evidence["drop"]["verdict"] == "holds"
    assert v.n == len(IMAGES) * 7 and v.left_out == {"not the patch embedding or a block": len(IMAGES) * 2}


def test_f7_falling_blocks_do_not_hold():
    v = finding_7(vit_rows(lambda i, s: 0.95 - 0.12 * s, pe=0.98))
    assert v.verdict == "does not hold" and v.evidence["flat"]["verdict"] == "does not hold"
    assert v.evidence["drop"]["verdict"] == "does not hold" and "flat part does not hold" in v.why


def test_f7_needs_patch_embedding_and_every_block():
    rows = [r for r in vit_rows(lambda i, s: 0.47) if r["layer"] != "conv_proj"]
    v = finding_7(rows)
    assert v.verdict == "inconclusive" and "patch-embedding" in v.why
    rows = vit_rows(lambda i, s: 0.47)
    for r in rows:
        if r["image"] != "astronaut" and r["label"] == "encoder block 3":
            r["converged"] = False
    v = finding_7(rows)
    assert v.verdict == "inconclusive" and "only 1 image" in v.why and v.evidence["drop"]["verdict"] == "holds"


# --------------------------------------------------------------------------- evaluate and validate


def test_evaluate_picks_the_findings_the_rows_allow():
    untrained = curve(falling)
    assert [v.id for v in evaluate(untrained)] == ["1", "2", "3"]
    trained = curve(lambda i, s: falling(i, s) + 0.1, checkpoint="trained")
    both = [(v.id, v.checkpoint) for v in evaluate(untrained + trained)]
    assert both == [("1", "untrained"), ("2", "untrained"), ("3", "trained"), ("3", "untrained"),
                    ("4", "trained vs untrained")]
    assert [v.id for v in evaluate(trained)] == ["3"]  # no 1, 2 or 4 without the untrained checkpoint
    vit = vit_rows(lambda i, s: 0.47)
    out = evaluate(untrained + vit)
    assert [(v.model, v.id) for v in out] == [("resnet18", "1"), ("resnet18", "2"), ("resnet18", "3"),
                                              ("vit_b_16", "1"), ("vit_b_16", "3"), ("vit_b_16", "7")]
    assert [v.id for v in evaluate(untrained + vit, models=["vit_b_16"])] == ["1", "3", "7"]
    renamed = [dict(r, model="mystery") for r in vit]  # a ViT by its stops, not its name
    assert is_vit("mystery", renamed) and "7" in [v.id for v in evaluate(renamed)]
    with pytest.raises(ValueError, match="no rows of"):
        evaluate(untrained, models=["nope"])
    mixed = evaluate(untrained + manifold(0.3) + lab(paper))
    assert [v.id for v in mixed][-2:] == ["5", "6"]


def test_to_dict_validates_and_is_json():
    rows = curve(falling) + curve(lambda i, s: falling(i, s) + 0.1, checkpoint="trained") + vit_rows(lambda i, s: .4)
    every = evaluate(rows + manifold(0.3) + lab(paper)) + [finding_5([]), finding_2(curve(falling, stops=VIT[1:]))]
    for v in every:
        d = validate(v.to_dict())
        assert tuple(d) == VERDICT_FIELDS and d["verdict"] in V.VERDICTS
    json.loads(json.dumps([v.to_dict() for v in every], allow_nan=False))
    d = every[0].to_dict()
    for broken in ({k: x for k, x in d.items() if k != "why"}, dict(d, n="3"), dict(d, verdict="maybe"),
                   dict(d, ci=[1.0]), dict(d, value=float("nan")), dict(d, left_out={"x": -1})):
        with pytest.raises(ValueError, match="not a verdict"):
            validate(broken)
    with pytest.raises(ValueError, match="missing field 'why'"):
        validate({k: x for k, x in d.items() if k != "why"})


def test_one_pair_says_what_finding_4_claims_at_its_depth_and_whether_it_agrees():
    from core.studies import pair_claim

    def run(clarity, fidelity=0.5, converged=True):
        return {"clarity": clarity, "fidelity": fidelity, "converged": converged}

    early = pair_claim(run(0.94), run(0.88), 0.2)  # the example: trained keeps less at stage 1
    assert early.part == "early" and early.agrees is False
    assert "clearer" in early.text and "disagrees" in early.text and "clarity (recognisable content) 0.88" in early.text
    assert pair_claim(run(0.5), run(0.7), 0.3).agrees is True
    late = pair_claim(run(0.07, fidelity=0.4), run(0.54, fidelity=0.3), 0.9)  # abstract: content kept, pixels not
    assert late.part == "late" and late.agrees is True and "pixel fidelity 0.30" in late.text
    assert pair_claim(run(0.07, fidelity=0.3), run(0.54, fidelity=0.4), 0.9).agrees is False  # closer in pixels
    assert pair_claim(run(0.5), run(0.3), 0.9).agrees is False  # the content lost
    middle = pair_claim(run(0.5), run(0.6), 0.5)
    assert middle.part is None and middle.agrees is None and "in neither" in middle.text
    lame = pair_claim(run(0.5), run(0.6, converged=False), 0.1)
    assert lame.agrees is None and "trained run did not converge" in lame.text
    assert pair_claim(run(0.5), run(0.6), None).agrees is None
    assert pair_claim(run(0.5, fidelity=None), run(0.6), 0.9).agrees is None


def test_a_curve_says_how_many_of_its_early_and_late_stops_side_with_finding_4():
    from core.studies import curve_claim

    def run(clarity, fidelity=0.5, converged=True):
        return {"clarity": clarity, "fidelity": fidelity, "converged": converged}

    pairs = [(0.1, run(0.5), run(0.7)), (0.2, run(0.6), run(0.5)), (0.3, run(0.5), run(0.6, converged=False)),
             (0.5, run(0.4), run(0.3)),  # the middle third: in neither part
             (0.9, run(0.1, fidelity=0.4), run(0.5, fidelity=0.3)), (1.0, run(0.1, fidelity=0.4), run(0.4, fidelity=0.2))]
    text = curve_claim(pairs)
    assert "early layers' reconstructions clearer: this image is split (1 of 2 early stops; 1 not converged)" in text
    assert "abstract images (no closer in pixels, the content kept): this image agrees (2 of 2 late stops)" in text
    assert "clarity (recognisable content)" in text
    assert curve_claim([(0.5, run(0.4), run(0.3))]) is None
    assert "this image disagrees (0 of 1 early stops)" in curve_claim([(0.1, run(0.6), run(0.5))])
