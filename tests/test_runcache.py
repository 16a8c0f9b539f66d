"""The on-disk result cache: keys, round trips, atomic writes, corrupt entries ignored."""

import os

import pytest
import torch

from core import get_preset, invert, load_model
from core.runcache import RunCache, decode_result, encode_result, image_hash, run_key


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
