"""Models side by side (core/studies/compare.py, core/report/compare.py, core/cli/compare.py, pages/6_compare.py) on
tiny CPU settings."""

import csv
import json
from types import SimpleNamespace

import pytest

from app_helpers import _cache_dir, app, errors, ok  # noqa: F401  (_cache_dir: autouse fixture)
from core.models.registry import ARCHITECTURES
from core.models.checkpoints import load_model, trained_status
from core.report.compare import compare_gallery
from core.studies.compare import (
    CompareRow, align, check_sizes, common_sizes, default_bins, iter_compare, layers_for, plan_compare, spread
)
from core.studies.curve import relative_depth
from core.models.encoder import depth_stops, forward_position, graph_nodes
from core.errors import UserError

# the one tiny comparison every test below shares (the run cache makes its second use instant)
TINY = ["--models", "resnet18,efficientnet_lite0", "--checkpoints", "untrained,trained", "--layers", "2",
        "--size", "32", "--seeds", "1", "--iters", "10", "--device", "cpu", "--quiet"]


def cli(argv) -> int:
    """`python -m core compare ...`."""
    from core.cli.main import main

    return main(["compare", *argv])


# --------------------------------------------------------------------------- relative depth


def test_relative_depth_runs_from_the_input_to_the_logits():
    assert relative_depth(0, 4) == 0.25 and relative_depth(3, 4) == 1.0
    assert relative_depth(1.5, 4) == pytest.approx(0.625)  # a graph node after stop 1
    assert relative_depth(-0.5, 4) == pytest.approx(0.125)  # a node before the first stop
    assert all(0 <= relative_depth(d, 7) <= 1 for d in [-0.5, 0, 2.5, 6])
    with pytest.raises(ValueError):
        relative_depth(0, 0)


def test_spread_keeps_the_first_stop_and_the_logits():
    assert spread(14, 6)[0] == 0 and spread(14, 6)[-1] == 13 and len(spread(14, 6)) == 6
    assert spread(14, 6) == sorted(set(spread(14, 6)))
    assert spread(3, 6) == [0, 1, 2] and spread(5, 1) == [4] and spread(5, 2) == [0, 4]


def test_every_registered_architecture_ends_at_its_logits():
    """All 10 architectures, untrained, at their smallest valid size (about 12 s on a 2-core CPU)."""
    assert len(ARCHITECTURES) >= 10
    for name in ARCHITECTURES:
        size = common_sizes([name])[0]
        model = load_model(name, "untrained", size)
        stops = depth_stops(model)
        last = stops[-1]
        # the last stop is the graph's output: no node runs after it
        assert forward_position(model, last.node) == max(forward_position(model, n) for n in graph_nodes(model)), name
        assert "logits" in last.label, (name, last.label)
        rel = [relative_depth(d, len(stops)) for d, _, _ in layers_for(model, "stops")]
        assert all(0 < r <= 1 for r in rel) and rel == sorted(rel) and len(set(rel)) == len(rel), name
        assert rel[-1] == 1.0 and rel[0] == pytest.approx(1 / len(stops)), name
        thin = [relative_depth(d, len(stops)) for d, _, _ in layers_for(model, 4)]
        assert len(thin) == min(4, len(stops)) and thin[-1] == 1.0 and thin == sorted(thin), name


def test_sizes_are_checked_for_every_model_first():
    check_sizes(["resnet18", "vit_b_16", "vgg16"], 32)
    with pytest.raises(UserError, match=r"vit_b_16.*multiple of 16.*every chosen model takes 32 px"):
        check_sizes(["resnet18", "vit_b_16"], 40)
    with pytest.raises(UserError, match=r"inception_v3: use at least 75.*every chosen model takes 75"):
        check_sizes(["resnet18", "inception_v3"], 64)
    assert common_sizes(["alexnet", "vit_b_16"]) == (64, 16)


# --------------------------------------------------------------------------- the gallery's alignment


