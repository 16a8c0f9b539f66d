"""The command line contract: files, JSON fields, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
import os
import pickle
import random
import re
import subprocess
import sys

import pytest

from core.cli.main import main

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


def test_curve_writes_the_documented_files(tmp_path, chelsea_path, capsys):
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
    lines = capsys.readouterr().out.strip().splitlines()
    statuses = ("converged", "borderline", "not converged", "degenerate")
    for row, line in zip(rows, lines[:4]):  # each row: clarity, status and steps done next to it
        assert f"clarity {row['clarity']:.3f}" in line and row["status"] in statuses
        assert row["status"] in line and f"steps {row['steps_done']}/10" in line
    bad = sum(r["status"] == "not converged" for r in rows)
    assert re.match(rf"{bad} of 4 rows not converged", lines[-1])


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
     "lr must be a finite number"),
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


# --------------------------------------------------------------------------- presets


def test_presets_json_lists_every_preset_with_its_parts(capsys):
    from core.recipe.presets import PRESETS, Preset

    assert main(["presets", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing) == set(PRESETS) >= {"default", "paper", "mv", "natural"}
    for name, d in listing.items():
        assert d["objective"] and all(isinstance(t, dict) and t["name"] for t in d["objective"])
        assert isinstance(d["param"], dict) and d["param"]["name"]
        assert isinstance(d["transforms"], list)
        assert d == PRESETS[name].to_dict() and Preset(**d) == PRESETS[name]  # the full settings, round-trip
    assert listing["natural"]["param"]["name"] == "fourier" and listing["paper"]["early_stop"] is False


def test_presets_plain_lists_each_with_its_description_and_note(capsys):
    from core.recipe.presets import PRESETS

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, p in PRESETS.items():
        assert f"{name}\n    {p.describe()}\n    {p.note}\n" in out


def test_preset_help_lists_the_presets(capsys):
    from core.recipe.presets import PRESETS

    with pytest.raises(SystemExit):
        main(["invert", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(PRESETS) in help_text and "--no-early-stop" in help_text


# --------------------------------------------------------------------------- score


def _score(capsys, *args) -> dict:
    assert main(["score", *args]) == 0
    out = capsys.readouterr().out.strip()
    assert "\n" not in out  # one JSON object on one line
    return json.loads(out)


def test_score_of_the_image_is_1_and_of_the_start_about_0(tmp_path, chelsea_path, capsys):
    from core.engine.loop import start_images
    from core.images import load_image, to_pil
    from core.recipe.presets import get_preset

    to_pil(load_image(chelsea_path, 32)).save(tmp_path / "itself.png")
    to_pil(start_images([0], 32, get_preset("default"))[0]).save(tmp_path / "start.png")
    same = _score(capsys, "--image", str(chelsea_path), "--reconstruction", str(tmp_path / "itself.png"))
    assert same["size"] == 32  # the reconstruction's own size
    assert same["clarity"] == 1.0 and same["ssim"] == pytest.approx(1.0) and same["input_l2"] == 0.0
    assert same["psnr"] == 100.0 and 0 <= same["start_ssim"] < 0.5
    start = _score(capsys, "--image", str(chelsea_path), "--reconstruction", str(tmp_path / "start.png"))
    assert start["clarity"] == pytest.approx(0.0, abs=0.02)  # the default start, up to PNG rounding
    assert start["start_ssim"] == pytest.approx(start["ssim"], abs=0.01) and start["input_l2"] > 1
    given = _score(capsys, "--image", str(chelsea_path), "--reconstruction", str(tmp_path / "start.png"),
                   "--start", str(tmp_path / "start.png"), "--size", "24")
    assert given["clarity"] == 0.0 and given["size"] == 24


def test_score_size_is_the_square_load_image_crops(tmp_path, chelsea_path, capsys):
    from PIL import Image

    Image.new("RGB", (40, 28), (120, 30, 200)).save(tmp_path / "wide.png")
    assert _score(capsys, "--image", str(chelsea_path), "--reconstruction", str(tmp_path / "wide.png"))["size"] == 28


@pytest.mark.parametrize("which,msg", [("image", "not found"), ("reconstruction", "not found"),
                                       ("start", "not found"), ("text", "not an image"),
                                       ("tiny", "--size 2 px cannot be scored")])
def test_score_bad_file_gives_one_line_and_exit_2(tmp_path, chelsea_path, capsys, which, msg):
    (tmp_path / "notes.png").write_text("not a picture")
    args = {"--image": str(chelsea_path), "--reconstruction": str(chelsea_path)}
    if which == "text":
        args["--reconstruction"] = str(tmp_path / "notes.png")
    elif which == "tiny":  # SSIM needs at least 3 x 3 pixels
        args["--size"] = "2"
    else:
        args[f"--{which}"] = "/no/such.png"
    assert main(["score", *[x for kv in args.items() for x in kv]]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and msg in err and captured.out == ""


# --------------------------------------------------------------------------- early stopping


def _invert(tmp_path, chelsea_path, name, *extra) -> list[str]:
    return ["invert", "--model", "resnet18", "--layer", "layer1", "--image", str(chelsea_path), "--size", "32",
            "--seeds", "1", "--iters", "8", "--device", "cpu", "--out", str(tmp_path / name), "--quiet", *extra]


def test_no_early_stop_runs_the_whole_budget(tmp_path, chelsea_path, capsys):
    assert main(_invert(tmp_path, chelsea_path, "full", "--no-early-stop")) == 0
    data = json.loads((tmp_path / "full" / "result.json").read_text())
    assert data["steps_done"] == data["iters"] == 8 and data["stop_reason"] == "budget"
    assert data["preset_settings"]["early_stop"] is False
    m = data["metrics"]
    assert len(m["converged"]) == 1 and isinstance(m["degenerate"], bool) and "signal" in m
    assert m["mg_over_mr"] is None or len(m["mg_over_mr"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "clarity" in lines[0]
    assert lines[1].strip()  # the verdict (core.engine.run_reading.reading)
    assert lines[2].strip() == "steps 8 of 8: ran the whole budget (early stop off)"


def test_early_stop_is_on_by_default_and_may_stop_sooner(tmp_path, chelsea_path, capsys):
    assert main(_invert(tmp_path, chelsea_path, "early")) == 0
    data = json.loads((tmp_path / "early" / "result.json").read_text())
    assert data["preset_settings"]["early_stop"] is True
    assert 1 <= data["steps_done"] <= data["iters"] == 8 and data["stop_reason"] in ("converged", "budget")
    assert f"steps {data['steps_done']} of 8: " in capsys.readouterr().out


# --------------------------------------------------------------------------- broken checkpoints


def _corrupt_checkpoints(folder) -> list[str]:
    import torch

    torch.save({"w": torch.zeros(64)}, folder / "good.pth")
    whole = (folder / "good.pth").read_bytes()
    files = {
        "random.pth": random.Random(0).randbytes(4096),  # torch: UnpicklingError "Unsupported operand 205"
        "protocol4.pth": b"\x80\x04" + random.Random(1).randbytes(4096),  # torch warns about the pickle protocol
        "truncated.pth": whole[: len(whole) // 2],  # a zip without its central directory
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return list(files)


def _invert_with(tmp_path, chelsea_path, checkpoint) -> list[str]:
    return ["invert", "--model", "resnet18", "--layer", "layer1", "--image", str(chelsea_path), "--size", "32",
            "--iters", "5", "--device", "cpu", "--quiet", "--out", str(tmp_path / "o"), "--checkpoint", checkpoint]


def test_corrupt_checkpoint_is_one_line_without_warnings(tmp_path, chelsea_path):
    for name in _corrupt_checkpoints(tmp_path):
        proc = run_cli(*_invert_with(tmp_path, chelsea_path, str(tmp_path / name)))
        err = proc.stderr.strip()
        assert proc.returncode == 2, (name, err)
        assert len(err.splitlines()) == 1 and err.startswith(f"error: checkpoint {name!r}"), (name, err)
        assert "warn" not in err.lower() and "Traceback" not in err, (name, err)


@pytest.mark.parametrize("name", ["random.pth", "protocol4.pth", "truncated.pth"])
def test_corrupt_checkpoint_is_called_unreadable(tmp_path, chelsea_path, capsys, name):
    _corrupt_checkpoints(tmp_path)
    assert main(_invert_with(tmp_path, chelsea_path, str(tmp_path / name))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "unreadable" in err and "could run code" not in err


class _Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def test_a_pickle_that_would_run_code_is_still_refused(tmp_path, chelsea_path, capsys):
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"conv1.weight": _Evil()}, protocol=2))
    assert main(_invert_with(tmp_path, chelsea_path, str(tmp_path / "evil.pth"))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "could run code" in err and "unreadable" not in err


def test_a_second_identical_invert_comes_from_the_cache(tmp_path, chelsea_path, capsys, monkeypatch):
    """The CLI shares the app's run cache: the same command again returns at once, says so, and writes the same
    files; --no-cache recomputes."""
    import core.jobs.pipeline

    monkeypatch.setenv("INVERSION_CACHE_DIR", str(tmp_path / "cache"))
    args = ["invert", "--model", "resnet18", "--layer", "layer1", "--image", str(chelsea_path), "--size", "32",
            "--iters", "12", "--seeds", "2", "--init-seed", "4", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    first = capsys.readouterr().out
    assert "cached" not in first
    calls = []
    real = core.jobs.executor.run_resilient
    monkeypatch.setattr(core.jobs.pipeline, "run_resilient", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    second = capsys.readouterr().out
    assert "cached (computed earlier; --no-cache recomputes)" in second and calls == []
    a = json.loads((tmp_path / "a" / "result.json").read_text())
    b = json.loads((tmp_path / "b" / "result.json").read_text())
    assert a["metrics"]["ssim"] == b["metrics"]["ssim"] and a["spec"] == b["spec"]
    assert a["spec"]["init_seed"] == 4 and a["verdict"] and a["verdict"] in first  # the app's verdict, word for word
    assert main(args + ["--out", str(tmp_path / "c"), "--no-cache"]) == 0
    assert "cached" not in capsys.readouterr().out and calls == [1]


def test_every_subcommands_help_prints(capsys):
    """`--help` of the program and of every subcommand formats (argparse expands % in help texts)."""
    from core.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in [None, *sub.choices]:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"] if name else ["--help"])
        assert done.value.code == 0, name
    assert "torchvision:NAME" in capsys.readouterr().out


def test_multi_run_commands_say_their_time_before_they_run(tmp_path, chelsea_path, capsys):
    """curve (and compare, manifold, sweep, findings, through the same `say_forecast`) print the forecast on
    stderr before the first run; a second identical curve finds every run in the cache; --quiet skips it."""
    args = ["curve", "--model", "resnet18", "--checkpoints", "untrained", "--layers", "layer1,layer2", "--image",
            str(chelsea_path), "--size", "32", "--seeds", "2", "--iters", "5", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    said = re.search(r"Estimated on cpu[^:]*now: up to (.+?) for 2 runs", err)
    assert said, err
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert "Every run is in the cache" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "c"), "--quiet"]) == 0
    quiet = capsys.readouterr().err
    assert "Estimated" not in quiet and "in the cache" not in quiet
