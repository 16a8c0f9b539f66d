"""Time estimates from measured steps, and the cheaper setting offered for slow ones."""

from core import get_preset, load_model
from core.jobs.estimate import Estimate, human, measure, suggest_cheaper


def test_measure_real_steps():
    model = load_model("resnet18", "untrained", 32)
    est = measure(model, "layer1", 32, 2, get_preset("default", iters=100), "cpu", probe_steps=2)
    assert est.step_s > 0 and est.setup_s > 0 and est.iters == 100
    assert est.warmup_s > 0
    assert abs(est.seconds - (est.setup_s + est.warmup_s + 99 * est.step_s)) < 1e-12


def test_estimate_of_the_default_run_is_within_2x_of_its_real_time(lite0_models, chelsea64):
    """The app's default run (trained Lite0 blocks.1.1, 64 px, 2 seeds, budget 150, early stop): the estimate it
    shows before Run against the run itself through the pipeline, measured the same way on the same machine."""
    import time

    from core.jobs.spec import RunSpec
    from core.jobs.pipeline import run

    preset = get_preset("default", iters=150)
    model = lite0_models["trained"]
    est = measure(model, "blocks.1.1", 64, 2, preset, "cpu")
    t0 = time.perf_counter()
    job = run(RunSpec.of(model, "blocks.1.1", chelsea64, [0, 1], preset, "cpu"), chelsea64, model, use_cache=False)
    real = time.perf_counter() - t0
    print(f"estimate {est.seconds:.2f} s, real {real:.2f} s ({job.result.steps_done} steps)")
    assert 0.5 <= est.seconds / real <= 2.0, (est, real, job.result.steps_done)


def test_no_suggestion_when_fast():
    assert suggest_cheaper(Estimate(0.5, 0.01, 200), 64, 2, 200, budget_s=20) is None


def test_suggestion_fits_the_budget():
    slow = Estimate(1.0, 2.0, 500)  # 999 s
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
