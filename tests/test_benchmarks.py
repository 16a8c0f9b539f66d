"""The benchmark runner works end to end in its tiny mode; the baselines measure the same problem."""

import json

import torch

from benchmarks import runner
from benchmarks.baselines import library_style, paper_style
from core import Inversion, get_preset, load_image, load_model
from core.engine.speed import SpeedOptions


def test_baselines_start_where_the_engine_starts():
    """Same start, target and loss: every loop's first m_g equals the engine's, per seed."""
    model = load_model("resnet18", "untrained", 32)
    preset = get_preset("paper", iters=3)
    run = Inversion(model, "layer2", load_image("assets/chelsea.png", 32), [4, 7], preset, "cpu",
                    speed=SpeedOptions.off())
    res = run.run()
    first = [h[0] for h in res.history["embedding_l2"]]
    for fn in (paper_style, library_style):
        hist, finals, times = fn(model, "layer2", run.y, [4, 7], 32, 3, torch.device("cpu"))
        assert [len(h) for h in hist] == [3, 3] and [len(t) for t in times] == [3, 3]
        assert finals.shape == (2, 3, 32, 32)
        assert [h[0] for h in hist] == [torch.tensor(v).item() for v in first] or all(
            abs(a - b) < 1e-3 * b for a, b in zip([h[0] for h in hist], first))
    assert all(not p.requires_grad for p in model.module.parameters())  # baselines copy, never unfreeze


def test_tiny_suite_writes_json_and_markdown(tmp_path, capsys):
    md = tmp_path / "BENCH.md"
    assert runner.main(["--tiny", "--out", str(tmp_path), "--markdown", str(md)]) == 0
    files = list(tmp_path.glob("cpu-*.json"))
    assert len(files) == 1
    report = json.loads(files[0].read_text())
    assert report["mode"] == "tiny" and report["versions"]["torch"] == torch.__version__
    row = report["throughput"][0]
    for name in ("engine", "paper", "library"):
        assert row[name]["seed_iters_per_s"] > 0 and row[name]["peak_mb"] > 0
    assert row["engine_vs_paper"] > 0 and row["engine_vs_library"] > 0
    tq = report["time_to_quality"][0]
    assert {"engine_default", "engine_paper", "paper_style_paper"} <= set(tq)
    assert {"plain fp32", "channels_last", "bf16 autocast"} <= set(report["techniques"]["variants"])
    assert report["chunking"]["stops"] and set(report["targets"]) == {"paper_3x", "library_4x", "ttq_5x"}
    text = md.read_text()
    assert "| model | layer |" in text and report["device"] in text
    out = capsys.readouterr().out
    assert "engine/paper" in out and str(files[0]) in out


def test_the_estimate_benchmark_prints_and_writes_its_numbers(tmp_path, capsys):
    """`python -m benchmarks estimate`, tiny: one idle run, its numbers in the JSON and the markdown section."""
    import json

    from benchmarks.estimate import main

    md = tmp_path / "B.md"
    md.write_text("# Benchmarks\n")
    assert main(["--runs", "1", "--ways", "idle", "--size", "32", "--iters", "20", "--json", str(tmp_path / "e.json"),
                 "--markdown", str(md)]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    (run,) = report["ways"][0]["runs"]
    assert run["actual_s"] > 0 and run["estimate_for_steps_s"] > 0 and run["steps"] >= 1
    assert report["summary"]["runs"] == 1
    assert "<!-- estimate:start -->" in md.read_text() and "within 2x" in capsys.readouterr().out


def test_the_findings_benchmark_times_a_report_from_an_empty_cache(tmp_path, capsys):
    import json

    from benchmarks.findings import main

    md = tmp_path / "B.md"
    assert main(["--models", "resnet18", "--checkpoints", "untrained", "--images", "assets/chelsea.png,assets/coffee.png",
                 "--size", "32", "--seeds", "1", "--iters", "10", "--device", "cpu", "--json", str(tmp_path / "f.json"),
                 "--markdown", str(md)]) == 0
    numbers = json.loads((tmp_path / "f.json").read_text())
    assert numbers["runs"] == 28 + 16 and numbers["seconds"] > 0 and numbers["steps"] >= 28  # the sweep, the lab
    assert "<!-- findings:start -->" in md.read_text() and "| finding |" in md.read_text()
    assert "aim 600 s" in capsys.readouterr().out
