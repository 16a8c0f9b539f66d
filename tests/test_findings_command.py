"""`python -m core findings` end to end at a tiny scale: one sweep per size, verdicts, and the three files.

The verdicts' statistics are tested on constructed rows in tests/test_verdicts.py; here: the plumbing (the CLI,
the cache, the files), that report.html needs nothing from a network, and that findings.json validates."""

import json
import re

import pytest

from core.cli.main import main
from core.studies.verdicts import VERDICT_FIELDS, validate

ARGS = ["findings", "--models", "resnet18", "--checkpoints", "untrained", "--images",
        "assets/chelsea.png,assets/coffee.png", "--seeds", "2", "--iters", "25", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import os

    os.environ.setdefault("INVERSION_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "runcache"))
    out = tmp_path_factory.mktemp("findings")
    assert main([*ARGS, "--size", "32,48", "--out", str(out)]) == 0
    return out


def test_the_three_files_are_written_and_the_json_validates(report):
    data = json.loads((report / "findings.json").read_text())
    assert data["settings"]["sizes"] == [32, 48] and data["settings"]["models"] == ["resnet18"]
    assert data["runs"] == {"32 px": 28, "48 px": 28, "finding 6": 16}  # 14 stops x 2 images per size; 8 MLPs x 2
    ids = {(f["id"], f["evidence"].get("size")) for f in data["findings"]}
    assert {("1", 32), ("2", 32), ("3", 32), ("1", 48), ("6", None)} <= ids
    for f in data["findings"]:
        validate(f)
        assert list(f) == list(VERDICT_FIELDS) and f["verdict"] in ("holds", "does not hold", "inconclusive")
    why = data["not_tested_here"]  # untrained only: no finding 4 or 5; a CNN: no finding 7
    assert set(why) == {"4", "5", "7"} and "both checkpoints" in why["5"] and "vision transformer" in why["7"]
    md = (report / "findings.md").read_text()
    main, _, by_measure = md.partition("\n\nUnder each measure")
    assert md.startswith("| finding |") and main.count("\n") == 2 + len(data["findings"]) + 3 - 1
    stated = [f for f in data["findings"] if f["evidence"].get("by_measure")]  # findings 1 and 2 here
    assert {f["id"] for f in stated} == {"1", "2"} and all(set(f["evidence"]["by_measure"]) ==
                                                            {"clarity", "fidelity", "structure"} for f in stated)
    assert by_measure.count("\n| ") == 1 + len(stated)  # its header and a row per finding, model and size


def test_the_html_report_is_self_contained(report):
    html = (report / "report.html").read_text()
    assert "<script" not in html and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html
    assert html.count("data:image/png;base64,") == 2  # a curve per model and size
    assert "Finding 1" in html and "An unconverged run" in html and "id='evidence-6'" in html
    # the header says what ran, part by part, from the rows: the lab's MLPs for finding 6, never a path
    assert "Findings 1, 2, 3 at 32 px: models resnet18; checkpoints untrained; images chelsea.png, coffee.png; 28 runs." in html
    assert "Finding 6: 16 px grey MLPs" in html and "assets/" not in html
    data = json.loads((report / "findings.json").read_text())
    assert data["settings"]["images"] == "chelsea.png,coffee.png"
    ids = re.findall(r"id='([^']+)'", html)
    assert len(ids) == len(set(ids))  # one card per finding, model and size, each with its own anchor
    links = set(re.findall(r"href='#([^']+)'", html))
    assert {"curve-resnet18-32", "curve-resnet18-48", "evidence-6"} <= links and links <= set(ids)


def test_a_rerun_comes_from_the_cache(report, capsys):
    assert main([*ARGS, "--size", "32", "--out", str(report / "again")]) == 0
    out = capsys.readouterr()
    assert "44 runs in" in out.out  # 28 sweep runs and 16 lab runs, all from the cache
    data = json.loads((report / "again" / "findings.json").read_text())
    first = json.loads((report / "findings.json").read_text())
    same = [f for f in first["findings"] if f["evidence"].get("size") in (32, None)]
    assert [f["value"] for f in data["findings"]] == [f["value"] for f in same]  # the same runs, the same numbers


def test_bad_settings_are_one_line(capsys, tmp_path):
    assert main(["findings", "--models", "resnet18", "--size", "32,x", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--size" in err and err.count("\n") == 1, err
    assert main(["findings", "--models", "nope", "--size", "32", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_chosen_findings_run_only_what_they_need(report, capsys):
    assert main([*ARGS, "--size", "32", "--findings", "1", "--out", str(report / "one")]) == 0
    data = json.loads((report / "one" / "findings.json").read_text())
    assert [f["id"] for f in data["findings"]] == ["1"] and data["runs"] == {"32 px": 28}
    assert data["not_tested_here"]["6"] == "not chosen for this report"
    assert main([*ARGS, "--size", "32", "--findings", "8", "--out", str(report / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown finding 8") and err.count("\n") == 1, err


def test_a_part_of_the_plan_sweeps_only_the_checkpoints_it_reads():
    from core.recipe.presets import get_preset
    from core.studies.findings import FindingsPlan

    plan = FindingsPlan.create("assets/chelsea.png,assets/coffee.png", ["resnet18"], ["untrained", "trained"], [32],
                               [0], get_preset("default"))
    assert plan.sweeps[0].checkpoints == ["untrained", "trained"]
    first = plan.only(["1", "2"])  # the page's card for finding 1 or 2 must not run the trained checkpoint
    assert first.findings == ("1", "2") and [s.checkpoints for s in first.sweeps] == [["untrained"]]
    assert first.checkpoints == ["untrained", "trained"] and plan.sweeps[0].checkpoints == ["untrained", "trained"]
    assert first.only(["4"]).sweeps[0].checkpoints == ["untrained", "trained"]
    assert plan.only(["1", "4"]).sweeps[0].checkpoints == ["untrained", "trained"]


def test_an_interrupted_sweep_gives_no_verdict_and_says_so(monkeypatch, tmp_path):
    import core.studies.findings as F
    from core.recipe.presets import get_preset
    from core.studies.sweep import Outcome

    rows = [{"image": img, "model": "resnet18", "checkpoint": "untrained", "layer": f"l{s}", "label": f"l{s}",
             "depth": float(s), "relative_depth": (s + 1) / 6, "clarity": 1.0 - 0.1 * s, "converged": True,
             "status": "converged"} for img in ("a", "b", "c") for s in range(6)]
    monkeypatch.setattr(F, "run_sweep", lambda *a, **k: Outcome(rows, 0, len(rows), 0, 1.0, "local", [], [], True))
    plan = F.FindingsPlan.create("assets/chelsea.png,assets/coffee.png", ["resnet18"], ["untrained"], [32], [0],
                                 get_preset("default"), findings="1,4,7")
    report = F.run_findings(plan, tmp_path)  # the rows would let finding 1 hold, but the sweep was cut short
    assert report.verdicts == [] and report.not_here["1"] == F.INTERRUPTED
    assert "both checkpoints" in report.not_here["4"] and "vision transformer" in report.not_here["7"]
    assert any("interrupted" in n for n in report.notes)


def test_a_lost_ray_node_keeps_what_was_judged_and_writes_it(monkeypatch, tmp_path, capsys):
    import core.studies.findings as F
    from core.errors import SweepStopped
    from core.recipe.presets import get_preset
    from core.studies.sweep import Outcome

    lab = [{"image": "chelsea", "activation": "relu", "width_ratio": 2.0, "converged": True, "unique": True,
            "rank_deficient": False, "clarity": 0.99}]
    real_6 = F.finding_6

    def lost(*a, **k):
        raise SweepStopped("the Ray node at 127.0.0.1 died", 3, 28, Outcome([], 0, 3, 0, 1.0, "ray", [], []))

    monkeypatch.setattr(F, "run_sweep", lost)
    monkeypatch.setattr(F, "lab_rows", lambda *a, **k: lab)
    judged = []
    monkeypatch.setattr(F, "finding_6", lambda rows: judged.append(rows) or real_6([]))  # its own tests: elsewhere
    plan = F.FindingsPlan.create("assets/chelsea.png,assets/coffee.png", ["resnet18"], ["untrained"], [32], [0],
                                 get_preset("default"), findings="1,6")
    with pytest.raises(SweepStopped) as caught:
        F.run_findings(plan, tmp_path)
    report = caught.value.report  # finding 6 ran before the sweep: its rows are kept, the cut size is not judged
    assert report is not None and report.lab is lab and judged[0] is lab and report.not_here["1"] == F.INTERRUPTED
    assert [v.id for v in report.verdicts] == ["6"]
    assert any("died" in n for n in report.notes)
    out = tmp_path / "cli"
    assert main(["findings", "--models", "resnet18", "--checkpoints", "untrained", "--size", "32", "--findings",
                 "1,6", "--images", "assets/chelsea.png,assets/coffee.png", "--backend", "ray", "--out",
                 str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "died" in err and err.count("\n") == 1, err
    data = json.loads((out / "findings.json").read_text())  # written before the error line
    assert data["not_tested_here"]["1"] == F.INTERRUPTED and any("died" in n for n in data["notes"])


def test_findings_5_and_6_run_on_the_sweeps_thread_count(monkeypatch, tmp_path):
    """One report, one CPU thread count: findings 5 and 6 take the sweep's, not a timing probe's (rounding differs
    with the count, and a head stop's reconstructions follow rounding)."""
    import core.studies.findings as F
    from core.engine.speed import SpeedOptions
    from core.recipe.presets import get_preset
    from core.studies.sweep import Outcome

    seen = {}
    monkeypatch.setattr(F, "run_sweep", lambda *a, **k: Outcome([], 0, 0, 0, 1.0, "local", [], []))
    monkeypatch.setattr(F, "lab_rows", lambda *a, **k: seen.setdefault("6", k["threads"]) and [])
    monkeypatch.setattr(F, "manifold_rows", lambda *a, **k: seen.setdefault("5", k["threads"]) and [])
    plan = F.FindingsPlan.create("assets/chelsea.png,assets/coffee.png", ["resnet18"], ["untrained", "trained"],
                                 [32], [0], get_preset("default"), threads=1, findings="5,6")
    F.run_findings(plan, tmp_path)
    assert plan.threads == 1 and seen == {"5": 1, "6": 1}
    assert SpeedOptions.with_threads("cpu", 1) == SpeedOptions(threads=1)
    assert SpeedOptions.with_threads("cpu", None) == SpeedOptions.auto("cpu")  # no count given: the probe's


def test_why_a_finding_has_no_verdict_follows_what_was_chosen():
    from types import SimpleNamespace

    from core.studies.findings import why_none

    rows = [{"model": "resnet18", "layer": "conv1", "label": "conv1", "depth": 0.0}]
    trained = SimpleNamespace(checkpoints=["trained"])
    both = SimpleNamespace(checkpoints=["untrained", "trained"])
    assert "choose it" in why_none("2", trained, rows) and "choose it" in why_none("1", trained, rows)
    assert "choose both" in why_none("4", trained, rows)
    assert "could not be loaded" in why_none("5", both, rows)  # both chosen: the weights or runs failed
    assert why_none("2", both, rows) == "no runs gave evidence (see the notes)"
    assert "vision transformer" in why_none("2", both, [{**rows[0], "model": "vit_b_16"}])
