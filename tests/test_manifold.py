"""Finding 5 (core/studies/manifold.py, core/cli/manifold.py, pages/5_manifold.py): generated inputs, descriptors on known
signals, the CLI end to end on tiny settings, and the page through AppTest."""

from __future__ import annotations

import json

import pytest
import torch

from app_helpers import _cache_dir, app, errors, ok  # noqa: F401  (_cache_dir: autouse fixture)
from core.report import manifold as mf_report
from core.studies import manifold as mf
from core.errors import UserError


@pytest.fixture(scope="module")
def describer64():
    return mf.Describer("efficientnet_lite0", 64)


def test_generated_inputs_are_deterministic_and_in_range():
    for kind in mf.KINDS:
        a, b = mf.make_input(kind, 48, seed=3), mf.make_input(kind, 48, seed=3)
        assert a.shape == (3, 48, 48) and a.dtype == torch.float32
        assert torch.equal(a, b), kind
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0, kind
    assert not torch.equal(mf.make_input("noise", 32, 0), mf.make_input("noise", 32, 1))
    assert torch.equal(mf.make_input("disc", 32, 0), mf.make_input("disc", 32, 1))  # shapes ignore the seed
    assert float(mf.make_input("flat", 16).std(dim=(1, 2)).max()) == 0.0
    checker = mf.make_input("checker", 64)
    assert abs(float(checker.mean()) - 0.5) < 1e-6 and set(checker.unique().tolist()) == {0.0, 1.0}
    assert mf.expand_inputs("noise,shapes,disc") == ["noise", "disc", "stripes", "checker"]
    assert mf.expand_inputs("all") == list(mf.KINDS)


def test_inputs_from_paths_and_uploads(chelsea_path):
    got = mf.load_inputs(["flat", str(chelsea_path)], 32, uploads={"mine.png": chelsea_path.read_bytes()})
    assert list(got) == ["flat", "chelsea", "mine"] and all(t.shape == (3, 32, 32) for t in got.values())
    with pytest.raises(UserError, match="unknown input 'bogus'"):
        mf.load_inputs("bogus", 32)
    with pytest.raises(UserError, match="unknown input kind"):
        mf.make_input("triangle", 32)


def test_spectral_slope_on_known_signals():
    from core.images import load_image, sample_images

    for n in (64, 224):
        white = [mf.spectral_slope(mf.make_input("noise", n, s)) for s in range(3)]
        pink = [mf.spectral_slope(mf.pink_noise(n, 2.0, s)) for s in range(3)]
        one_f = [mf.spectral_slope(mf.pink_noise(n, 1.0, s)) for s in range(3)]
        assert all(abs(s) < 0.25 for s in white), white  # white noise: flat spectrum
        assert all(abs(s - 2) < 0.3 for s in pink), pink  # power ~ 1/f^2
        assert all(abs(s - 1) < 0.3 for s in one_f), one_f  # power ~ 1/f
    natural = [mf.spectral_slope(load_image(p, 64)) for p in sample_images().values()]
    assert all(1.5 < s < 3.0 for s in natural), natural  # natural photos: between noise and a hard edge (disc ~3)
    assert mf.spectral_slope(mf.make_input("flat", 64)) is None  # nothing to fit
    assert mf.spectral_slope(mf.make_input("disc", 64)) > max(natural)  # one sharp edge: power ~ 1/f^3


def test_descriptors_validate_on_the_sample_photos(describer64):
    v = mf.validate(64, describer64)
    assert set(v["natural"]) == {"astronaut", "chelsea", "coffee", "rocket"} and set(v["generated"]) == set(mf.KINDS)
    slope, bn = v["descriptors"]["spectral_slope"], v["descriptors"]["bn_distance"]
    assert slope["auc_noise"] == 1.0 and slope["undefined_for"] == ["flat"]
    lo, hi = slope["natural_range"]
    assert lo < hi and not {"noise", "gaussian"} & set(slope["inside_range"])
    # BN prior: uniform noise is far from ImageNet's statistics, every photo closer
    assert v["generated"]["noise"]["bn_distance"] > max(x["bn_distance"] for x in v["natural"].values())
    assert 0.5 < bn["auc"] <= 1.0
    # only Lite0 is trained offline: the "other network" judge is unavailable for Lite0, and says so
    assert "judge_confidence" in v["unavailable"] and "judge_confidence" not in v["descriptors"]
    assert mf.auc([3, 4], [1, 2]) == 1.0 and mf.auc([1], [1]) == 0.5 and mf.auc([], [1]) is None
    assert mf.gap(5, [1, 2]) == 3 and mf.gap(1.5, [1, 2]) == 0 and mf.gap(None, [1, 2]) is None
    lines = mf_report.summary_lines(v)
    assert any(line.startswith("spectral slope") and "AUC" in line for line in lines)


