"""The invertibility lab (core/studies/lab.py, core/cli/lab.py, pages/4_lab.py): findings 3 and 6 at small scale."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from app_helpers import _cache_dir, app, errors, ok  # noqa: F401  (_cache_dir: autouse fixture)
from core.studies import lab
from core.errors import UserError
from core.images import load_image


@pytest.fixture(scope="module")
def chelsea16(chelsea_path):
    return load_image(chelsea_path, 16)


@pytest.fixture(scope="module")
def table(chelsea16):
    """The issue's table at its own scale: 16 x 16 grey image, 2 seeds, 2000-step budget (early stop), depth 1."""
    rows = lab.mlp_lab(chelsea16, widths=[0.5, 1, 2, 4], activations=["linear", "relu"], depths=[1], seeds=[0, 1],
                       use_cache=False)
    return {(r.config.activation, r.config.width): r for r in rows}


# --------------------------------------------------------------------------- the grey parameterisation


def test_grey_param_starts_at_the_channel_mean_and_stays_grey_under_blur_and_clamp():
    from core.recipe.components import build
    from core.recipe.presets import LAB, get_preset
    from core.recipe.transforms import Blur, Clamp

    start = torch.rand(2, 3, 8, 8)
    state = build("param", "grey").create(start)
    img = state.image()
    assert img.shape == (2, 3, 8, 8)
    assert torch.allclose(img[:, 0], start.mean(1), atol=1e-6) and torch.equal(img[:, 0], img[:, 2])
    with torch.no_grad():  # the pixel transforms act on its pixels, and the channels stay tied
        state.pixels.add_(torch.randn(2, 1, 8, 8) * 3)
        Blur().post(state.pixels, 0, 10)
        Clamp().post(state.pixels, 0, 10)
    assert torch.equal(state.pixels[:, 0], state.pixels[:, 1]) and torch.equal(state.pixels[:, 1], state.pixels[:, 2])
    assert 0 <= float(state.image().detach().min()) and float(state.image().detach().max()) <= 1
    assert LAB.param.name == "grey" and LAB.iters == 2000 and [t.name for t in LAB.transforms] == ["clamp"]
    assert [t.name for t in lab.lab_preset(100, blur=True).transforms] == ["blur", "clamp"]
    assert "lab" not in __import__("core.recipe.presets", fromlist=["PRESETS"]).PRESETS  # not offered to the model pages
    with pytest.raises(UserError, match="act on pixels"):  # parameterisations without pixels still refuse them
        get_preset("natural").replace(transforms=({"name": "clamp"},))


# --------------------------------------------------------------------------- the MLP part


def test_mlp_is_a_loaded_model_outside_the_registry_with_exactly_n_by_n_inputs():
    from core.models.registry import ARCHITECTURES
    from core.models.encoder import Encoder

    cfg = lab.MLPConfig(2, "relu", 3, 16)
    model = lab.build_mlp(cfg, init_seed=7)
    assert model.name == "lab_mlp-relu-w2-d3-s16" and model.name not in ARCHITECTURES
    assert [s.node for s in model.arch.stops_of(model.module)] == ["body.act1", "body.act2", "body.act3"]
    assert model.module.body.fc1.in_features == 256 and model.module.body.fc3.out_features == 512
    assert torch.equal(lab.build_mlp(cfg, 7).module.body.fc1.weight, model.module.body.fc1.weight)  # recorded seed
    assert not torch.equal(lab.build_mlp(cfg, 8).module.body.fc1.weight, model.module.body.fc1.weight)
    x = torch.rand(1, 3, 16, 16)
    y = Encoder(model, "body.act3", normalize=False)(x)  # FX-traced like every model
    assert torch.allclose(y, model.module(x)) and y.shape == (1, 512)
    with pytest.raises(UserError, match="activation"):
        lab.MLPConfig(1, "gelu")
    with pytest.raises(UserError, match="width"):
        lab.MLPConfig(0, "relu")


def test_lab_reproduces_the_issue_table_at_small_scale(table):
    linear_half = table[("linear", 0.5)]
    assert linear_half.spectrum.rank == linear_half.config.units == 128  # a narrow layer keeps only its width
    assert linear_half.to_json()["clarity"] < 0.5
    assert table[("relu", 4.0)].to_json()["clarity"] > 0.9
    relu = [table[("relu", w)].to_json()["clarity"] for w in (0.5, 1, 2, 4)]
    # non-decreasing in width (both widest nets reach about 1: 0.995 vs 0.994 was measured, within 0.01)
    assert all(b >= a - 0.01 for a, b in zip(relu, relu[1:])), relu
    assert table[("relu", 1.0)].spectrum.rank < 256 <= table[("relu", 2.0)].spectrum.rank  # ReLU needs ~2x
    two = table[("linear", 2.0)].to_json()
    assert two["clarity"] > 0.9 and two["jacobian_rank"] == 256
    assert two["pinv_clarity"] == pytest.approx(1.0, abs=1e-6)  # the exact answer of a full-rank linear net
    assert two["pinv_max_error"] < 1e-9
    assert table[("linear", 0.5)].to_json()["pinv_clarity"] < 0.5  # even the exact answer cannot recover it
    assert table[("relu", 2.0)].to_json()["pinv_clarity"] is None


