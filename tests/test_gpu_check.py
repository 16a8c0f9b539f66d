"""`make gpu-check` rehearsed on the CPU: the one GPU call must not fail on a bug the CPU could have shown.

The dry run goes through every section (CUDA tests, benchmark, torch.compile, app load test) at tiny
sizes and writes its JSON and markdown to the folder given, never to BENCHMARKS.md. Both runs hide
any GPU (CUDA_VISIBLE_DEVICES=""), so they test the same thing on every machine.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def test_gpu_section_is_replaced_not_duplicated():
    from benchmarks.gpu import GPU_END, GPU_START, Config, gpu_block, markdown, splice

    report = {"date": "2026-01-01T00:00:00", "device": "NVIDIA H200", "memory_gb": 139.8, "json": "x.json",
              "seconds": 300.0, "versions": {"torch": "2.11", "cuda": "12.8", "cudnn": 90000},
              "peak_tflops": {"bf16": 989.0, "tf32": 494.5, "source": "data sheet (h200)"}, "targets": [],
              "sections": {}, "benchmark": {"layer4": {"off (torch defaults)": {"error": "E"}},
                                            "compile": {"skipped": "330 s already spent"}}}
    block = markdown(Config.gpu(), report)
    assert block.startswith(GPU_START) and block.rstrip().endswith(GPU_END)
    assert "not run (--skip)" in block and "skipped: 330 s already spent" in block and "error: E" in block
    once = splice("# Benchmarks\n\nCPU tables\n", block)
    twice = splice(once, block.replace("NVIDIA H200", "NVIDIA H100"))
    assert twice.count(GPU_START) == 1 and "NVIDIA H100" in twice and "NVIDIA H200" not in twice
    assert twice.startswith("# Benchmarks\n\nCPU tables\n") and gpu_block(twice) == gpu_block(twice.strip())


def test_gpu_check_without_cuda_fails_loudly(root):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--gpu"], cwd=root, env=ROOT_ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "--dry-run" in lines[0], proc.stderr


def test_gpu_check_dry_run_end_to_end(root, tmp_path):
    pytest.importorskip("streamlit")  # the load test drives the app
    md = root / "BENCHMARKS.md"
    before = md.read_bytes() if md.exists() else None
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--gpu", "--dry-run", "--out", str(tmp_path)],
                          cwd=root, env=ROOT_ENV, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert (md.read_bytes() if md.exists() else None) == before, "a dry run must not touch BENCHMARKS.md"
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1, files
    report = json.loads(files[0].read_text())
    assert report["dry_run"] is True
    assert not [k for k, v in report["sections"].items() if v.get("error")], report["sections"]
    tests = report["cuda_tests"]
    assert tests["ok"] and tests["failed"] == 0 and tests["skipped"] >= 4  # every CUDA test skips on the CPU
    bench = report["benchmark"]
    assert {"flops", "layer4", "curve_resnet50", "curve_lite0", "curve_resnet50_graphs", "curve_lite0_graphs",
            "curve_resnet50_sequential", "first_frame", "live_loop", "compile"} <= set(bench)
    live = bench["live_loop"]
    assert {"auto", "auto + async snapshots", "auto + cuda graphs", "auto + cuda graphs + async snapshots"} <= set(live)
    assert all(0 <= live[k]["hidden"] <= 1 and live[k]["drawing_s"] > 0 for k in live if isinstance(live[k], dict))
    assert {"off (torch defaults)", "channels_last", "bf16 autocast", "auto", "auto + cuda graphs",
            "auto + cuda graphs + bf16"} <= set(bench["layer4"])
    assert bench["layer4"]["auto + cuda graphs"]["options"]["cuda_graphs"] is True
    assert bench["layer4"]["auto + cuda graphs"]["cuda_graphs"] is None  # the option means nothing on the CPU
    assert bench["curve_resnet50_graphs"]["speed"]["cuda_graphs"] is True
    assert all("seconds" in v for v in bench["layer4"].values())
    assert "seconds" in bench["compile"]["auto + compile"]
    for key in ("curve_resnet50", "curve_lite0", "curve_resnet50_graphs", "curve_lite0_graphs",
                "curve_resnet50_sequential"):
        c = bench[key]
        assert c["runs"] == 4 and all(r["steps_done"] >= 1 for r in c["rows"]) and c["seed_steps"] > 0
        assert c["together"] == (key != "curve_resnet50_sequential")  # batched stops, and the sequential check
    same = zip(bench["curve_resnet50"]["rows"], bench["curve_resnet50_sequential"]["rows"])
    assert all(abs(a["clarity"] - b["clarity"]) <= 1e-3 for a, b in same)
    assert bench["first_frame"]["seconds"] > 0
    load = report["load_test"]
    problems = [(s["session"], phase, s[phase].get("errors"), s[phase].get("exceptions"))
                for s in load["sessions"] for phase in ("alone", "together") if not s[phase].get("ok")]
    assert len(load["sessions"]) == 4 and all(s["error_free"] for s in load["sessions"]), problems
    assert load["queue"]["max_waiting"] >= 1  # the four went through the one device queue
    whats = [t["what"] for t in report["targets"]]
    assert len(whats) == 6 and all(t["measured_s"] for t in report["targets"])
    assert all(t["flop_ratio"] for t in report["targets"][:4])
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "<!-- gpu:start -->" in text and "<!-- gpu:end -->" in text and "DRY RUN" in text
    assert "wrote" in proc.stdout and "CUDA tests:" in proc.stdout


def test_curve_targets_take_the_graphed_curve_only_where_it_replayed_and_was_faster():
    from benchmarks.gpu import Config, targets

    def curve(seconds, graphs=None):
        return {"seconds": seconds, "rows": [], "runs": 44, "seeds": 4, "size": 224, "together": True,
                "seed_steps": 100, "engine_seconds": seconds, "cuda_graphs": graphs}

    peak = {"bf16": 989.0, "tf32": 494.5, "source": "test"}
    replayed = {"recorded": 30, "replays": 800, "failed": []}
    failed = {"recorded": 0, "replays": 0, "failed": ["RuntimeError: capture failed"]}
    cases = [(curve(25.0, replayed), 20.0, "summed; with CUDA graphs 25.00 s"),
             (curve(5.0, replayed), 5.0, "with CUDA graphs; without graphs 20.00 s"),
             (curve(5.0, failed), 20.0, "CUDA graphs failed to record: RuntimeError: capture failed")]
    for graphed, measured, note in cases:
        rows = targets(Config.gpu(), {"peak_tflops": peak, "benchmark": {"curve_resnet50": curve(20.0),
                                                                          "curve_resnet50_graphs": graphed}})
        (row,) = rows
        assert row["measured_s"] == measured and row["pass"] is (measured <= 15.0)
        assert row["note"].endswith(note), row["note"]


def test_app_config_loads_for_a_streamlit_outside_site_packages(root, tmp_path):
    """The GPU machine gets streamlit by `pip install --target` into a plain folder; streamlit then defaults to
    development mode, which refuses a `server.port` in .streamlit/config.toml. That killed the first AppTest
    session of the H200 check (a KeyError on SCRIPT_RUN_WITHOUT_ERRORS). The project's config must load there."""
    streamlit = pytest.importorskip("streamlit")
    site = tmp_path / "plain"
    site.mkdir()
    (site / "streamlit").symlink_to(os.path.dirname(streamlit.__file__))
    code = ("import streamlit, streamlit.config as c; assert 'site-packages' not in streamlit.__file__; "
            "assert c.get_option('global.developmentMode') is True; c.get_config_options(); print('ok')")
    env = {**ROOT_ENV, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_comparisons_give_way_to_the_load_test(monkeypatch):
    """Past OPTIONAL_BY_S the benchmark's comparisons are skipped (not errors) and the markdown says so; the
    targets before them still run."""
    import benchmarks.gpu as gpu

    cfg = gpu.Config.gpu()
    ran = []
    monkeypatch.setattr(gpu, "T0", gpu.time.perf_counter() - gpu.OPTIONAL_BY_S - 1)
    for name in ("stop_flops", "speed_variants", "curve_run", "first_frame", "live_loop"):
        monkeypatch.setattr(gpu, name, lambda *a, name=name, **k: ran.append(name) or (
            {} if name == "speed_variants" else {"seconds": 1.0}))
    monkeypatch.setattr(gpu, "step_flops_exact", lambda *a, **k: {"step_per_seed": 1, "build": 1})
    monkeypatch.setattr(gpu, "load_model", lambda *a, **k: None)
    monkeypatch.setattr(gpu, "load_image", lambda *a, **k: None)
    monkeypatch.setattr(gpu, "current_flags", lambda: {})
    report = {"benchmark": {}, "sections": {}}
    gpu.benchmark(cfg, report)
    bench = report["benchmark"]
    assert ran.count("curve_run") == 2 and "live_loop" not in ran  # the two target curves only
    for name in ("live_loop", "curve_resnet50_graphs", "curve_lite0_graphs", "curve_resnet50_sequential"):
        assert "skipped" in bench[name] and "error" not in bench[name]
    report.update(date="2026-01-01T00:00:00", device="NVIDIA H200", memory_gb=139.8, json="x.json", seconds=300.0,
                  versions={"torch": "2.11", "cuda": "13.0", "cudnn": 91900}, targets=[],
                  peak_tflops={"bf16": 989.0, "tf32": 494.5, "source": "test"})
    assert "Comparisons skipped for time: live_loop" in gpu.markdown(cfg, report)
