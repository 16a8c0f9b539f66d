"""core.report's figures, grids, titles and CSVs, checked on the objects they return (no app, no model runs)."""

from __future__ import annotations

import csv
import io
import math

import pytest
import torch

from core.engine.result import InversionResult
from core.recipe.presets import get_preset
from core.report.files import (
    curve_csv, distances_csv, gallery, result_grid, trajectory_csv, write_curve, write_inversion
)
from core.report.figures import curve_figure, distance_figures, log_ticks, trajectory_figure
from core.report.text import curve_title, run_title
from core.report.draw import labelled_grid

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`

SIZE = 32


def image(seed: int = 0, size: int = SIZE) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def metrics(k: int, conv=None, ssim=None, shift=2.0, ref=0.5, px=None, emb=None, degenerate=False) -> dict:
    conv = [True] * k if conv is None else conv
    return {
        "ssim": ssim or [0.42] * k, "psnr": [20.0] * k, "converged": conv, "degenerate": degenerate,
        "mg_over_mr": None if degenerate else [0.9 if c else 3.0 for c in conv], "clarity": 0.5,
        "clarity_per_seed": [0.5] * k, "input_l2": [10.0] * k, "embedding_l2": [0.4] * k,
        "reference_l2": ref, "shift_input_l2": shift, "seed_spread_input": 1.0, "seed_spread_embedding": 1.0,
        "seed_distances_input": px or [[0.0 if i == j else 4.6 for j in range(k)] for i in range(k)],
        "seed_distances_embedding": emb or [[0.0 if i == j else 0.05 for j in range(k)] for i in range(k)],
        "stop_reason": "budget", "signal": {},
    }


def fake_result(k: int = 3, layer: str = "layer2", label: str = "Conv3 = layer2 (block 2)", size: int = SIZE,
                **kw) -> InversionResult:
    steps = [0, 1, 2]
    history = {"step": steps, "embedding_l2": [[100.0, 10.0, 1.0 + i] for i in range(k)],
               "input_l2": [[30.0, 20.0, 10.0 + i] for i in range(k)], "loss": [[5.0, 2.0, 1.0] for _ in range(k)]}
    return InversionResult("resnet18", "untrained", layer, label, size, get_preset("default", iters=3),
                           list(range(k)), "cpu", 1.0, 120, False, image(0, size),
                           torch.stack([image(i + 1, size) for i in range(k)]), (8,), metrics(k, **kw), history)


def annotation(fig, text):
    found = [a for a in fig.layout.annotations if a.text == text]
    return found[0] if found else None


def inside(v, rng):
    return rng[0] <= v <= rng[1]


# --------------------------------------------------------------------------- imports


def test_the_run_cache_stores_files_without_the_reports():
    """The run cache (core.jobs.cache, below the studies and the reports) writes atomically through the leaf
    `core.atomic`, not through core.report, which sits above it: no import cycle (lint-imports checks every layer)."""
    import ast
    from pathlib import Path

    import core.atomic
    import core.jobs.cache

    tree = ast.parse(Path(core.jobs.cache.__file__).read_text())
    names = []
    for node in ast.walk(tree):  # anywhere in the module, functions included
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module)
    assert "core.atomic" in names and not [n for n in names if n.startswith(("core.report", "core.studies"))]
    assert core.jobs.cache.atomic_write is core.atomic.atomic_write


def test_atomic_write_writes_text_and_bytes(tmp_path):
    from core.atomic import atomic_write

    atomic_write(tmp_path / "a" / "x.txt", "héllo")
    atomic_write(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a" / "x.txt").read_text() == "héllo" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.rglob(".*tmp")] == []


# --------------------------------------------------------------------------- trajectories


def check_log_axis(fig, values):
    """The log axis contains log10 of every value and is at most the data span plus its padding."""
    rng = fig.layout.yaxis.range
    lo, hi = math.log10(min(values)), math.log10(max(values))
    pad = max(0.05 * (hi - lo), 0.05)
    assert all(inside(math.log10(v), rng) for v in values)
    assert rng[0] >= lo - pad - 1e-9 and rng[1] <= hi + pad + 1e-9
    return rng


def check_full_labels(axis):
    assert axis.ticktext and len(axis.ticktext) == len(axis.tickvals) >= 2
    for v, t in zip(axis.tickvals, axis.ticktext):
        assert math.isclose(float(t), v, rel_tol=1e-6), (t, v)  # "200", not "2" between 100 and 1000


def test_trajectory_ranges_fit_the_data_and_the_references():
    history = {"step": [0, 1, 2, 3], "embedding_l2": [[1000.0, 100.0, 10.0, 1.0], [800.0, 50.0, 7.0, 2.0]],
               "input_l2": [[30.0, 25.0, 21.0, 20.0], [35.0, 30.0, 22.0, 19.0]]}
    fig = trajectory_figure(history, [0, 1], m_r=5.0, shift=4.4)
    assert fig.layout.yaxis.type == "log"
    rng = check_log_axis(fig, [1000.0, 1.0, 5.0])
    assert rng[0] >= math.log10(1) - 0.2 and rng[1] <= math.log10(1e3) + 0.2
    check_full_labels(fig.layout.yaxis)
    assert all(inside(math.log10(v), rng) for v in fig.layout.yaxis.tickvals)
    # m_i: 0 .. max(data, shift), padded 5% at the top
    lin = fig.layout.yaxis2.range
    assert lin[0] == 0 and 35.0 <= lin[1] <= 35.0 * 1.05 + 1e-9
    # the references are labelled inside the plot, at their lines (a log axis reads an annotation's y as log10)
    a = annotation(fig, "m_r (near-copy)")
    assert a is not None and a.yref == "y" and a.xref == "x domain" and 0 <= a.x < 0.5 and a.xanchor == "left"
    assert math.isclose(a.y, math.log10(5.0)) and inside(a.y, rng)
    b = annotation(fig, "‖a′−a‖₂ (near-copy)")
    assert b is not None and b.yref == "y2" and b.xref == "x2 domain" and 0 < b.x <= 1
    assert math.isclose(b.y, 4.4) and inside(b.y, lin)
    lines = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert sorted(s.y0 for s in lines) == [4.4, 5.0]


def test_trajectory_reference_above_the_data_stretches_the_axis_only_to_itself():
    history = {"step": [0, 1], "embedding_l2": [[20.0, 10.0]], "input_l2": [[3.0, 2.0]]}
    fig = trajectory_figure(history, [0], m_r=300.0, shift=50.0)
    rng = check_log_axis(fig, [10.0, 20.0, 300.0])
    a = annotation(fig, "m_r (near-copy)")
    assert inside(a.y, rng) and a.yanchor == "top"  # at the top of the plot: the label goes under its line
    lin = fig.layout.yaxis2.range
    assert lin[0] == 0 and 50.0 <= lin[1] <= 52.5 + 1e-9


def test_trajectory_ignores_nan_inf_and_zero():
    nan, inf = float("nan"), float("inf")
    history = {"step": [0, 1, 2, 3], "embedding_l2": [[100.0, nan, 0.0, 3.0], [inf, 50.0, -1.0, 10.0]],
               "input_l2": [[30.0, nan, inf, 12.0], [25.0, 20.0, 15.0, -inf]]}
    fig = trajectory_figure(history, [0, 1], m_r=20.0, shift=4.0)
    check_log_axis(fig, [3.0, 100.0, 20.0])
    check_full_labels(fig.layout.yaxis)
    lin = fig.layout.yaxis2.range
    assert lin[0] == 0 and 30.0 <= lin[1] <= 31.5 + 1e-9
    mg = [t for t in fig.data if t.xaxis == "x"]
    assert list(mg[0].y) == [100.0, None, None, 3.0] and list(mg[1].y) == [None, 50.0, None, 10.0]
    mi = [t for t in fig.data if t.xaxis == "x2"]
    assert list(mi[0].y) == [30.0, None, None, 12.0]
    fig.to_json()  # serialisable (no NaN left for the browser)


def test_trajectory_without_references():
    history = {"step": [0, 1, 2], "embedding_l2": [[800.0, 300.0, 70.0]], "input_l2": [[35.0, 30.0, 21.0]]}
    fig = trajectory_figure(history, [0], m_r=None, shift=None)
    check_log_axis(fig, [800.0, 70.0])
    assert list(fig.layout.yaxis.ticktext) == ["100", "200", "500"]
    assert annotation(fig, "m_r (near-copy)") is None and annotation(fig, "‖a′−a‖₂ (near-copy)") is None
    assert not fig.layout.shapes
    lin = fig.layout.yaxis2.range
    assert lin[0] == 0 and 35.0 <= lin[1] <= 36.75 + 1e-9
    # the old test's case: m_r inside the data
    fig = trajectory_figure(history, [0], m_r=261.0, shift=4.4)
    assert list(fig.layout.yaxis.ticktext) == ["100", "200", "500"]


def test_trajectory_narrow_range_still_gets_full_labels():
    history = {"step": [0, 1], "embedding_l2": [[6.1, 5.2]], "input_l2": [[1.0, 0.9]]}
    fig = trajectory_figure(history, [0])
    check_log_axis(fig, [5.2, 6.1])
    check_full_labels(fig.layout.yaxis)


def test_trajectory_with_no_finite_values_does_not_crash():
    history = {"step": [0], "embedding_l2": [[float("nan")]], "input_l2": [[float("nan")]]}
    fig = trajectory_figure(history, [0], m_r=0.0, shift=float("nan"))
    assert fig.layout.yaxis.range is None and annotation(fig, "m_r (near-copy)") is None


def test_log_ticks_unchanged():
    assert log_ticks([65, 800, 261]) == ([100.0, 200.0, 500.0], ["100", "200", "500"])
    assert log_ticks([2.3, 15])[1] == ["3", "4", "5", "6", "7", "8", "9", "10"]
    assert log_ticks([0.001, 1000])[1] == ["0.001", "0.01", "0.1", "1", "10", "100", "1000"]
    assert log_ticks([5.2, 6.1]) == ([], []) and log_ticks([float("nan"), None]) == ([], [])


def test_trajectory_csv():
    r = fake_result(k=2)
    rows = list(csv.DictReader(io.StringIO(trajectory_csv(r))))
    assert list(rows[0]) == ["step", "seed", "m_g", "m_i", "loss"] and len(rows) == 3 * 2
    assert rows[1] == {"step": "0", "seed": "1", "m_g": "100.0", "m_i": "30.0", "loss": "5.0"}
    assert rows[-1]["m_g"] == "2.0" and rows[-1]["seed"] == "1"


# --------------------------------------------------------------------------- the curve


def curve_rows(n_stops: int = 22, checkpoints=("untrained", "trained"), half: bool = True) -> list[dict]:
    rows = []
    for ck in checkpoints:
        stops = [(float(d), f"blocks.{d}.0", f"stage {d} block one with a long name") for d in range(n_stops)]
        if half:
            stops.append((2.5, "blocks.2", "blocks.2 (between)"))
        for depth, layer, label in stops:
            bad = layer == "blocks.1.0"
            rows.append({"checkpoint": ck, "layer": layer, "label": label, "depth": depth, "clarity": depth / n_stops,
                         "clarity_min": 0.0, "clarity_max": 1.0, "ssim_mean": 0.5, "ssim_std": 0.1, "psnr_mean": 20,
                         "input_l2_mean": 1.0, "mg_over_mr_max": 3.0 if bad else 0.5, "reference_l2": 1.0,
                         "degenerate": False, "status": "not converged" if bad else "converged"})
    return rows


def test_curve_x_axis_is_depth_with_thinned_full_labels():
    rows = curve_rows()
    fig = curve_figure(rows, "clarity", "t")
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(lines) == 2
    xs = list(lines[0].x)
    assert xs == sorted(xs) and 2.5 in xs and all(isinstance(x, float) for x in xs)  # numeric, forward order
    ax = fig.layout.xaxis
    depths = sorted({r["depth"] for r in rows})
    assert ax.tickmode == "array" and len(ax.tickvals) <= 12
    assert ax.tickvals[0] == depths[0] and ax.tickvals[-1] == depths[-1]
    # every label in full, on two lines of at most 18 characters ("stage 0 block one<br>with a long name")
    assert all(len(line) <= 18 for t in ax.ticktext for line in t.split("<br>"))
    assert not any("…" in t for t in ax.ticktext) and ax.automargin
    assert ax.ticktext[0] == "stage 0 block one<br>with a long name"
    assert {t.replace("<br>", " ") for t in ax.ticktext} <= {r["label"] for r in rows}
    assert ax.tickangle is None or ax.tickangle >= -30
    assert ax.range[0] < depths[0] and ax.range[1] > depths[-1]
    # hover: label and node name
    cd = lines[0].customdata
    assert "%{customdata[0]}" in lines[0].hovertemplate and "%{customdata[2]}" in lines[0].hovertemplate
    assert list(cd[0]) == ["stage 0 block one with a long name", "converged", "blocks.0.0"]


def test_curve_few_stops_are_all_labelled_flat():
    rows = curve_rows(n_stops=4, half=False)
    fig = curve_figure(rows, "ssim_mean")
    assert list(fig.layout.xaxis.tickvals) == [0.0, 1.0, 2.0, 3.0] and not fig.layout.xaxis.tickangle
    assert list(fig.layout.xaxis.ticktext)[0] == "stage 0 block one<br>with a long name"


def test_curve_keeps_band_hollow_markers_and_reference():
    rows = curve_rows(n_stops=5, half=False)
    fig = curve_figure(rows, "clarity")
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and len(bands[0].x) == 10
    line = next(t for t in fig.data if t.mode == "lines+markers")
    colours = list(line.marker.color)
    assert colours[1] == "white" and colours[0] != "white"  # blocks.1.0 did not converge: hollow
    assert any("hollow" in (a.text or "") for a in fig.layout.annotations)
    fig = curve_figure(rows, "mg_over_mr")
    assert any(s.y0 == 1.0 for s in fig.layout.shapes)


def test_curve_csv():
    table = [{"a": 1, "b": 2}, {"a": 3, "b": 4, "c": 5}]
    rows = list(csv.DictReader(io.StringIO(curve_csv(table))))
    assert rows == [{"a": "1", "b": "2", "c": ""}, {"a": "3", "b": "4", "c": "5"}]
    assert curve_csv([]) == ""


def test_curve_title_from_cli_settings_and_page_base():
    cli = {"model": "efficientnet_lite0", "checkpoints": ["untrained", "/x/y/my.pt"], "size": 64, "seeds": [0, 4],
           "preset": "default", "iters": 200}
    assert curve_title(cli, stops=22) == ("efficientnet_lite0 · untrained vs my.pt · 22 stops · 64 px · 2 seeds · "
                                          "preset default · ≤ 200 steps")
    page = {"model": "resnet18", "cks": ["trained"], "stops": ["conv1", "layer1"], "size": 32, "seeds": [0, 1, 2],
            "preset": {"name": "paper", "iters": 500}}
    assert curve_title(page) == "resnet18 · trained · 2 stops · 32 px · 3 seeds · preset paper · ≤ 500 steps"


# --------------------------------------------------------------------------- grids


def ink(img, box) -> bool:
    """Whether the region has any non-white pixel."""
    region = img.crop(box).convert("L")
    return region.getextrema()[0] < 200


def test_labelled_grid_wraps_into_bands_with_big_cells():
    stops = 22
    tiles = [[image(0)] + [image(j) for j in range(1, stops + 1)] for _ in range(2)]
    columns = ["original"] + [f"stop {j}" for j in range(stops)]
    marks = [[False] + [j == 3 for j in range(stops)] for _ in range(2)]
    canvas, cell, boxes = labelled_grid(tiles, columns, ["untrained", "trained"], marks=marks, max_columns=8)
    assert cell == 128 and cell % SIZE == 0
    assert len(boxes[(0, 0)]) == 3 and len(boxes[(1, 0)]) == 3  # the original opens each of 3 bands
    assert all(len(boxes[(i, j)]) == 1 for i in range(2) for j in range(1, stops + 1))
    xs = sorted({x for (i, j), pos in boxes.items() for x, _ in pos})
    assert len(xs) == 9  # the original + 8 stops per band
    ys = sorted({y for pos in boxes.values() for _, y in pos})
    assert len(ys) == 6 and all(b - a >= 128 for a, b in zip(ys, ys[1:]))  # 3 bands x 2 rows, no overlap
    assert canvas.width >= 9 * 128 and canvas.height >= 6 * 128
    x, y = boxes[(0, 4)][0]  # stop 3: a red dashed frame
    frame = [canvas.getpixel((x + k, y - 2)) for k in range(0, 40)]
    assert any(p[0] > 200 and p[1] < 80 and p[2] < 80 for p in frame)
    x, y = boxes[(0, 2)][0]  # and text under each cell
    assert ink(canvas, (x, y + cell + 1, x + cell, y + cell + 20))
    # a 48 px run: an integer upscale to at least 128 px
    assert labelled_grid([[image(0, 48)]], ["o"], ["r"])[1] == 144


def test_labelled_grid_keeps_the_old_call():
    canvas = labelled_grid([[image(0), image(1)]], ["original", "layer1"], ["recipe"], side=70)[0]
    assert canvas.width >= 70 + 2 * 128


class Row:  # a CurveRow without importing the curve's module
    def __init__(self, ck, layer, depth, label, result):
        self.checkpoint, self.layer, self.depth, self.label, self.result = ck, layer, depth, label, result


def test_gallery_22_stops_makes_3_bands_and_a_title():
    rows = [Row(ck, f"blocks.{d}.0", d, f"stage {d} block 1", fake_result(k=2, conv=[d != 5, True]))
            for ck in ("untrained", "trained") for d in range(22)]
    plain = gallery(rows, image(0))
    titled = gallery(rows, image(0), title="a title")
    assert titled.height > plain.height and titled.width == plain.width
    # 3 bands of 2 rows of >= 128 px cells, 9 columns (original + 8 stops)
    assert plain.height >= 6 * 128 and 9 * 128 <= plain.width < 9 * 128 + 400
    wide = gallery(rows, image(0), max_columns=22)
    assert wide.width >= 23 * 128 and wide.height < plain.height
    assert ink(titled, (0, 0, 200, 20)) and not ink(plain, (plain.width - 5, 0, plain.width, 5))


def test_result_grid_cells_captions_and_title():
    r = fake_result(k=3, conv=[True, False, True], ssim=[0.42, 0.12, 0.8])
    assert run_title(r) == ("resnet18 · untrained · layer2 (Conv3 = layer2 (block 2)) · 32 px · preset default · "
                            "120 steps")
    assert run_title(r, "my weights.pt").startswith("resnet18 · my weights.pt · layer2")
    one_row = result_grid(r)
    assert 4 * 128 <= one_row.width < 4 * 128 + 60 and 128 < one_row.height < 2 * 128
    assert ink(one_row, (0, 0, 300, 20))  # the title
    untitled = result_grid(r, title="")
    assert untitled.height < one_row.height
    many = result_grid(fake_result(k=8))  # 9 images: rows of 4
    assert 4 * 128 <= many.width < 4 * 128 + 60 and many.height >= 3 * 128
    big = result_grid(r, cell=200)
    assert big.width >= 4 * 224  # 32 px x 7
    assert result_grid(fake_result(k=4)).width >= 5 * 128  # 5 images: still one row


# --------------------------------------------------------------------------- non-uniqueness


def test_distance_figures_share_one_scale_centred_at_one():
    px = [[0.0, 4.6, 2.0], [4.6, 0.0, 1.0], [2.0, 1.0, 0.0]]  # / 2.0 -> 2.3x, 1x, 0.5x
    emb = [[0.0, 0.05, 0.5], [0.05, 0.0, 2.0], [0.5, 2.0, 0.0]]  # / 0.5 -> 0.1x, 1x, 4x
    r = fake_result(k=3, px=px, emb=emb, shift=2.0, ref=0.5)
    f_px, f_emb = distance_figures(r)
    h_px, h_emb = f_px.data[0], f_emb.data[0]
    assert h_px.zmid == 0 == h_emb.zmid
    assert h_px.zmin == h_emb.zmin == -h_px.zmax and math.isclose(h_px.zmax, 1.0)  # |log10 0.1x| = 1
    assert h_px.colorscale == h_emb.colorscale
    assert all(h.z[i][i] is None for h in (h_px, h_emb) for i in range(3))
    assert h_px.text[0][1] == "2.3×" and h_px.text[1][2] == "0.5×" and h_px.text[0][2] == "1×"
    assert h_emb.text[0][1] == "0.1×" and h_emb.text[1][2] == "4×" and h_px.text[0][0] == ""
    assert math.isclose(h_px.z[0][1], math.log10(2.3)) and math.isclose(h_emb.z[0][1], -1.0)
    bar = h_px.colorbar
    assert "1×" in bar.ticktext and "0.1×" in bar.ticktext and "10×" in bar.ticktext and "2×" in bar.ticktext
    assert all(math.isclose(v, math.log10(float(t[:-1]))) for v, t in zip(bar.tickvals, bar.ticktext))
    assert list(bar.tickvals) == list(h_emb.colorbar.tickvals)


def test_distance_scale_is_at_least_a_factor_two():
    px = [[0.0, 2.2], [2.2, 0.0]]  # 1.1x
    emb = [[0.0, 0.45], [0.45, 0.0]]  # 0.9x
    f_px, f_emb = distance_figures(fake_result(k=2, px=px, emb=emb, shift=2.0, ref=0.5))
    assert math.isclose(f_px.data[0].zmax, math.log10(2)) and f_emb.data[0].zmin == -f_px.data[0].zmax
    assert list(f_px.data[0].colorbar.ticktext) == ["0.5×", "1×", "2×"]


def test_distance_figures_degenerate_layer_shows_raw_distances():
    emb = [[0.0, 1e-9], [1e-9, 0.0]]
    f_px, f_emb = distance_figures(fake_result(k=2, px=[[0.0, 4.0], [4.0, 0.0]], emb=emb, shift=2.0, ref=0.0))
    assert "is 0" in f_emb.layout.title.text and f_emb.data[0].z[0][1] == 1e-9 and f_emb.data[0].z[0][0] is None
    assert f_px.data[0].zmid == 0 and f_px.data[0].text[0][1] == "2×"
    f_emb.to_json()
    rows = list(csv.DictReader(io.StringIO(distances_csv(fake_result(k=2, emb=emb, ref=0.0)))))
    assert rows[0]["embedding_ratio"] == "" and rows[0]["embedding_l2"] == "1e-09"


def test_distances_csv():
    r = fake_result(k=3)
    rows = list(csv.DictReader(io.StringIO(distances_csv(r))))
    assert list(rows[0]) == ["seed_i", "seed_j", "pixel_l2", "pixel_ratio", "embedding_l2", "embedding_ratio"]
    assert [(x["seed_i"], x["seed_j"]) for x in rows] == [("0", "1"), ("0", "2"), ("1", "2")]
    assert math.isclose(float(rows[0]["pixel_ratio"]), 2.3) and math.isclose(float(rows[0]["embedding_ratio"]), 0.1)


def test_one_seed_does_not_crash():
    f_px, f_emb = distance_figures(fake_result(k=1))
    assert [list(row) for row in f_px.data[0].z] == [[None]] and f_px.data[0].zmax == pytest.approx(math.log10(2))
    assert distances_csv(fake_result(k=1)).strip() == "seed_i,seed_j,pixel_l2,pixel_ratio,embedding_l2,embedding_ratio"


# --------------------------------------------------------------------------- written files


def test_write_inversion_and_write_curve(tmp_path):
    from PIL import Image

    r = fake_result(k=2)
    write_inversion(r, tmp_path / "inv")
    with Image.open(tmp_path / "inv" / "grid.png") as im:
        assert im.width >= 3 * 128
    from core.studies.curve import CurveRow

    rows = [CurveRow(ck, f"layer{d}", d, f"Conv{d + 1}", fake_result(k=2, layer=f"layer{d}"))
            for ck in ("untrained", "trained") for d in range(3)]
    settings = {"model": "resnet18", "checkpoints": ["untrained", "trained"], "size": SIZE, "seeds": [0, 1],
                "preset": "default", "iters": 3}
    data = write_curve(rows, settings, image(0), tmp_path / "curve")
    assert len(data["rows"]) == 6
    with open(tmp_path / "curve" / "curve.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    html = (tmp_path / "curve" / "curve.html").read_text()
    assert "untrained vs trained" in html and "3 stops" in html and "preset default" in html  # the title
    with Image.open(tmp_path / "curve" / "gallery.png") as im:
        assert im.width >= 4 * 128 and im.height >= 2 * 128


def test_grids_draw_with_the_bitmap_fallback_font(monkeypatch):
    """Old Pillow (no sized default font) or no FreeType: the small bitmap font, Latin-1 only, still draws."""
    from PIL import ImageFont

    import core.report.draw
    import core.report.files

    if not hasattr(ImageFont, "load_default_imagefont"):
        pytest.skip("this Pillow has no separate bitmap default font")
    for module in (core.report.draw, core.report.files):  # every module that picks the grids' font
        monkeypatch.setattr(module, "get_font", lambda size: ImageFont.load_default_imagefont())
    r = fake_result(k=2, conv=[True, False])
    assert result_grid(r, title="résumé · ≤ 3 steps · ✓ … ‖a′−a‖₂").width >= 3 * 128
    rows = [Row("untrained", f"l{d}", d, "stage → block ✓", fake_result(k=1, conv=[d != 1])) for d in range(3)]
    assert gallery(rows, image(0), title="≤ 200 steps").width >= 4 * 128


# --------------------------------------------------------------------------- long labels survive


LONG = [("conv_stem", "stem conv"), ("bn1", "stem conv + BN + ReLU6"), ("encoder.layers.encoder_layer_11",
        "encoder block 12"), ("global_pool", "global average pool"), ("bn2", "head conv + BN + ReLU6")]


def drawn_text(monkeypatch) -> list[str]:
    """Every string the grids draw, in order (PIL's ImageDraw.text, recorded)."""
    from PIL import ImageDraw

    seen: list[str] = []
    real = ImageDraw.ImageDraw.text

    def record(self, xy, text, *args, **kwargs):
        seen.append(str(text))
        return real(self, xy, text, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", record)
    return seen


def joined(lines: list[str]) -> str:
    """Consecutive drawn lines as one text, so a label wrapped onto two lines reads whole."""
    return " ".join(lines).replace(". ", ".").replace("_ ", "_")


def test_tick_label_wraps_instead_of_cutting():
    from core.report.text import tick_label, wrap_words

    assert tick_label("stem conv + BN + ReLU6") == "stem conv + BN +<br>ReLU6"
    assert tick_label("encoder.layers.encoder_layer_11") == "encoder.layers.<br>encoder_layer_11"  # at the dots
    assert tick_label("logits") == "logits"
    assert all(len(line) <= 18 for line in tick_label("a very long label that cannot fit two lines").split("<br>"))
    # past two lines a node name loses its middle, not its specific end
    one = wrap_words("features.12.conv.3.block.deep.inside.module.xyz_abc", lambda t: len(t) <= 18, max_lines=1)
    assert len(one) == 1 and one[0].startswith("features") and one[0].endswith("xyz_abc") and "…" in one[0]


def test_compare_gallery_draws_long_labels_and_nodes_in_full(monkeypatch):
    from core.report.compare import compare_gallery
    from core.studies.compare import CompareRow

    rows = [CompareRow(m, len(LONG), Row(ck, node, d, label, fake_result(k=1, conv=[d != 1])))
            for m in ("efficientnet_lite0", "resnet18") for ck in ("untrained", "trained")
            for d, (node, label) in enumerate(LONG)]
    seen = drawn_text(monkeypatch)
    compare_gallery(rows, image(0), bins=[(d + 1) / len(LONG) for d in range(len(LONG))], title="t")  # every stop
    assert not any("…" in t for t in seen), [t for t in seen if "…" in t]
    text = joined(seen)
    for node, label in LONG:
        assert label in text and node in text, (label, node)
    assert "efficientnet_lite0 · untrained" in text  # the row names too


def test_gallery_and_lab_grid_row_names_wrap_rather_than_cut(monkeypatch):
    seen = drawn_text(monkeypatch)
    rows = [Row(ck, node, d, label, fake_result(k=1)) for ck in ("untrained", "a_checkpoint_with_a_long_name.pth")
            for d, (node, label) in enumerate(LONG)]
    gallery(rows, image(0))
    labelled_grid([[image(0), image(1)]], ["original", "width 0.5x"],
                  ["leaky_relu, depth 4: pinv"], side=120)  # wider than the margin: two lines
    assert not any("…" in t for t in seen), [t for t in seen if "…" in t]
    text = joined(seen)
    assert "a_checkpoint_with_a_long_name.pth" in text
    assert "leaky_relu, depth 4: pinv" in text
    for node, label in LONG:
        assert label in text and node in text, (label, node)


def test_lab_jacobian_axis_labels_in_full():
    from core.report.lab import jacobian_figure

    rows = [{"layer": node, "label": label, "depth": float(d), "output_dim": 10, "rank": 5, "input_dim": 12,
             "sigma_max": 2.0, "sigma_min": 0.1, "seconds": 0.5, "rank_fraction": 0.4, "dim_ratio": 1.2,
             "log10_condition": 1.3} for d, (node, label) in enumerate(LONG)]
    fig = jacobian_figure(rows, "t")
    ax = fig.layout.xaxis2  # the bottom panel carries the ticks
    assert [t.replace("<br>", " ") for t in ax.ticktext] == [label for _, label in LONG]
    assert "stem conv + BN +<br>ReLU6" in ax.ticktext and ax.automargin
    assert not any("…" in t for t in ax.ticktext)


def test_a_checkpoint_has_one_colour_on_every_chart():
    """Untrained is blue and trained red on the curve, the Sweeps summary and the comparison, whatever their order;
    another checkpoint takes a colour of its own."""
    from core.report.compare import compare_figure
    from core.report.sweep import summary_figure
    from core.report.text import CHECKPOINT_COLOURS, checkpoint_colour

    def colours(fig):
        return {t.name.split(" · ")[-1]: t.line.color for t in fig.data if t.showlegend is not False and t.name}

    rows = [{"checkpoint": ck, "depth": d, "layer": f"l{d}", "label": f"l{d}", "model": "m", "relative_depth": d / 2,
             "metrics": {"clarity": [0.5], "converged": [True]}, "clarity": 0.5, "status": "converged"}
            for ck in ("trained", "untrained") for d in (1, 2)]
    summary = [{"model": "m", "checkpoint": ck, "relative_depth": d / 2, "label": f"l{d}", "layer": f"l{d}", "n": 4,
                "converged_fraction": 1.0, "clarity_mean": 0.5, "clarity_ci_low": 0.4, "clarity_ci_high": 0.6}
               for ck in ("trained", "untrained") for d in (1, 2)]
    for fig in (curve_figure(rows), summary_figure(summary), compare_figure(rows)):
        got = colours(fig)
        assert got["trained"] == CHECKPOINT_COLOURS["trained"] and got["untrained"] == CHECKPOINT_COLOURS["untrained"]
    mine = checkpoint_colour("file:mine.pth", ["untrained", "file:mine.pth"])
    assert mine not in CHECKPOINT_COLOURS.values() and mine != checkpoint_colour("hub:x", ["file:mine.pth", "hub:x"])
