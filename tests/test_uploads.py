"""Uploaded images kept by hash (core.jobs.uploads): what a link to a run on an upload finds on this server."""

import pytest

from core import UserError
from core.jobs import UploadStore, is_upload_id, upload_id

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`


def test_the_same_bytes_come_back_under_their_id(tmp_path):
    store = UploadStore(tmp_path)
    uid = store.put(b"first image bytes", "cat.png")
    assert is_upload_id(uid) and uid == upload_id(b"first image bytes")
    assert store.get(uid) == (b"first image bytes", "cat.png")
    assert store.put(b"first image bytes", "renamed.png") == uid  # same bytes, same id; the first name stays
    assert store.get(uid)[1] == "cat.png"
    assert store.put(b"other bytes", "dog.png") != uid


def test_another_server_or_a_damaged_copy_finds_nothing(tmp_path):
    uid = UploadStore(tmp_path / "a").put(b"image bytes", "cat.png")
    assert UploadStore(tmp_path / "b").get(uid) is None  # another server's folder
    store = UploadStore(tmp_path / "a")
    (store.root / f"{uid}.bin").write_bytes(b"tampered")
    assert store.get(uid) is None  # never another image under this id
    (store.root / f"{uid}.json").unlink()
    store.put(b"image bytes", "cat.png")
    (store.root / f"{uid}.json").write_text("{not json")
    assert store.get(uid) == (b"image bytes", f"upload {uid[:8]}")


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "0123456789ABCDEF", "0123"])
def test_ids_are_never_paths(tmp_path, bad):
    with pytest.raises(UserError, match="not an upload id"):
        UploadStore(tmp_path).get(bad)


def test_too_large_is_refused(tmp_path, monkeypatch):
    import core.jobs.uploads as uploads

    monkeypatch.setattr(uploads, "MAX_BYTES", 10)
    with pytest.raises(UserError, match="the limit is"):
        UploadStore(tmp_path).put(b"x" * 11, "big.png")
    assert not any(tmp_path.iterdir())


def test_the_store_keeps_under_its_cap_dropping_the_least_recently_used(tmp_path, monkeypatch):
    import os
    import time

    store = UploadStore(tmp_path)
    ids = []
    for i in range(3):
        ids.append(store.put(bytes([i]) * 1024, f"{i}.png"))
        t = time.time() - 100 + i
        os.utime(store.root / f"{ids[-1]}.bin", (t, t))
    monkeypatch.setenv("INVERSION_UPLOADS_MB", str(2.5 / 1024))  # 2.5 kB: the next upload makes 4 kB
    store.get(ids[0])  # opened by a link: used now
    newest = store.put(b"x" * 1024, "new.png")
    assert store.get(newest) is not None and store.get(ids[0]) is not None
    assert store.get(ids[1]) is None  # the least recently used went
    assert sum(p.stat().st_size for p in tmp_path.glob("*.bin")) <= 2.5 * 1024
