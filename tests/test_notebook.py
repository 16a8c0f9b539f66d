"""Notebook use: docs/notebook_example.py runs, results and curves display themselves, progress bars fill up."""

from __future__ import annotations

import io
import os
import runpy
import sys
import types
from html import escape

import pytest

from core import Curve, InversionResult, curve, get_preset, invert
from core.engine import result as result_module
from core.engine.loop import in_notebook, progress_bar
from core.engine.run_reading import reading

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def example(root):
    """The docs example's namespace, at its tiny size (32 px, 4 steps; runs go to the tests' throw-away cache)."""
    old = os.environ.get("NOTEBOOK_EXAMPLE_TINY")
    os.environ["NOTEBOOK_EXAMPLE_TINY"] = "1"
    try:
        return runpy.run_path(str(root / "docs" / "notebook_example.py"), run_name="__main__")
    finally:
        if old is None:
            os.environ.pop("NOTEBOOK_EXAMPLE_TINY", None)
        else:
            os.environ["NOTEBOOK_EXAMPLE_TINY"] = old


def test_example_runs_and_uses_only_the_public_api(example, root):
    src = (root / "docs" / "notebook_example.py").read_text()
    assert all(line.startswith(("from core import", "import os")) for line in src.splitlines()
               if line.startswith(("import", "from")))
    assert isinstance(example["result"], InversionResult) and isinstance(example["c"], Curve)
    assert example["result"].checkpoint == "trained" and example["untrained_result"].checkpoint == "untrained"
    assert example["result"].seeds == [0, 1] and example["result"].size == 32
    c = example["c"]
    assert len(c.rows) == 6 and {r.checkpoint for r in c.rows} == {"untrained", "trained"}
    assert len({r.layer for r in c.rows}) == 3


def test_result_displays_as_png_and_html(example):
    r = example["result"]
    png = r._repr_png_()
    assert isinstance(png, bytes) and png.startswith(PNG)
    html = r._repr_html_()
    assert html.startswith("<div>") and "data:image/png;base64," in html
    for name in ("clarity", "m_g", "m_i", "m_r", "SSIM", "converged"):
        assert f">{name}<" in html
    m = r.metrics
    assert f"{m['ssim'][1]:.3f}" in html and f"{m['embedding_l2'][0]:.3f}" in html and f"{m['reference_l2']:.3f}" in html
    assert escape(reading(r)) in html


def test_result_text_is_one_line_and_its_reading(example):
    r = example["result"]
    printed = []
    r._repr_pretty_(types.SimpleNamespace(text=printed.append), False)
    assert printed == [r.summary()]
    first, second = r.summary().split("\n")
    assert "efficientnet_lite0 · trained" in first and "clarity" in first and second == reading(r)


def test_a_display_that_fails_falls_back_to_text(example, monkeypatch):
    def broken(_):
        raise RuntimeError("no font")

    monkeypatch.setitem(result_module.DISPLAY, "png", broken)
    monkeypatch.delitem(result_module.DISPLAY, "html")
    assert example["result"]._repr_png_() is None and example["result"]._repr_html_() is None
    bad = Curve([object()], example["image"])  # a row that is not a CurveRow
    assert bad._repr_png_() is None and bad._repr_html_() is None


def test_curve_displays(example):
    c = example["c"]
    png = c._repr_png_()
    assert png.startswith(PNG)
    html = c._repr_html_()
    assert escape(c.title) in html and "data:image/png;base64," in html and "plotly" in html.lower()
    for r in c.rows:
        assert r.layer in html and f"{r.result.metrics['clarity']:.3f}" in html
    fig = c.figure()
    assert sorted(t.name for t in fig.data if t.mode == "lines+markers") == ["trained", "untrained"]
    assert c.gallery().size[0] > 0 and len(c.table()) == 6 and "6 rows" in repr(c)


def test_invert_progress_bar_reaches_its_total(example):
    out = io.StringIO()
    preset = get_preset("default", iters=5)
    r = invert(example["trained"], example["stop"], example["image"], [0], preset, "cpu", progress=out)
    assert r.steps_done == 5
    text = out.getvalue()
    assert "5/5" in text and "100%" in text


def test_curve_progress_bar_reaches_its_total(example):
    out = io.StringIO()
    c = curve("efficientnet_lite0", example["image"], ["untrained", "trained"], 3, seeds=[0, 1],
              preset=example["preset"], models=[example["untrained"], example["trained"]], progress=out)
    assert [r.cached for r in c.rows] == [True] * 6  # the example's runs, from the cache
    assert "6/6" in out.getvalue() and "100%" in out.getvalue()


def test_no_bar_unless_asked_outside_a_notebook(example, capsys):
    assert not in_notebook()
    assert progress_bar(None, 5, "x") is None and progress_bar(False, 5, "x") is None
    invert(example["trained"], example["stop"], example["image"], [0], get_preset("default", iters=2), "cpu")
    captured = capsys.readouterr()
    assert "it/s" not in captured.err and "step/s" not in captured.err and "%|" not in captured.err


def test_notebook_is_a_jupyter_kernel(monkeypatch):
    class ZMQInteractiveShell:
        config: dict = {}

    class TerminalInteractiveShell:
        config: dict = {}

    fake = types.ModuleType("IPython")
    monkeypatch.setitem(sys.modules, "IPython", fake)
    fake.get_ipython = lambda: None
    assert not in_notebook()
    fake.get_ipython = TerminalInteractiveShell
    assert not in_notebook()
    fake.get_ipython = ZMQInteractiveShell
    assert in_notebook()
