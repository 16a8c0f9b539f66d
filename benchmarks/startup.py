"""`python -m benchmarks startup`: how long `python -m core invert` takes to start, and what it imports first.

For each code tree given (this checkout, and optionally an older one with `--before DIR`, e.g. a `git worktree`
of an earlier commit) it times, alternating the trees so the machine's load falls on both alike:

- `parse`: `python -m core invert --help` (interpreter, the CLI's imports, its parser), wall time;
- `invert`: `python -m core invert` of ResNet-18 untrained `layer2`, 32 px, one seed, one step, no cache, written
  to a temporary folder: the time until the engine's first step is done (start-up to the first step), and
  until it exits (scoring and writing too);
- which heavy packages that one-step run imports (from `python -X importtime`), and the import time of the
  CLI module alone.

    python -m benchmarks startup                               # this checkout, 5 rounds
    python -m benchmarks startup --before /tmp/before --markdown BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.env import cpu_name, write_section

ROOT = Path(__file__).resolve().parent.parent
WATCHED = ["scipy.stats", "skimage", "core.studies", "core.report", "core.measures", "PIL", "torchvision", "timm"]
RUN = ["invert", "--image", str(ROOT / "assets" / "chelsea.png"), "--model", "resnet18", "--layer", "layer2", "--size", "32", "--seeds", "1", "--iters", "1",
       "--no-early-stop", "--no-cache", "--quiet", "--threads", "1"]
FIRST_STEP = b"<first step done>"
# `python -m core` with one line on stderr once the engine's first step is done (the progress bar only moves at a
# snapshot, after scoring); importing the engine first changes no total: the run needs it before its first step
MARKED = ("import runpy, sys\n"
          "from core.engine.loop import Inversion\n"
          "advance = Inversion.advance\n"
          "def marked(self):\n"
          "    advance(self)\n"
          "    if self.steps_done == 1:\n"
          "        sys.stderr.write('<first step done>'); sys.stderr.flush()\n"
          "Inversion.advance = marked\n"
          "sys.argv = ['core', *sys.argv[1:]]\n"
          "runpy.run_module('core', run_name='__main__')\n")


def _env(root: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONWARNINGS="ignore")
    env.pop("CORE_DEBUG", None)
    return env


def timed(root: Path, args: list[str]) -> float:
    """Wall seconds of `python <args>` run in `root` with `root` importable; raises if it fails."""
    t = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=root, env=_env(root), capture_output=True, text=True)
    took = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} in {root} failed: {done.stderr.strip()[-300:]}")
    return took


def first_step(root: Path, args: list[str]) -> tuple[float, float]:
    """(seconds until the engine's first step is done, seconds until exit) of `python <args>` (`MARKED`), read live
    from its stderr."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=root, env=_env(root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen, at = b"", None
    while chunk := os.read(proc.stderr.fileno(), 4096):
        seen += chunk
        if at is None and FIRST_STEP in seen:
            at = time.perf_counter() - t
    proc.wait()
    took = time.perf_counter() - t
    if proc.returncode != 0 or at is None:
        raise RuntimeError(f"{' '.join(args)} in {root} failed: {seen.decode(errors='replace').strip()[-300:]}")
    return at, took


def imports(root: Path, args: list[str]) -> dict[str, float]:
    """Cumulative import seconds of each top-level-ish module `python -X importtime <args>` loads."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=root, env=_env(root),
                          capture_output=True, text=True)
    seen: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if cumulative.isdigit():
            seen[name] = max(seen.get(name, 0.0), int(cumulative) / 1e6)
    return seen


def measure(root: Path, rounds: int, out: Path) -> dict:
    parse, first, step = [], [], []
    for _ in range(rounds):
        parse.append(timed(root, ["-m", "core", "invert", "--help"]))
        at, took = first_step(root, ["-c", MARKED, *RUN, "--out", str(out)])
        first.append(at)
        step.append(took)
    return {"parse": parse, "first": first, "step": step}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks startup", description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, default=None, help="an older code tree to time beside this one")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--markdown", default="none", help="BENCHMARKS.md to write its section into, or none")
    args = ap.parse_args(argv)
    trees = {"before": args.before.resolve()} if args.before else {}
    trees["now"] = ROOT
    load0 = os.getloadavg()[0]
    times = {name: {"parse": [], "first": [], "step": []} for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):  # alternate the trees round by round
            for name, root in trees.items():
                got = measure(root, 1, Path(tmp) / name)
                for key in got:
                    times[name][key] += got[key]
        watched = {name: imports(root, ["-m", "core", *RUN, "--out", str(Path(tmp) / "imp")])
                   for name, root in trees.items()}
        cli = {name: imports(root, ["-c", "import core.cli.main"]).get("core.cli.main", float("nan"))
               for name, root in trees.items()}
    load1 = os.getloadavg()[0]
    rows = ["| tree | `invert --help` (median of %d) | invert: to its first step (median) | to exit (median) "
            "| `import core.cli.main` | heavy imports of the one-step run |" % args.rounds, "|---|---|---|---|---|---|"]
    for name in trees:
        heavy = ", ".join(f"{m} {watched[name][m]:.2f} s" for m in WATCHED if m in watched[name]) or "none"
        rows.append(f"| {name} | {statistics.median(times[name]['parse']):.2f} s | "
                    f"{statistics.median(times[name]['first']):.2f} s | {statistics.median(times[name]['step']):.2f} s | {cli[name]:.2f} s | {heavy} |")
    head = (f"Machine: {cpu_name()}, {os.cpu_count()} cores; load {load0:.1f} at the start, {load1:.1f} at the end. "
            f"The one-step run: `python -m core {' '.join(RUN).replace(str(ROOT) + '/', '')}`.")
    text = "\n".join([head, "", *rows])
    print(text)
    if args.markdown != "none":
        write_section(args.markdown, "startup", "## Start-up (`python -m benchmarks startup`)\n\n" + text)
    return 0
