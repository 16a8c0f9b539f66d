# Feature inversion in a notebook: paste into a Jupyter cell started in the repository root (as a script:
# `PYTHONPATH=. python docs/notebook_example.py`).
# Results and curves display themselves; long runs show a progress bar (pass progress=False to hide it).
import os

from core import curve, depth_stops, get_preset, invert, load_image, load_model, sample_images

SIZE, STEPS = (32, 4) if os.environ.get("NOTEBOOK_EXAMPLE_TINY") else (64, 40)  # tiny: the test's quick run
image = load_image(sample_images()["chelsea"], SIZE)  # a bundled sample image, (3, SIZE, SIZE) in [0, 1]
preset = get_preset("default", iters=STEPS)  # few steps: quick, though the deep stops will not converge

# EfficientNet-Lite0 with its bundled ImageNet weights (no download), and the same network untrained
trained = load_model("efficientnet_lite0", "trained", SIZE)
untrained = load_model("efficientnet_lite0", "untrained", SIZE)
stops = depth_stops(trained)  # the network's depth stops, input -> logits (22 for Lite0)
stop = stops[len(stops) // 3].node  # one a third of the way in

# invert one stop with 2 seeds; the result shows the original and both reconstructions, m_g, m_i, m_r, SSIM
result = invert(trained, stop, image, [0, 1], preset)
show = globals().get("display") or (lambda r: print(r.summary()))  # IPython's display in a notebook
show(result)  # or end a cell with `result`
untrained_result = invert(untrained, stop, image, [0, 1], preset)  # how much of that is the architecture alone?
print(f"clarity at {stop}: trained {result.metrics['clarity']:.2f}, untrained {untrained_result.metrics['clarity']:.2f}")

# the clarity curve at 3 stops spread from the first to the last, untrained vs trained: table, gallery and chart
c = curve("efficientnet_lite0", image, ["untrained", "trained"], 3, seeds=[0, 1], preset=preset,
          models=[untrained, trained])
c  # in a notebook this shows the curve; c.figure() is the plotly chart, c.gallery() the picture, c.rows the runs