def test_other_network_confidence_when_the_judge_is_not_the_inverted_network(describer64):
    other = mf.Describer("resnet18", 64, trained=describer64.model)  # inverting ResNet-18: trained Lite0 may judge
    assert other.names == ["spectral_slope", "bn_distance", "judge_confidence"] and not other.notes
    vals = other(torch.stack([mf.make_input("noise", 64), mf.make_input("disc", 64)]))
    assert all(0 < c <= 1 for c in vals["judge_confidence"])


def _cli(argv):
    from core.cli.main import main

    return main(argv)


def test_cli_end_to_end_tiny(tmp_path, capsys):
    out = tmp_path / "mf"
    code = _cli(["manifold", "--model", "efficientnet_lite0", "--checkpoints", "untrained,trained", "--layers",
                 "conv_head", "--input", "noise,disc", "--size", "32", "--seeds", "1", "--iters", "6", "--device",
                 "cpu", "--out", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} >= {"manifold.json", "manifold.png", "manifold.html"}
    data = json.loads((out / "manifold.json").read_text())
    assert data["size"] == 32 and data["inputs"] == ["noise", "disc"] and data["layers"] == ["conv_head"]
    assert sorted((r["checkpoint"], r["input"]) for r in data["rows"]) == [
        ("trained", "disc"), ("trained", "noise"), ("untrained", "disc"), ("untrained", "noise")]
    for r in data["rows"]:
        for key in ("checkpoint", "layer", "input", "clarity", "converged", "spectral_slope", "spectral_slope_mean",
                    "input_spectral_slope", "bn_distance", "bn_distance_mean", "input_bn_distance"):
            assert key in r, key
        assert isinstance(r["converged"], bool) and len(r["spectral_slope_seeds"]) == 1
    assert set(data["validation"]["descriptors"]) == {"spectral_slope", "bn_distance"}
    assert data["comparison"]["spectral_slope"]["of"] == 2
    from PIL import Image

    with Image.open(out / "manifold.png") as im:
        assert im.width >= 2 * 128 and im.height >= 3 * 128  # inputs + 2 rows, cells of at least 128 px
    html = (out / "manifold.html").read_text()
    assert "plotly" in html and "sample photos" in html
    assert "AUC" in capsys.readouterr().out


def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys):
    code = _cli(["manifold", "--input", "noise,bogus", "--size", "32", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "bogus" in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_page_runs_a_tiny_configuration():
    at = app()
    at.run()
    at.switch_page("pages/5_manifold.py")
    at.run()
    ok(at)
    assert at.button(key="mf_run")  # renders with its defaults, no run yet
    assert at.multiselect(key="mf_layers").value == ["blocks.5.1", "bn2"]  # finding 5's deep stops (core.studies.deep)
    if not torch.cuda.is_available():  # CPU defaults: noise and a disc, 64 px
        assert at.multiselect(key="mf_inputs").value == ["noise", "disc"]
        assert at.select_slider(key="mf_size").value == 64
    at.multiselect(key="mf_inputs").set_value(["noise"])
    at.multiselect(key="mf_layers").set_value(["conv_head"])
    at.slider(key="mf_seeds").set_value(1)
    at.number_input(key="mf_iters").set_value(10)
    at.select_slider(key="mf_size").set_value(32)
    at.run()
    at.button(key="mf_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    rows = at.session_state["mf_out"]["rows"]
    assert sorted(r.checkpoint for r in rows) == ["trained", "untrained"]
    captions = [c for im in at.get("image") for c in im.captions]
    assert any(c.startswith("trained · noise · slope") for c in captions)
    assert any(c.startswith("input noise · slope") for c in captions)
    assert len(at.get("plotly_chart")) == 1 and at.dataframe
    assert {b.label for b in at.get("download_button")} >= {"Manifold (JSON)", "Grid (PNG)"}
    assert at.query_params["inputs"] in ("noise", ["noise"])  # every setting is in the URL
    assert at.query_params["layers"] in ("conv_head", ["conv_head"]) and at.query_params["size"] in ("32", ["32"])
    # an upload is offered; with nothing uploaded and no other input, Run waits and says why
    at.multiselect(key="mf_inputs").set_value(["upload"])
    at.run()
    ok(at)
    assert at.button(key="mf_run").disabled and any("choose or upload an input" in i.value for i in at.info)
    assert at.session_state["mf_out"]["rows"]  # the last result stays on the page
