"""Make the judged set's reconstructions: real runs of the tool whose pairs a person then judges by eye.

    python -m benchmarks judged-set make  [--out tests/fixtures/judged]   # the runs (about 5 min on 2 cores)
    python -m benchmarks judged-set sheet [--out ...]                      # contact sheets to judge, no numbers

`make` inverts each (model, checkpoint, image) at a few stops through the one run pipeline (`iter_curve`),
64 px, the default recipe, seed 0, and writes each reconstruction, the image and the run's start as PNG
plus `runs.json`. The pairs (`PAIRS` below) are chosen so that they go both ways: trained against untrained
at one depth, early against late, untrained early against trained late. `sheet` draws every pair
side by side with the image, without any measure, for the judgement written to `judgements.json`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from core import load_image
from core.engine.loop import start_images
from core.images import sample_images
from core.recipe.presets import DEFAULT
from core.studies.curve import iter_curve

OUT = Path("tests/fixtures/judged")
SIZE = 64
SEED = 0
SKIMAGE = ("stereo_motorcycle", "camera")  # two photos beyond the bundled samples (scikit-image ships them)
IMAGES = ("coffee", "chelsea", "astronaut", "rocket", *SKIMAGE)
# model -> (checkpoints, stops, images)
PLAN = {
    "efficientnet_lite0": (("trained", "untrained"), ("blocks.1.0", "blocks.3.0", "blocks.5.0", "conv_head"), IMAGES),
    "efficientnet_lite2": (("trained", "untrained"), ("blocks.1.0", "blocks.3.0", "blocks.5.0"),
                           ("coffee", "chelsea", "stereo_motorcycle")),
    "resnet18": (("untrained",), ("layer1", "layer3", "layer4"), ("coffee", "chelsea", "astronaut")),
}


def run_id(model: str, ck: str, stop: str, image: str) -> str:
    return f"{model}-{ck}-{stop}-{image}"


def pairs() -> list[tuple[str, str, str]]:
    """(kind, run a, run b) for every judged pair."""
    out = []
    for model, (cks, stops, images) in PLAN.items():
        for img in images:
            if len(cks) == 2:
                out += [("trained-vs-untrained", run_id(model, "trained", s, img), run_id(model, "untrained", s, img))
                        for s in stops]
                out.append(("untrained-early-vs-trained-late", run_id(model, "untrained", stops[0], img),
                            run_id(model, "trained", stops[-1 if model == "resnet18" else 2], img)))
            for ck in cks:
                out.append(("early-vs-late", run_id(model, ck, stops[0], img), run_id(model, ck, stops[-1], img)))
    return out


def _image(name: str) -> torch.Tensor:
    if name in sample_images():
        return load_image(sample_images()[name], SIZE)
    import skimage.data
    arr = getattr(skimage.data, name)()
    arr = arr[0] if isinstance(arr, tuple) else arr
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    side = min(arr.shape[:2])
    y, x = (arr.shape[0] - side) // 2, (arr.shape[1] - side) // 2
    pil = Image.fromarray(arr[y:y + side, x:x + side, :3]).resize((SIZE, SIZE), Image.BICUBIC)
    return torch.from_numpy(np.asarray(pil)).permute(2, 0, 1).float() / 255


def save_png(img: torch.Tensor, path: Path) -> None:
    arr = (img.detach().float().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(path)


def load_png(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255


def make(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_png(start_images([SEED], SIZE, DEFAULT)[0].clamp(0, 1), out / "start.png")
    runs = {}
    for name in IMAGES:
        save_png(_image(name), out / f"image-{name}.png")
    for model, (cks, stops, images) in PLAN.items():
        for name in images:
            image = load_png(out / f"image-{name}.png")  # what the fixture holds is what the runs saw
            for row in iter_curve(model, image, cks, list(stops), seeds=[SEED], preset=DEFAULT, device="cpu",
                                  use_cache=False, batch_stops="on"):
                rid = run_id(model, row.checkpoint, row.layer, name)
                save_png(row.result.images[0], out / f"{rid}.png")
                runs[rid] = {"model": model, "checkpoint": row.checkpoint, "layer": row.layer, "label": row.label,
                             "image": name, "steps": row.result.steps_done,
                             "converged": bool(row.result.metrics["converged"][0])}
                print(rid, runs[rid]["steps"], "converged" if runs[rid]["converged"] else "NOT converged", flush=True)
    (out / "runs.json").write_text(json.dumps(runs, indent=1) + "\n")


def sheet(out: Path) -> None:
    """Contact sheets of the pairs, 10 a sheet: image | a | b, scaled 3x, numbered, no measures."""
    ps = pairs()
    cell = SIZE * 3
    for start in range(0, len(ps), 10):
        chunk = ps[start:start + 10]
        canvas = Image.new("RGB", (cell * 3 + 260, cell * len(chunk)), "white")
        draw = ImageDraw.Draw(canvas)
        for i, (kind, a, b) in enumerate(chunk):
            img_name = a.rsplit("-", 1)[-1]
            for j, p in enumerate((f"image-{img_name}.png", f"{a}.png", f"{b}.png")):
                canvas.paste(Image.open(out / p).resize((cell, cell), Image.NEAREST), (j * cell, i * cell))
            draw.text((cell * 3 + 6, i * cell + 6), f"#{start + i}", fill="black")
        canvas.save(f"/tmp/judged_sheet_{start // 10}.png")
        print(f"/tmp/judged_sheet_{start // 10}.png")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks judged-set")
    ap.add_argument("what", choices=("make", "sheet"))
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    (make if args.what == "make" else sheet)(args.out)
    return 0
