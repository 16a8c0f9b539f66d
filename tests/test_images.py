"""Every odd image a user may hand over either loads correctly or is refused with one clear line."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli.main import main
from core.errors import UserError
from core.images import load_image

pytestmark = pytest.mark.fast  # pure and small: part of `make test-fast`


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _bomb() -> bytes:
    """A valid PNG header that declares 100000 x 100000 pixels, in a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def _photo(size=(48, 32)) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _exif_rotated() -> bytes:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: red ends up on top
    return _save(img, "JPEG", exif=exif.tobytes(), quality=95)


def _gif() -> bytes:
    frames = [Image.new("P", (16, 16), i * 60) for i in range(3)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


GOOD = {
    "one_pixel.png": lambda: _png(Image.new("RGB", (1, 1), (10, 200, 30))),
    "strip_4000x3.png": lambda: _png(Image.new("RGB", (4000, 3), (90, 90, 90))),
    "gray16.png": lambda: _png(Image.fromarray(np.full((20, 20), 65535 // 2, dtype=np.uint16))),
    "palette.png": lambda: _png(_photo().convert("P")),
    "rgba.png": lambda: _png(Image.new("RGBA", (20, 20), (255, 0, 0, 0))),
    "cmyk.jpg": lambda: _save(Image.new("CMYK", (20, 20), (0, 255, 255, 0)), "JPEG"),
    "animated.gif": _gif,
    "image.tiff": lambda: _save(_photo(), "TIFF"),
    "exif_rotated.jpg": _exif_rotated,
}

BAD = {
    "empty.png": (lambda: b"", "is empty"),
    "text.png": (lambda: b"this is not an image\n" * 20, "not an image this tool can read"),
    "truncated.png": (lambda: _png(_photo((64, 64)))[:300], "damaged or truncated"),
    "truncated.jpg": (lambda: _save(_photo((64, 64)), "JPEG")[:400], "damaged or truncated"),
    "bomb.png": (_bomb, "pixels"),
}


@pytest.mark.parametrize("name", GOOD)
def test_odd_but_valid_images_load(name):
    x = load_image(GOOD[name](), 8, name=name)
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_conversions_are_correct():
    gray = load_image(GOOD["gray16.png"](), 4)
    assert torch.allclose(gray, torch.full_like(gray, 127 / 255), atol=2 / 255)
    assert torch.allclose(load_image(GOOD["rgba.png"](), 4), torch.ones(3, 4, 4))  # transparent -> white
    cmyk = load_image(GOOD["cmyk.jpg"](), 4)
    assert cmyk[0].mean() > 0.8 and cmyk[1].mean() < 0.2  # cyan-free, magenta+yellow = red
    gif = load_image(GOOD["animated.gif"](), 4)
    assert torch.allclose(gif, gif[:, :1, :1].expand_as(gif))  # first frame, one flat colour


def test_exif_orientation_is_honoured():
    x = load_image(_exif_rotated(), 8)
    top, bottom = x[:, 1, 4], x[:, 6, 4]
    assert top[0] > 0.8 and top[2] < 0.2  # red on top after rotation
    assert bottom[2] > 0.8 and bottom[0] < 0.2


@pytest.mark.parametrize("name", BAD)
def test_bad_images_are_refused_with_a_clear_line(name):
    make, msg = BAD[name]
    with pytest.raises(UserError, match=msg) as info:
        load_image(make(), 8, name=name)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", list(BAD))
def test_bad_images_on_the_command_line(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(BAD[name][0]())
    code = main(["invert", "--model", "resnet18", "--layer", "conv1", "--image", str(path), "--size", "16",
                 "--iters", "1", "--seeds", "1", "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and BAD[name][1] in err


def test_odd_images_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "strip.png"
    path.write_bytes(GOOD["strip_4000x3.png"]())
    code = main(["invert", "--model", "resnet18", "--layer", "conv1", "--image", str(path), "--size", "16",
                 "--iters", "2", "--seeds", "1", "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0 and (tmp_path / "o" / "seed_0.png").exists()
