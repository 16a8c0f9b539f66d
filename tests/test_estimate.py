"""Time estimates from measured steps, and the cheaper setting offered for slow ones."""

from core import get_preset, load_model
from core.estimate import Estimate, human, measure, suggest_cheaper


def test_measure_real_steps():
    model = load_model("resnet18", "untrained", 32)
    est = measure(model, "layer1", 32, 2, get_preset("default", iters=100), "cpu", probe_steps=2)
    assert est.step_s > 0 and est.setup_s > 0 and est.iters == 100
    assert est.seconds == est.setup_s + 100 * est.step_s


def test_no_suggestion_when_fast():
    assert suggest_cheaper(Estimate(0.5, 0.01, 200), 64, 2, 200, budget_s=20) is None


def test_suggestion_fits_the_budget():
    slow = Estimate(1.0, 2.0, 500)  # 1001 s
    s = suggest_cheaper(slow, 224, 8, 500, budget_s=20)
    assert s is not None and s["seconds"] <= 20
    assert s["iters"] <= 150 and s["seeds"] <= 2 and s["size"] < 224 and s["size"] >= 32


def test_suggestion_keeps_what_it_can():
    s = suggest_cheaper(Estimate(0.0, 0.2, 300), 64, 2, 300, budget_s=35)  # 60 s: fewer iterations suffice
    assert s == {"size": 64, "seeds": 2, "iters": 150, "seconds": 30.0}


def test_human():
    assert human(0.3) == "under a second"
    assert human(12) == "about 12 s"
    assert human(600) == "about 10 min"
