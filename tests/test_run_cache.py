"""The on-disk result cache: keys, round trips, atomic writes, corrupt entries ignored."""

import os
import time

import pytest
import torch

from core import get_preset, invert, load_model
from core.jobs.cache import RunCache, decode_result, encode_result, image_hash, run_key

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`


@pytest.fixture(scope="module")
def result():
    model = load_model("resnet18", "untrained", 32)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    return invert(model, "layer1", image, [0, 1], get_preset("default", iters=3), "cpu")


def test_key_depends_on_every_setting_and_the_image():
    img = torch.zeros(3, 8, 8)
    base = {"model": "resnet18", "layer": "layer1", "seeds": [0, 1], "preset": {"iters": 10}}
    k = run_key(base, img)
    assert k == run_key(dict(reversed(list(base.items()))), img.clone())  # order and identity do not matter
    assert k != run_key({**base, "layer": "layer2"}, img)
    assert k != run_key({**base, "preset": {"iters": 11}}, img)
    img2 = img.clone()
    img2[0, 0, 0] = 1e-3
    assert k != run_key(base, img2)
    assert image_hash(img) != image_hash(torch.zeros(3, 4, 16))


def test_round_trip(tmp_path, result):
    cache = RunCache(tmp_path)
    key = run_key({"x": 1}, result.original)
    assert cache.get(key) is None
    path = cache.put(key, result)
    assert path.is_file()
    back = cache.get(key)
    assert torch.equal(back.images, result.images) and torch.equal(back.original, result.original)
    assert back.metrics == result.metrics and back.history == result.history
    assert back.preset == result.preset and back.seeds == result.seeds
    assert back.to_json() == result.to_json()
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [path.name]  # no temporary files left


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "other_format"])
def test_corrupt_entry_is_ignored_and_removed(tmp_path, result, damage):
    cache = RunCache(tmp_path)
    key = run_key({"damage": damage})
    path = cache.put(key, result)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x80\x04not a torch file" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        import io
        buf = io.BytesIO()
        torch.save({"format": 999, "json": "{}"}, buf)
        path.write_bytes(buf.getvalue())
    assert cache.get(key) is None
    assert not path.exists()
    cache.put(key, result)  # and the next finished run takes its place
    assert cache.get(key) is not None


def test_entry_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import pickle
    with pytest.raises(ValueError):
        decode_result(pickle.dumps({"format": 1, "json": Evil()}))
    assert not marker.exists()


def test_interrupted_write_leaves_no_entry(tmp_path, result, monkeypatch):
    cache = RunCache(tmp_path)
    key = run_key({"crash": True})

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        cache.put(key, result)
    monkeypatch.undo()
    assert cache.get(key) is None
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_stopped_runs_are_not_stored(tmp_path, result):
    from dataclasses import replace
    cache = RunCache(tmp_path)
    assert cache.put(run_key({"s": 1}), replace(result, stopped_early=True)) is None
    assert cache.get(run_key({"s": 1})) is None


def test_bad_keys_are_refused(tmp_path):
    with pytest.raises(ValueError):
        RunCache(tmp_path).path("../../etc/passwd")


def test_encode_decode_bytes(result):
    assert decode_result(encode_result(result)).to_json() == result.to_json()


def test_read_only_fallback(tmp_path, result):
    shipped = RunCache(tmp_path / "shipped")
    key = run_key({"example": 1})
    shipped.put(key, result)
    cache = RunCache(tmp_path / "main", fallbacks=[tmp_path / "shipped"])
    assert cache.get(key).to_json() == result.to_json()
    assert not (tmp_path / "main").exists()  # reading never writes
    shipped.path(key).write_bytes(b"broken")
    assert cache.get(key) is None and shipped.path(key).exists()  # a bad fallback is skipped, not deleted


_SLOW_WRITER = r"""
import os, sys, time
import torch
import core.atomic
from core.engine import InversionResult
from core.recipe.presets import get_preset
from core.jobs.cache import RunCache

real_fdopen = os.fdopen

class Slow:
    # the temporary file, written 64 KiB at a time with a pause: a large entry on a slow disk
    def __init__(self, f):
        self.f = f
    def write(self, data):
        for i in range(0, len(data), 1 << 16):
            self.f.write(data[i:i + (1 << 16)])
            self.f.flush()
            time.sleep(0.01)
    def __getattr__(self, name):
        return getattr(self.f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

core.atomic.os.fdopen = lambda fd, *a, **k: Slow(real_fdopen(fd, *a, **k))
g = torch.Generator().manual_seed(0)
n = 8
result = InversionResult("resnet18", "untrained", "layer1", "Conv2", 256, get_preset("default"), list(range(n)),
                         "cpu", 1.0, 200, False, torch.rand(3, 256, 256, generator=g),
                         torch.rand(n, 3, 256, 256, generator=g), (64, 64, 64),
                         {"clarity": 0.5}, {"step": [0]})
print("writing", flush=True)
RunCache(sys.argv[2]).put(sys.argv[3], result)
print("done", flush=True)
"""


def test_writer_killed_mid_write_leaves_no_entry_and_the_old_one_intact(tmp_path, result):
    """A process writing a ~6 MB entry slowly is SIGKILLed once its temporary file has grown: readers never
    see a half entry (the old complete one stays), the leftover temporary file is ignored, and the next
    finished run replaces the entry."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cache = RunCache(tmp_path)
    key = run_key({"killed": True})
    path = cache.put(key, result)  # an older complete entry under the same key
    script = tmp_path / "writer.py"
    script.write_text(_SLOW_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(root), str(tmp_path), key], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        deadline = time.monotonic() + 60
        tmp = []
        while time.monotonic() < deadline and proc.poll() is None:
            tmp = [p for p in path.parent.glob(f".{path.name}.*.tmp") if p.stat().st_size > 1 << 20]
            if tmp:
                break
            time.sleep(0.02)
        assert tmp, f"the writer never got going: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert cache.get(key).to_json() == result.to_json()  # mid-write, readers see the old entry
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL and "done" not in proc.stdout.read()
    leftover = tmp[0]
    assert leftover.exists() and leftover.stat().st_size < 8 * 3 * 256 * 256 * 4  # killed part-way
    back = cache.get(key)
    assert back is not None and back.to_json() == result.to_json() and len(back.seeds) == 2  # not the half one
    # with no older entry, the key is simply missing: the run is recomputed, not shown half
    path.unlink()
    assert cache.get(key) is None
    cache.put(key, result)  # the recomputed run lands beside the leftover
    assert cache.get(key).to_json() == result.to_json()


def test_a_cache_written_before_the_layered_library_is_still_read(tmp_path):
    """tests/fixtures/old_cache was written by commit 35b4b87 (flat core/): the same run's key is the same
    today, and the entry loads with the same metrics, so nobody's cache is lost by the move into packages.
    It predates the measures panel (format 4): its clarity is measured again on read, from starts remade
    exactly as a run makes them."""
    import json
    import shutil
    from pathlib import Path

    from core import load_image
    from core.jobs import RunSpec

    fixture = Path(__file__).parent / "fixtures" / "old_cache"
    recorded = json.loads((fixture / "spec.json").read_text())
    image = load_image(Path(__file__).parents[1] / "assets" / "chelsea.png", 16)
    assert image_hash(image) == recorded["spec"]["image_hash"]
    spec = RunSpec.of(load_model("resnet18", "untrained", 16), "layer1", image, [0, 1],
                      get_preset("default", iters=5), "cpu")
    spec = spec.replace(versions=tuple(sorted(recorded["spec"]["versions"].items())))  # the versions it was made with
    assert spec.to_dict() == recorded["spec"] and spec.key() == recorded["key"]
    cache_dir = tmp_path / "cache"
    shutil.copytree(fixture, cache_dir)
    entry = RunCache(cache_dir).get(spec.key())
    assert entry is not None and entry.steps_done == recorded["steps_done"]
    from core.engine import Inversion
    from core.measures import MEASURES, baseline, measure

    stored = entry.metrics.to_dict()
    assert {k: stored[k] for k in recorded["metrics"] if not k.startswith("clarity")} == \
        {k: v for k, v in recorded["metrics"].items() if not k.startswith("clarity")}
    run = Inversion(load_model("resnet18", "untrained", 16), "layer1", image, [0, 1], get_preset("default", iters=5))
    today = measure(entry.images, baseline(image, run.start, "resnet18"))
    for name in ("clarity", *MEASURES):
        assert stored[name] == pytest.approx(today[name], abs=1e-6) and 0.0 <= stored[name] <= 1.0, name


def test_has_sees_an_entry_without_reading_it(tmp_path):
    """A forecast's lookup: here or in a fallback, by the file alone."""
    key = "ab" * 32
    main_dir, shipped = tmp_path / "main", tmp_path / "shipped"
    cache = RunCache(main_dir, fallbacks=[shipped])
    assert not cache.has(key)
    cache.path(key, shipped).parent.mkdir(parents=True)
    cache.path(key, shipped).write_bytes(b"not read")
    assert cache.has(key) and not cache.has("cd" * 32)


def test_the_cache_is_capped_least_recently_used_first_and_never_what_is_in_use(tmp_path, result, monkeypatch):
    """Past its cap, a put removes the entries used longest ago (a read counts as a use); the entry just stored
    and every entry used in the last FRESH_S seconds stay (a visitor's results on screen)."""
    from core.jobs import cache as cache_mod

    cache = RunCache(tmp_path)
    keys = [f"{i:02x}" + "a" * 62 for i in range(5)]
    for k in keys:
        cache.put(k, result)
    one = cache.path(keys[0]).stat().st_size
    hour = time.time() - 3600
    for i, k in enumerate(keys):  # all used an hour ago or more, the first longest ago
        os.utime(cache.path(k), (hour - 100 * (5 - i), hour - 100 * (5 - i)))
    assert cache.get(keys[0]) is not None  # read now: used now
    monkeypatch.setenv("INVERSION_CACHE_MB", str(3.5 * one / 2**20))  # room for three entries
    new = "ff" + "b" * 62
    cache.put(new, result)  # six entries: the three used longest ago go, not the one just read
    left = sorted(k for k in keys + [new] if cache.has(k))
    assert left == sorted([keys[0], keys[4], new]), left
    assert cache.size() <= 3.5 * one
    for k in left:  # all used within FRESH_S now: a full cache keeps them rather than lose what is on screen
        os.utime(cache.path(k))
    assert cache.trim(cap=one) == 0 and all(cache.has(k) for k in left)
    assert cache.trim(cap=one, now=time.time() + cache_mod.FRESH_S + 1) == 2  # once they age, down to the cap
