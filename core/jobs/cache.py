"""An on-disk cache of finished runs, keyed by the full settings and a hash of the image.

Entries are written atomically (temporary file beside the target, then rename), so a crash
mid-write never leaves a half entry; an entry that cannot be read back (truncated, edited,
from another version) is treated as missing and removed, never shown. Tensors are stored
with `torch.save` and read with `weights_only=True`, so an entry cannot run code.

    cache = RunCache(default_dir())
    key = run_key({"model": "resnet18", ...}, image)
    result = cache.get(key) or compute()
    cache.put(key, result)

The cache is capped (`$INVERSION_CACHE_MB`, default `MAX_TOTAL_MB`): a `put` that takes it past the cap removes
the least recently used entries (a read counts as a use), except those used in the last `FRESH_S` seconds, so a
shared server's visitors never lose what they are looking at to another visitor's runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
from pathlib import Path

import torch

from core.atomic import atomic_write
from core.engine.loop import start_images
from core.engine.result import InversionResult
from core.measures import baseline, measure
from core.paths import CACHE
from core.recipe.presets import Preset

FORMAT = 5  # bump when the stored layout or the meaning of a result changes (5: clarity from the measures panel)
UPGRADABLE = 4  # an entry of this format is read and given the measures panel (its layout is FORMAT's)
SUFFIX = ".pt"
MAX_TOTAL_MB = 4096  # the cache's size cap ($INVERSION_CACHE_MB); past it the least recently used entries go
FRESH_S = 900.0  # entries used in the last 15 minutes are never pruned (a visitor's results on screen, their links)


def cap_bytes() -> float:
    """The cache's cap in bytes: `$INVERSION_CACHE_MB` (a number), else `MAX_TOTAL_MB`."""
    try:
        return float(os.environ.get("INVERSION_CACHE_MB", MAX_TOTAL_MB)) * 2**20
    except ValueError:
        return MAX_TOTAL_MB * 2**20


def default_dir() -> Path:
    """`$INVERSION_CACHE_DIR`, else `.cache/runs` in the project folder."""
    env = os.environ.get("INVERSION_CACHE_DIR")
    if env:
        return Path(env)
    return CACHE


def image_hash(image: torch.Tensor) -> str:
    """SHA-256 of the image as the engine sees it (float32, after loading and resizing)."""
    data = image.detach().float().cpu().contiguous().numpy().tobytes()
    return hashlib.sha256(data + repr(tuple(image.shape)).encode()).hexdigest()


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_key(settings: dict, image: torch.Tensor | None = None) -> str:
    """A stable key for `settings` (any JSON-able dict) plus the image's hash."""
    payload = {"format": FORMAT, "settings": settings, "image": image_hash(image) if image is not None else None}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def encode_result(result: InversionResult) -> bytes:
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "json": json.dumps(result.to_json()),
                "original": result.original.detach().float().cpu().contiguous(),
                "images": result.images.detach().float().cpu().contiguous()}, buf)
    return buf.getvalue()


def decode_result(data: bytes) -> InversionResult:
    """The inverse of `encode_result`; raises ValueError for anything that is not a valid entry."""
    return _decode(data)[0]


def _decode(data: bytes) -> tuple[InversionResult, bool]:
    """`decode_result`, and whether the entry was of the older format (measured again here)."""
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is simply not an entry
        raise ValueError(f"unreadable cache entry ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") not in (FORMAT, UPGRADABLE):
        raise ValueError("cache entry of another format")
    try:
        j = json.loads(obj["json"])
        original, images = obj["original"], obj["images"]
        if not (isinstance(original, torch.Tensor) and isinstance(images, torch.Tensor)):
            raise ValueError("cache entry without images")
        if images.shape[0] != len(j["seeds"]) or tuple(original.shape) != tuple(images.shape[1:]):
            raise ValueError("cache entry with inconsistent images")
        result = InversionResult(
            model=j["model"], checkpoint=j["checkpoint"], layer=j["layer"], label=j["label"], size=j["size"],
            preset=Preset(**j["preset_settings"]), seeds=list(j["seeds"]), device=j["device"],
            seconds=float(j["seconds"]), steps_done=int(j["steps_done"]), stopped_early=bool(j["stopped_early"]),
            original=original, images=images, embedding_shape=tuple(j["embedding_shape"]),
            metrics=j["metrics"], history=j["history"], spec=j.get("spec") or {},
        )
        return (result, False) if obj["format"] == FORMAT else (_with_measures(result), True)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed cache entry ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - e.g. UserError from an invalid stored preset
        raise ValueError(f"malformed cache entry ({exc})") from None