def _row(model: str, depth: float, n: int, ck: str = "untrained") -> CompareRow:
    return CompareRow(model, n, SimpleNamespace(depth=depth, checkpoint=ck, layer=f"s{depth}", label=f"s{depth}"))


def test_gallery_cells_are_the_stops_nearest_each_relative_depth():
    a = [_row("a", d, 4) for d in range(4)]  # 0.25, 0.5, 0.75, 1
    b = [_row("b", d, 10) for d in range(10)]  # 0.1 ... 1
    cells = align(a + b, [0.3, 0.6, 1.0])
    assert [r.relative_depth for r in cells["a · untrained"]] == [0.25, 0.5, 1.0]
    assert [r.relative_depth for r in cells["b · untrained"]] == [0.3, 0.6, 1.0]
    assert [r.relative_depth for r in align(a, [0.375])["a · untrained"]] == [0.25]  # a tie: the shallower
    assert default_bins(b) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # long curves: tenths
    c = [_row("c", d, 10) for d in spread(10, 4)]  # 4 stops of 10: 0.1, 0.4, 0.7, 1
    assert default_bins(a + c) == [0.175, 0.45, 0.725, 1.0]  # k stops per model: the mean of each one's depth
    for line in (a, c):  # every stop shown once, in forward order
        assert [r.layer for r in align(a + c, default_bins(a + c))[line[0].line]] == [r.layer for r in line]


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def tiny_out(tmp_path_factory, chelsea_path):
    out = tmp_path_factory.mktemp("compare")
    return out, cli([*TINY, "--image", str(chelsea_path), "--out", str(out)])


def test_cli_writes_every_file_and_field(tiny_out):
    out, code = tiny_out
    assert code == 0
    data = json.loads((out / "compare.json").read_text())
    resnet_trained = trained_status("resnet18")["cached"]
    lines = {(r["model"], r["checkpoint"]) for r in data["rows"]}
    assert lines == {("resnet18", "untrained"), ("efficientnet_lite0", "untrained"), ("efficientnet_lite0", "trained")}
    if not resnet_trained:  # torchvision's weights are not on this machine: skipped with a note saying how to get them
        assert any("resnet18 × trained" in s and "python -m core download resnet18" in s for s in data["skipped"])
    for key in ("model", "checkpoint", "layer", "label", "depth", "relative_depth", "clarity", "status", "converged",
                "ssim_mean", "clarity_min", "clarity_max", "mg_over_mr_max", "steps_done", "n_stops"):
        assert all(key in r for r in data["rows"]), key
    for model, ck in lines:
        rel = [r["relative_depth"] for r in data["rows"] if (r["model"], r["checkpoint"]) == (model, ck)]
        assert len(rel) == 2 and 0 < rel[0] < rel[1] == 1.0  # first stop and logits, in forward order
    assert data["models"] == ["resnet18", "efficientnet_lite0"] and data["size"] == 32 and data["seeds"] == [0]
    with open(out / "compare.csv") as f:
        assert len(list(csv.DictReader(f))) == len(data["rows"])
    html = (out / "compare.html").read_text()
    assert "plotly" in html[:400000].lower() and "relative depth" in html
    from PIL import Image

    with Image.open(out / "gallery.png") as gal:
        assert gal.height >= 3 * 128 and gal.width >= 3 * 128  # three lines, original + 2 columns of >= 128 px


