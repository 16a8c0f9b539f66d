"""Read any reasonable image into a square RGB tensor in [0, 1]; write PNGs and grids.

Resizing rule: honour the EXIF orientation, take the first frame, convert to RGB (alpha is
composited on white, 16-bit and CMYK are converted), crop the centred square, resize it to
`size` x `size` with a bicubic (antialiased) filter.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import UserError
from core.paths import ASSETS

ACCEPTED = "PNG, JPEG, GIF, TIFF, BMP or WebP"
MAX_PIXELS = 40_000_000  # refuse larger (decompression bombs); a 6000x6000 photo fits
MAX_BYTES = 50 * 1024 * 1024


def sample_images() -> dict[str, Path]:
    """The bundled sample images, by name."""
    return {p.stem: p for p in sorted(ASSETS.glob("*.png"))}


def _open(data: bytes, name: str) -> Image.Image:
    if not data:
        raise UserError(f"image {name!r} is empty: give a {ACCEPTED} file")
    if len(data) > MAX_BYTES:
        raise UserError(f"image {name!r} is {len(data) / 2**20:.0f} MB: the limit is {MAX_BYTES // 2**20} MB")
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise UserError(f"image {name!r} declares {w}x{h} pixels: the limit is {MAX_PIXELS:,} pixels")
            img.seek(0)
            img.load()
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"image {name!r} declares too many pixels (limit {MAX_PIXELS:,}): refused") from None
    except UnidentifiedImageError:
        raise UserError(f"{name!r} is not an image this tool can read: give a {ACCEPTED} file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UserError(f"image {name!r} is damaged or truncated ({exc}): give a complete {ACCEPTED} file") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        rng = arr.max() - arr.min()
        img = Image.fromarray(((arr - arr.min()) / (rng or 1) * 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def load_image(source: str | os.PathLike | bytes, size: int, name: str | None = None) -> torch.Tensor:
    """An image file (path or bytes) as a (3, size, size) float tensor in [0, 1]."""
    if not isinstance(size, int) or size < 1:
        raise UserError(f"size must be a positive integer (got {size!r})")
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "upload"
    else:
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise UserError(f"image {str(path)!r} not found: give the path to a {ACCEPTED} file")
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"image {name!r} is larger than {MAX_BYTES // 2**20} MB: give a smaller file")
        data = path.read_bytes()
    img = _to_rgb(_open(data, name))
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def to_pil(img: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] -> RGB PIL image."""
    arr = (img.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def upscale(img: torch.Tensor, target: int = 160) -> Image.Image:
    """Nearest-neighbour enlargement by a whole factor, so pixels stay pixels on screen.

    Args:
        img: a (3, H, W) image in [0, 1].
        target: the smallest width wanted, px.

    Returns:
        The PIL image, `img`'s width times the smallest whole factor reaching `target` (no smaller than 1).
    """
    pil = to_pil(img)
    k = max(1, -(-target // pil.width))
    return pil.resize((pil.width * k, pil.height * k), Image.NEAREST) if k > 1 else pil


def grid(rows: list[list[torch.Tensor]], pad: int = 4, scale: int = 1) -> Image.Image:
    """Tile rows of (3, H, W) images (all one size) on a white background."""
    h, w = rows[0][0].shape[-2:]
    h, w = h * scale, w * scale
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * (w + pad) + pad, len(rows) * (h + pad) + pad), "white")
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            tile = to_pil(img)
            if scale != 1:
                tile = tile.resize((w, h), Image.NEAREST)
            canvas.paste(tile, (pad + j * (w + pad), pad + i * (h + pad)))
    return canvas
