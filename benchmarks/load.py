"""`python -m benchmarks load`: a run as the tool chooses its threads against the same run on one core, busy or idle.

A user's laptop or a demo server is busy. With `--burners N` CPU-bound processes beside it (plain Python loops,
started and stopped here by id), each case runs as `python -m core ...` would, alternately (a) as the tool chooses
and (b) confined to one core (`taskset -c 0`, one thread), `--repeats` times; then the same without burners. The
time is the run's own (`seconds` in result.json: no start-up) where the command writes one, else the command's
wall time (a curve, a report: start-up included, alike on both sides), the cache off. Targets (issue "Fast on the machines
people have"): busy, the tool's run takes at most 1.2x one core's (median) and no run over 1.5x; idle, never slower
than one core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.env import cpu_name, write_section
from benchmarks.runner import ROOT

ASSET = ROOT / "assets" / "chelsea.png"
# name -> the `python -m core` arguments of one run (the cases)
CASES = {
    "invert lite0 blocks.1.1 32px 80 steps": ["invert", "--model", "efficientnet_lite0", "--checkpoint", "untrained",
                                             "--layer", "blocks.1.1", "--size", "32", "--seeds", "2", "--iters", "80",
                                             "--no-early-stop"],
    "invert resnet18 layer2 64px 60 steps": ["invert", "--model", "resnet18", "--checkpoint", "untrained",
                                            "--layer", "layer2", "--size", "64", "--seeds", "2", "--iters", "60",
                                            "--no-early-stop"],
    "invert lite0 trained blocks.3.0 64px default": ["invert", "--model", "efficientnet_lite0", "--checkpoint",
                                                     "trained", "--layer", "blocks.3.0", "--size", "64", "--seeds",
                                                     "2"],
    "curve lite0 untrained+trained 4 stops 32px": ["curve", "--model", "efficientnet_lite0", "--size", "32",
                                                  "--seeds", "2", "--layers", "blocks.1.0,blocks.3.0,blocks.5.0,blocks.6.0"],
    "findings 1-3 resnet18 untrained 32px, one image": ["findings", "--models", "resnet18", "--checkpoints",
                                                        "untrained", "--findings", "1,2,3", "--size", "32"],
}


def burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def run_once(args: list[str], one_core: bool, out: Path, env_extra: dict | None = None,
             root: Path = ROOT) -> tuple[float, int | None]:
    """One CLI run of the checkout at `root`; returns (the run's seconds from result.json, the thread count it
    reported at its start)."""
    env = {**os.environ, "PYTHONPATH": str(root), **(env_extra or {})}
    image = ["--images", str(ASSET)] if args[0] == "findings" else ["--image", str(ASSET)]
    cache = ["--no-cache"] if args[0] != "findings" else []
    if not cache:  # a report has no --no-cache: an empty cache of its own
        env["INVERSION_CACHE_DIR"] = str(out / "cache")
    cmd = [sys.executable, "-m", "core", *args, *image, "--device", "cpu", "--out", str(out), "--quiet", *cache]
    if one_core:
        env.update(OMP_NUM_THREADS="1", INVERSION_THREADS="1")
        cmd = ["taskset", "-c", "0", *cmd]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=root, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    if not (out / "result.json").exists():
        return wall, None
    data = json.loads((out / "result.json").read_text())
    dev = str(data.get("device", ""))
    threads = int(dev.split("(")[1].split()[0]) if "(" in dev else None
    return float(data["seconds"]), threads


def series(cases: dict, repeats: int, tmp: Path, env_extra: dict | None = None, root: Path = ROOT) -> dict:
    rows = {}
    for name, args in cases.items():
        tool, core1, used = [], [], []
        for r in range(repeats):
            order = (False, True) if r % 2 == 0 else (True, False)  # alternate who goes first
            for one in order:
                s, n = run_once(args, one, tmp / f"{len(rows)}-{r}-{int(one)}", env_extra, root)
                (core1 if one else tool).append(s)
                if not one:
                    used.append(n)
        ratios = [t / c for t, c in zip(tool, core1)]
        rows[name] = {"tool_s": tool, "one_core_s": core1, "threads": used,
                      "median_ratio": statistics.median(ratios), "worst_ratio": max(ratios)}
    return rows


def table(rows: dict) -> str:
    lines = ["| run | as the tool chooses (s) | threads | one core (s) | median ratio | worst ratio |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {', '.join(f'{x:.2f}' for x in r['tool_s'])} | {r['threads']} | "
                     f"{', '.join(f'{x:.2f}' for x in r['one_core_s'])} | {r['median_ratio']:.2f} | "
                     f"{r['worst_ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks load", description=__doc__.splitlines()[0])
    ap.add_argument("--burners", type=int, default=2, help="CPU-bound processes beside the runs (default 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="all", help="comma list of case numbers (1-based) or 'all'")
    ap.add_argument("--idle", action="store_true", help="also the same series with no burners")
    ap.add_argument("--env", default="", help="extra environment for the tool's runs, e.g. OMP_WAIT_POLICY=ACTIVE")
    ap.add_argument("--root", default=str(ROOT), help="the checkout whose `python -m core` is timed (e.g. a worktree "
                    "of an earlier commit, for a before/after table)")
    ap.add_argument("--markdown", default="none", help="BENCHMARKS.md to write the section there")
    args = ap.parse_args(argv)
    names = list(CASES)
    chosen = names if args.cases == "all" else [names[int(i) - 1] for i in args.cases.split(",")]
    cases = {n: CASES[n] for n in chosen}
    extra = dict(kv.split("=", 1) for kv in args.env.split(",") if kv)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        procs = burners(args.burners)
        try:
            time.sleep(1.0)
            load = os.getloadavg()[0]
            out["busy"] = series(cases, args.repeats, Path(tmp), extra, Path(args.root))
        finally:
            stop(procs)
        text = [f"CPU: {cpu_name()}, {os.cpu_count()} cores. {args.burners} CPU-bound processes beside the runs "
                f"(load {load:.1f} when they began); {args.repeats} alternating pairs per run"
                + (f"; tool's runs with {args.env}" if args.env else "")
                + ("" if Path(args.root) == ROOT else f"; the checkout at {Path(args.root).name}") + ".", "",
                table(out["busy"])]
        if args.idle:
            time.sleep(3.0)
            idle_load = os.getloadavg()[0]
            out["idle"] = series(cases, args.repeats, Path(tmp), extra, Path(args.root))
            text += ["", f"Idle (load {idle_load:.1f} before):", "", table(out["idle"])]
    print("\n".join(text))
    if args.markdown != "none":
        write_section(args.markdown, "load", "## Busy and idle CPU: as the tool chooses against one core\n\n"
                      + "`python -m benchmarks load`\n\n" + "\n".join(text))
    return 0