def test_cli_second_run_comes_from_the_cache(tiny_out, chelsea_path, tmp_path, capsys):
    code = cli([*TINY, "--image", str(chelsea_path), "--out", str(tmp_path)])
    assert code == 0
    captured = capsys.readouterr()
    n = 8 if trained_status("resnet18")["cached"] else 6
    assert f"{n} runs over" in captured.out and f"({n} from the cache)" in captured.out
    if n == 6:
        assert "note: skipped resnet18 × trained" in captured.err and len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra,msg", [
    (["--models", "resnet18,vit_b_16", "--size", "40"], "does not fit vit_b_16: use a multiple of 16"),
    (["--models", "resnet18,inception_v3", "--size", "64"], "too small for inception_v3: use at least 75"),
    (["--models", "resnet18,vgg16", "--size", "32", "--layers", "layer1"], "unknown layer 'layer1' for vgg16"),
    (["--models", "resnet18,nope", "--size", "32"], "unknown model 'nope'"),
    (["--models", "resnet18", "--size", "32", "--layers", "0"], "--layers"),
    (["--models", "resnet18", "--size", "32", "--bins", "0.5,2"], "--bins"),
    pytest.param(["--models", "resnet18", "--size", "32", "--checkpoints", "trained"],
                 "nothing to compare: skipped resnet18 × trained", id="only-missing-weights",
                 marks=pytest.mark.skipif(trained_status("resnet18")["cached"], reason="resnet18 weights on disk")),
])
def test_cli_bad_settings_give_one_line_and_exit_2(chelsea_path, tmp_path, capsys, extra, msg):
    code = cli([*extra, "--image", str(chelsea_path), "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and msg in err, err
    assert not (tmp_path / "x").exists()  # checked before any run or file


def test_gallery_from_the_api_aligns_rows_of_every_line(tiny_out, chelsea32):
    lines, skipped = plan_compare("resnet18,efficientnet_lite0", ["untrained"], 32, layers=2)
    assert not skipped and [x.name for x in lines] == ["resnet18 · untrained", "efficientnet_lite0 · untrained"]
    rows = list(iter_compare(lines, chelsea32, seeds=[0], preset=_tiny_preset(), device="cpu"))
    assert all(r.cached for r in rows)  # the CLI's runs: one pipeline, one cache
    gal = compare_gallery(rows, chelsea32, bins=[0.0, 0.5, 1.0], title="t")
    assert gal.width >= 4 * 128 and gal.height >= 2 * 128
    assert json.dumps([r.to_json() for r in rows])  # JSON-able


def _tiny_preset():
    from core.recipe.presets import get_preset

    return get_preset("default", iters=10)


# --------------------------------------------------------------------------- the page


def test_compare_page_runs_a_tiny_comparison(tiny_out):
    at = app()
    at.run()
    at.switch_page("pages/6_compare.py")
    at.run()
    ok(at)
    assert not at.error, errors(at)
    assert at.button(key="cmp_run")  # renders with the defaults, nothing run yet
    assert at.multiselect(key="cmp_models").value == ["resnet18", "vgg16", "efficientnet_lite0"]
    at.multiselect(key="cmp_models").set_value(["resnet18", "efficientnet_lite0"])
    at.multiselect(key="cmp_cks").set_value(["untrained", "trained"])
    at.slider(key="cmp_per").set_value(2)
    at.slider(key="cmp_seeds").set_value(1)
    at.number_input(key="cmp_iters").set_value(10)
    at.select_slider(key="cmp_size").set_value(32)
    at.run()
    ok(at)
    if not trained_status("resnet18")["cached"]:
        assert any("resnet18 × trained" in i.value for i in at.info)  # skipped, and the page says why
    at.button(key="cmp_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    rows = at.session_state["cmp_view"]["rows"]
    assert len(rows) == 6 and {r.line for r in rows} == {
        "resnet18 · untrained", "efficientnet_lite0 · untrained", "efficientnet_lite0 · trained"}
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    lines = [t for t in spec["data"] if t.get("mode") == "lines+markers"]
    assert len(lines) == 3 and all(t["x"][-1] == 1.0 and 0 < t["x"][0] < 1 for t in lines)
    assert spec["layout"]["xaxis"]["ticktext"][0] == "0 input" and spec["layout"]["xaxis"]["ticktext"][-1] == "1 logits"
    assert len(at.get("download_button")) == 3
    assert at.query_params["models"] in ("resnet18,efficientnet_lite0", ["resnet18,efficientnet_lite0"])