def test_lab_rows_report_every_field_and_runs_come_from_the_pipeline(table, chelsea16, tmp_path, monkeypatch):
    row = table[("linear", 1.0)].to_json()
    for key in ("width", "activation", "depth", "input_dim", "clarity", "ssim", "converged", "jacobian_rank",
                "condition_number", "pinv_clarity", "steps", "seeds", "singular_values"):
        assert key in row
    assert row["input_dim"] == 256 and row["steps"] <= row["iters"] == 2000 and row["recipe"] == "lab"
    assert row["condition_number"] > 100  # a random square matrix: invertible, but not well conditioned
    assert table[("linear", 1.0)].result.spec["model"] == "lab_mlp-linear-w1-d1-s16"  # recorded by core.jobs.pipeline.run
    from core.jobs.cache import RunCache

    cache = RunCache(tmp_path / "runs")
    first = lab.mlp_lab(chelsea16, [2], ["tanh"], [1], seeds=[0], iters=100, cache=cache)
    import core.jobs.pipeline

    monkeypatch.setattr(core.jobs.pipeline, "run_resilient", lambda *a, **k: pytest.fail("a cached run started the engine"))
    again = lab.mlp_lab(chelsea16, [2], ["tanh"], [1], seeds=[0], iters=100, cache=cache)
    assert not first[0].cached and again[0].cached
    assert again[0].to_json()["clarity"] == first[0].to_json()["clarity"]


def test_a_blur_prior_fills_the_null_space_and_hides_the_lost_rank(table, chelsea16):
    blurred = lab.mlp_lab(chelsea16, [0.5], ["linear"], [1], seeds=[0, 1], blur=True, use_cache=False)[0]
    assert blurred.result.preset.name == "lab+blur" and blurred.spectrum.rank == 128
    assert blurred.to_json()["clarity"] > table[("linear", 0.5)].to_json()["clarity"] + 0.2


def test_without_early_stop_the_whole_budget_runs_and_an_ill_conditioned_net_keeps_improving(chelsea16):
    cfg = dict(widths=[1], activations=["linear"], depths=[3], seeds=[0], use_cache=False)
    early = lab.mlp_lab(chelsea16, iters=600, **cfg)[0]
    full = lab.mlp_lab(chelsea16, iters=600, early_stop=False, **cfg)[0]
    assert early.result.steps_done < 600 == full.result.steps_done and not full.result.preset.early_stop
    assert early.spectrum.condition_number > 1e4  # depth compounds the conditioning (finding 6)
    assert full.to_json()["clarity"] > early.to_json()["clarity"]


# --------------------------------------------------------------------------- Jacobians


def test_jacobian_rank_of_a_known_linear_map_and_sorted_singular_values():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(40, 5, generator=g, dtype=torch.float64) @ torch.randn(5, 30, generator=g, dtype=torch.float64)
    for rows in (A, A[:12]):  # tall (forward mode) and wide (reverse mode)
        s = lab.spectrum_of(lambda v, M=rows: M @ v, torch.rand(30, dtype=torch.float64))
        assert s.rank == 5 == np.linalg.matrix_rank(rows.numpy())
        assert (s.input_dim, s.output_dim) == (30, rows.shape[0])
        assert torch.allclose(s.singular_values, torch.linalg.svdvals(rows))
        sv = s.singular_values.tolist()
        assert sv == sorted(sv, reverse=True) and s.largest(2) == sv[:2] and s.smallest(2) == sv[-2:]
        assert s.condition_number == pytest.approx(sv[0] / sv[4])
    assert {lab.spectrum_of(lambda v: A @ v, torch.rand(30)).mode, lab.spectrum_of(lambda v: A[:12] @ v,
            torch.rand(30)).mode} == {"jvp", "vjp"}


def test_mlp_jacobian_is_its_weight_matrix(chelsea16):
    model = lab.build_mlp(lab.MLPConfig(0.25, "linear", 1, 16))
    s = lab.layer_jacobian(model, "body.act1", chelsea16, grey=True)
    W = model.module.body.fc1.weight.double()
    assert s.rank == 64 and torch.allclose(s.singular_values, torch.linalg.svdvals(W))


def test_resnet18_conv1_keeps_full_input_rank_at_32px_and_maxpool_loses_rank(chelsea32, chelsea_path):
    from core.models.checkpoints import load_model

    model = load_model("resnet18", "untrained", 32)
    s = lab.layer_jacobian(model, "conv1", chelsea32)
    assert (s.input_dim, s.output_dim) == (3072, 64 * 16 * 16)
    assert s.rank == 3072 and math.isfinite(s.condition_number)
    sv = s.singular_values.tolist()
    assert sv == sorted(sv, reverse=True)
    assert next(model.module.parameters()).dtype == torch.float32  # computed on a float64 copy
    rows = list(lab.iter_jacobian(model, load_image(chelsea_path, 16), ["maxpool", "layer2"]))
    assert [r.layer for r in rows] == ["maxpool", "layer2"]
    assert rows[0].spectrum.rank < 768 and rows[1].spectrum.rank <= rows[1].spectrum.output_dim
    d = rows[0].to_json()
    assert len(d["singular_values"]["largest"]) == len(d["singular_values"]["smallest"]) == 5
    assert d["dim_ratio"] == 768 / 1024


