"""Side-by-side benchmarks: the engine vs a paper-style and a feature-visualisation-library-style loop.

Run `python -m benchmarks` (full CPU suite, ~10 min on 2 cores) or `python -m benchmarks --quick`.
"""
