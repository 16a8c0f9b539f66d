"""The command line contract: files, JSON fields, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from core.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_models_json(capsys):
    assert main(["models", "--json", "--size", "64"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = [m["name"] for m in listing]
    assert "resnet50" in names and "efficientnet_lite0" in names
    r18 = listing[names.index("resnet18")]
    assert r18["stops"][0] == {"layer": "conv1", "label": "Conv1 (before batch-norm)", "shape": [64, 32, 32]}
    lite = listing[names.index("efficientnet_lite0")]
    assert lite["trained_cached"] and lite["mean"] == [0.5, 0.5, 0.5]


def test_invert_writes_the_documented_files(tmp_path, chelsea_path, capsys):
    out = tmp_path / "inv"
    code = main(["invert", "--model", "resnet18", "--checkpoint", "untrained", "--layer", "layer1", "--image",
                 str(chelsea_path), "--size", "32", "--seeds", "2", "--iters", "12", "--device", "cpu",
                 "--out", str(out), "--quiet"])
    assert code == 0
    data = json.loads((out / "result.json").read_text())
    for key in ("model", "checkpoint", "layer", "size", "preset", "iters", "seeds", "device", "seconds", "metrics"):
        assert key in data
    assert data["seeds"] == [0, 1] and data["iters"] == 12 and data["size"] == 32
    for key in ("input_l2", "embedding_l2", "ssim", "psnr"):
        assert len(data["metrics"][key]) == 2
    for key in ("reference_l2", "shift_input_l2", "seed_spread_input", "seed_spread_embedding", "clarity"):
        assert isinstance(data["metrics"][key], float)
    assert {p.name for p in out.iterdir()} >= {"result.json", "original.png", "seed_0.png", "seed_1.png", "grid.png"}
    assert "clarity" in capsys.readouterr().out


def test_curve_writes_the_documented_files(tmp_path, chelsea_path):
    out = tmp_path / "curve"
    code = main(["curve", "--model", "efficientnet_lite0", "--checkpoints", "untrained,trained", "--layers",
                 "blocks.1.0,conv_stem", "--image", str(chelsea_path), "--size", "32", "--seeds", "0,4",
                 "--iters", "10", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0
    data = json.loads((out / "curve.json").read_text())
    assert data["model"] == "efficientnet_lite0" and data["seeds"] == [0, 4]
    rows = data["rows"]
    assert [(r["checkpoint"], r["layer"]) for r in rows] == [
        ("untrained", "conv_stem"), ("untrained", "blocks.1.0"), ("trained", "conv_stem"), ("trained", "blocks.1.0")]
    for key in ("depth", "clarity", "ssim_mean", "ssim_std", "input_l2_mean", "embedding_l2_mean", "reference_l2"):
        assert all(key in r for r in rows)
    assert rows[0]["depth"] < rows[1]["depth"]
    with open(out / "curve.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert "plotly" in (out / "curve.html").read_text()[:400000].lower()
    assert (out / "gallery.png").stat().st_size > 1000


@pytest.mark.parametrize("args,msg", [
    (["invert", "--model", "nope", "--layer", "x", "--image", "{img}", "--out", "{out}"], "unknown model 'nope'"),
    (["invert", "--model", "resnet18", "--layer", "blocks.1.0", "--image", "{img}", "--out", "{out}"],
     "unknown layer 'blocks.1.0' for resnet18"),
    (["invert", "--model", "resnet18", "--layer", "layer1", "--image", "{img}", "--out", "{out}", "--seeds", "0"],
     "--seeds"),
    (["invert", "--model", "resnet18", "--layer", "layer1", "--image", "{img}", "--out", "{out}", "--iters", "-3"],
     "--iters"),
    (["invert", "--model", "inception_v3", "--layer", "Mixed_5b", "--image", "{img}", "--out", "{out}",
      "--size", "64"], "at least 75"),
    (["invert", "--model", "resnet18", "--layer", "layer1", "--image", "{img}", "--out", "{out}", "--lr", "nan"],
     "lr_start must be a finite number"),
    (["invert", "--model", "resnet18", "--layer", "layer1", "--image", "/no/such.png", "--out", "{out}"],
     "not found"),
    (["invert", "--model", "resnet18", "--layer", "layer1", "--image", "{img}", "--out", "{out}",
      "--checkpoint", "/no/such.pth"], "not found"),
    (["curve", "--model", "resnet18", "--image", "{img}"], "required"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, chelsea_path, capsys, args, msg):
    args = [a.format(img=chelsea_path, out=tmp_path / "o") for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and msg in err


def test_process_exit_code_and_stderr_are_one_line(tmp_path, chelsea_path):
    proc = run_cli("invert", "--model", "resnet18", "--layer", "nowhere", "--image", str(chelsea_path),
                   "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown layer") and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