def test_a_too_large_jacobian_is_refused_before_any_work(resnet18_untrained, chelsea64):
    with pytest.raises(UserError, match="GB in float64"):
        lab.layer_jacobian(resnet18_untrained, "conv1", chelsea64, max_mb=100)


# --------------------------------------------------------------------------- the command line


def test_cli_lab_mlp_and_jacobian_write_their_files(tmp_path, capsys, chelsea_path):
    from core.cli.main import main

    out = tmp_path / "mlp"
    rc = main(["lab", "mlp", "--widths", "0.5,2", "--activations", "linear,relu", "--depths", "1", "--size", "8",
                       "--seeds", "1", "--iters", "300", "--image", str(chelsea_path), "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "lab.json").read_text())
    assert len(data["rows"]) == 4 and data["size"] == 8 and data["blur"] is False
    for r in data["rows"]:
        assert {"width", "activation", "depth", "input_dim", "clarity", "ssim", "converged", "jacobian_rank",
                "condition_number", "pinv_clarity"} <= set(r)
        assert (r["pinv_clarity"] is None) == (r["activation"] != "linear")
    assert [(r["activation"], r["width"]) for r in data["rows"]][:2] == [("linear", 0.5), ("linear", 2.0)]
    assert (out / "lab.csv").read_text().startswith("name,activation,depth,width")
    assert "plotly" in (out / "lab.html").read_text()[:5000].lower() and (out / "lab.png").stat().st_size > 0
    assert "networks in" in capsys.readouterr().out

    out = tmp_path / "jac"
    rc = main(["lab", "jacobian", "--model", "resnet18", "--layers", "conv1,maxpool", "--size", "16", "--clarity",
                       "--iters", "10", "--seeds", "1", "--device", "cpu", "--image", str(chelsea_path),
                       "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "jacobian.json").read_text())
    assert [r["layer"] for r in data["rows"]] == ["conv1", "maxpool"]
    for r in data["rows"]:
        assert {"layer", "depth", "input_dim", "output_dim", "rank", "singular_values", "condition_number",
                "seconds", "clarity"} <= set(r) and r["clarity"] is not None
    assert data["rows"][0]["rank"] == 768 and (out / "jacobian.html").exists() and (out / "jacobian.csv").exists()


def test_cli_lab_errors_are_one_line_exit_2(tmp_path, root):
    cmd = [sys.executable, "-m", "core", "lab", "mlp", "--activations", "relu,gelu", "--out", str(tmp_path)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    assert p.returncode == 2 and p.stderr.startswith("error:") and len(p.stderr.strip().splitlines()) == 1
    assert "gelu" in p.stderr


def test_lab_is_wired_into_python_m_core():
    from core.cli.main import build_parser

    args = build_parser().parse_args(["lab", "mlp", "--out", "x"])
    assert args.lab_command == "mlp" and args.widths == [0.5, 1.0, 2.0, 4.0]


# --------------------------------------------------------------------------- the page


def test_lab_page_runs_a_tiny_mlp_and_cnn_configuration():
    at = app()
    at.run()
    at.switch_page("pages/4_lab.py")
    at.run()
    ok(at)
    assert at.button(key="lab_mlp_run") and at.button(key="lab_cnn_run")
    at.multiselect(key="lab_widths").set_value(["0.5", "2"])
    at.multiselect(key="lab_acts").set_value(["linear"])
    at.multiselect(key="lab_depths").set_value(["1"])
    at.slider(key="lab_seeds").set_value(1)
    at.number_input(key="lab_iters").set_value(200)
    at.select_slider(key="lab_msize").set_value(8)
    at.run()
    at.button(key="lab_mlp_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    rows = at.session_state["lab_mlp"]["rows"]
    assert [(r.config.width, r.config.size) for r in rows] == [(0.5, 8), (2.0, 8)]
    assert rows[0].spectrum.rank == 32 and rows[1].pinv is not None
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert any(t.get("name", "").startswith("linear") for t in chart["data"])
    assert len(at.get("download_button")) == 2
    assert any(im.captions and im.captions[0].startswith("seed 0's") for im in at.get("image"))
    assert at.query_params["widths"] in ("0.5,2", ["0.5,2"])  # every setting in the URL

    at.select_slider(key="lab_csize").set_value(16)
    at.multiselect(key="lab_cstops").set_value(["conv1", "maxpool"])
    at.number_input(key="lab_citers").set_value(10)
    at.run()
    at.button(key="lab_cnn_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    jac = at.session_state["lab_cnn"]["rows"]
    assert [r.layer for r in jac] == ["conv1", "maxpool"] and jac[0].spectrum.rank == 768
    assert all(r.clarity is not None for r in jac)
    assert len(at.get("plotly_chart")) == 2 and len(at.get("download_button")) == 4