def _with_measures(result: InversionResult) -> InversionResult:
    """An entry stored before the measures panel, measured now: its starts are remade from its seeds and
    recipe (the engine's `start_images`, then the recipe's parameterisation), so its clarity is today's."""
    with torch.no_grad():
        starts = result.preset.param.create(start_images(result.seeds, result.size, result.preset)).image()
    base = baseline(result.original, starts.detach().float().cpu().clamp(0, 1), result.model)
    result.metrics = dataclasses.replace(result.metrics, **measure(result.images, base))
    return result


class RunCache:
    """Finished results on disk, one file per key. `get` never raises for a bad entry.

    `fallbacks` are read-only folders of the same layout searched after `root` (the project
    ships its first example in one, so a first visit is instant); they are never written.
    """

    def __init__(self, root: str | os.PathLike | None = None, fallbacks=()):
        self.root = Path(root) if root is not None else default_dir()
        self.fallbacks = [Path(f) for f in fallbacks]

    @staticmethod
    def _check(key: str) -> None:
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")

    def path(self, key: str, root: Path | None = None) -> Path:
        self._check(key)
        return (root or self.root) / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> InversionResult | None:
        for i, root in enumerate([self.root, *self.fallbacks]):
            path = self.path(key, root)
            try:
                data = path.read_bytes()
            except OSError:
                continue
            try:
                result, upgraded = _decode(data)
            except ValueError:
                if i == 0:  # a corrupt entry is dropped so that the next finished run replaces it
                    try:
                        path.unlink()
                    except OSError:
                        pass
                continue
            if upgraded and i == 0:  # measured once: stored in today's format (a read-only fallback is not written)
                try:
                    atomic_write(path, encode_result(result))
                except OSError:
                    pass
            elif i == 0:
                try:
                    os.utime(path)  # used now: the last to be pruned
                except OSError:
                    pass
            return result
        return None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def has(self, key: str) -> bool:
        """Whether an entry is on disk for `key` (here or in a fallback), without reading it: a forecast's cheap
        lookup (`in` reads and checks the whole result; a 224 px one is about 2 MB)."""
        return any(self.path(key, root).exists() for root in [self.root, *self.fallbacks])

    def put(self, key: str, result: InversionResult) -> Path | None:
        """Store a finished run; stopped runs are not stored (they are not the settings' answer)."""
        if result.stopped_early:
            return None
        path = self.path(key)
        atomic_write(path, encode_result(result))
        self.trim(keep=key)
        return path

    def size(self) -> int:
        """Bytes held in `root` (the fallbacks are not counted: they are never written)."""
        return sum(size for _, _, size in self._entries())

    def _entries(self) -> list[tuple[float, Path, int]]:
        out = []
        try:
            for sub in os.scandir(self.root):
                if not sub.is_dir():
                    continue
                for e in os.scandir(sub.path):
                    if e.name.endswith(SUFFIX):
                        st = e.stat()
                        out.append((st.st_mtime, Path(e.path), st.st_size))
        except OSError:
            pass
        return out

    def trim(self, keep: str | None = None, cap: float | None = None, now: float | None = None) -> int:
        """Remove the least recently used entries until `root` holds at most `cap` bytes (default: `cap_bytes()`);
        returns how many went. `keep` (the entry just stored) and entries used in the last `FRESH_S` seconds stay,
        even if the cache then stays above its cap until they age."""

        cap = cap_bytes() if cap is None else cap
        entries = self._entries()
        total = sum(size for _, _, size in entries)
        if total <= cap:
            return 0
        now = time.time() if now is None else now
        gone = 0
        for mtime, path, size in sorted(entries):
            if total <= cap or now - mtime < FRESH_S:
                break
            if keep is not None and path.name == f"{keep}{SUFFIX}":
                continue
            try:
                path.unlink()
            except OSError:
                continue
            total, gone = total - size, gone + 1
        return gone
