"""Uploaded images kept on this server by their hash, so a link to a run on an upload reproduces it here.

A link cannot carry an image, but it can carry the hash of one this server already holds: the page stores the
upload's bytes under `upload_id(bytes)` (the first 16 hex digits of their SHA-256) and puts that id in its link;
whoever opens the link on this server gets the same bytes back, hence the same tensor, the same run key and the
run from the cache. On another server (or after the folder is cleared) the id finds nothing, and the page says
so and asks for the file. The bytes are stored as uploaded (at most `core.images.MAX_BYTES`), never decoded here.

    store = UploadStore()
    uid = store.put(data, "cat.png")    # -> "3f2a…" (16 hex digits)
    store.get(uid)                      # -> (data, "cat.png"), or None on another server
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from core.atomic import atomic_write
from core.errors import UserError
from core.images import MAX_BYTES

ID_LEN = 16  # hex digits of SHA-256: a collision among a server's uploads is not a practical concern
MAX_TOTAL_MB = 2048  # the store's size ($INVERSION_UPLOADS_MB): past it, the least recently used uploads go


def upload_id(data: bytes) -> str:
    """The id of an upload: the first `ID_LEN` hex digits of the SHA-256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:ID_LEN]


def is_upload_id(text: str) -> bool:
    return len(text) == ID_LEN and all(c in "0123456789abcdef" for c in text)


def default_root() -> Path:
    """`uploads/` inside the run cache's folder (`core.jobs.cache.default_dir`): it goes where the runs go."""
    from core.jobs.cache import default_dir

    return default_dir() / "uploads"


class UploadStore:
    """Uploaded files by id, one file of bytes and one of metadata (its name) each, written atomically."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()

    def _paths(self, uid: str) -> tuple[Path, Path]:
        if not is_upload_id(uid):
            raise UserError(f"not an upload id: {uid!r} (16 hex digits)")
        return self.root / f"{uid}.bin", self.root / f"{uid}.json"

    def put(self, data: bytes, name: str) -> str:
        """Keep `data` (an upload called `name`) and return its id; the same bytes give the same id.

        Raises:
            UserError: the file is larger than `core.images.MAX_BYTES`.
            OSError: the folder cannot be written (the caller's link then leaves the image out).
        """
        if len(data) > MAX_BYTES:
            raise UserError(f"{name!r} is {len(data) / 2**20:.0f} MB: the limit is {MAX_BYTES // 2**20} MB")
        uid = upload_id(data)
        blob, meta = self._paths(uid)
        if not blob.exists() or blob.stat().st_size != len(data):
            atomic_write(blob, data)
        if not meta.exists():  # the first name it was uploaded under (a page stores it again on every rerun)
            atomic_write(meta, json.dumps({"name": str(name)}))
        os.utime(blob)  # used now: the last to go
        self.trim(keep=uid)
        return uid

    def trim(self, keep: str | None = None) -> int:
        """Remove the least recently used uploads until the store is under `$INVERSION_UPLOADS_MB` (default
        2048 MB); returns how many went. `keep` is never removed (the upload just stored)."""
        try:
            cap = float(os.environ.get("INVERSION_UPLOADS_MB", MAX_TOTAL_MB)) * 2**20
        except ValueError:
            cap = MAX_TOTAL_MB * 2**20
        try:
            blobs = sorted(self.root.glob("*.bin"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return 0
        total, gone = sum(p.stat().st_size for p in blobs), 0
        for p in blobs:
            if total <= cap:
                break
            if p.stem == keep:
                continue
            size = p.stat().st_size
            for q in (p, p.with_suffix(".json")):
                try:
                    q.unlink()
                except OSError:
                    pass
            total, gone = total - size, gone + 1
        return gone

    def get(self, uid: str) -> tuple[bytes, str] | None:
        """(bytes, name) of upload `uid`, or None when this server does not hold it (or holds a damaged copy)."""
        blob, meta = self._paths(uid)
        try:
            data = blob.read_bytes()
        except OSError:
            return None
        if upload_id(data) != uid:  # damaged: never show another image under this id
            return None
        try:
            os.utime(blob)  # a link opened: used now
        except OSError:
            pass
        try:
            name = json.loads(meta.read_text()).get("name") or f"upload {uid[:8]}"
        except (OSError, ValueError, AttributeError):
            name = f"upload {uid[:8]}"
        return data, str(name)
