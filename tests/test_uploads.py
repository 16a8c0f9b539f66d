"""Uploaded images kept by hash (core.jobs.uploads): what a link to a run on an upload finds on this server."""

import pytest

from core import UserError
from core.jobs import UploadStore, is_upload_id, upload_id


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
