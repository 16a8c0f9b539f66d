"""Finding 5: do a trained network's deep layers pull arbitrary inputs toward natural images?

Invert inputs that are not natural images (uniform and Gaussian noise, a disc, stripes, a
checkerboard, a flat colour, or any upload) at deep stops, for untrained and trained weights, and
describe every reconstruction with numbers that say how much it "looks like training data":

- `spectral_slope`: the negative slope of log power against log radial frequency. Natural images sit
  near 2 (power ~ 1/f^2); white noise at 0. The image's mean is removed, a 2-D Hann window limits edge
  effects, the power is averaged over the three channels and over rings of integer radius k (cycles per
  image), and a straight line is fitted to log P(k) against log k over k = 2 .. N/4 (`SLOPE_FIT`;
  N/4 cycles per image = 0.25 cycles per pixel keeps away from the resize filter's roll-off near Nyquist).
  A flat image has no power to fit: None.
- `bn_distance`: the DeepInversion prior. Feed the image (with the trained model's input normalisation)
  to the ImageNet-trained EfficientNet-Lite0 and compare, at its first `BN_LAYERS` batch-norm layers, the
  per-channel mean and variance of the features entering the layer with the running statistics stored
  in it: mean over those layers of ||mu - mu_run||_2 + ||var - var_run||_2. Lower is closer to training data.
- `judge_confidence`: the top-1 softmax probability of a *different* trained network (never the one
  being inverted). Only Lite0's trained weights exist offline, so for Lite0 inversions it is unavailable
  (the notes say so); for other models it is Lite0's confidence.

`validate` measures the descriptors on the sample photos against the generated inputs at the run size,
so a reader can see whether a descriptor separates natural from non-natural images before trusting it on
reconstructions. `iter_manifold` runs every input x checkpoint x layer through `core.jobs.pipeline.run` (the one
run pipeline), `natural_gaps` asks whether trained reconstructions sit nearer the natural range than untrained
ones; core/report/manifold.py's `write_manifold` writes manifold.json, manifold.png and manifold.html.

    inputs = load_inputs(["noise", "shapes", "flat"], 64)
    describer = Describer("efficientnet_lite0", 64)
    rows = list(iter_manifold("efficientnet_lite0", inputs, ["untrained", "trained"], ["blocks.5.0", "conv_head"],
                              seeds=[0, 1], preset=get_preset("default", iters=300), describer=describer))
    validation = validate(64, describer)
    core.report.manifold.write_manifold(rows, inputs, validation, settings, Path("out"))
"""

from __future__ import annotations

import copy
import math
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from core.devices import resolve_device
from core.engine.run_reading import status
from core.errors import UserError
from core.images import ACCEPTED, load_image, sample_images
from core.jobs.pipeline import Callbacks, run
from core.jobs.spec import RunSpec
from core.models.checkpoints import load_model, trained_status
from core.models.lock import MODEL_LOCK
from core.models.registry import get_architecture
from core.recipe.presets import get_preset
from core.studies.curve import resolve_layers
from core.studies.deep import deep_stops

KINDS = ("noise", "gaussian", "disc", "stripes", "checker", "flat")
GROUPS = {"shapes": ("disc", "stripes", "checker"), "all": KINDS}
KIND_TEXT = {
    "noise": "uniform noise U(0, 1) per pixel and channel", "gaussian": "Gaussian noise N(0.5, 1/6), clipped to [0, 1]",
    "disc": "a red disc on blue (radius 0.3 N, anti-aliased)", "stripes": "black and white vertical stripes, 8 periods",
    "checker": "a black and white checkerboard, 8 x 8 squares", "flat": "one flat colour (0.8, 0.45, 0.2)",
}
JUDGE = "efficientnet_lite0"  # the one trained network every machine here has (core/models/checkpoints.py, docs/models.md)
BN_LAYERS = 6  # first batch-norm layers of trained Lite0 in the BN prior (fixed before measuring, not tuned)
SLOPE_FIT = (2, 0.25)  # fit from k = 2 cycles per image up to 0.25 * N cycles per image (0.25 cycles per pixel)
NATURAL_SLOPE = 2.0  # the literature's value for natural images (power ~ 1/f^2)
CK_ORDER = {"untrained": 0, "trained": 1}


# --------------------------------------------------------------------------- inputs


def default_size(arch: str | None = None) -> int:
    """The largest size the device makes comfortable: 224 px on a GPU, 64 px on a CPU (at least the model's minimum)."""
    size = 224 if torch.cuda.is_available() else 64
    if arch:
        a = get_architecture(arch)
        size = max(size, a.min_size)
        size += (-size) % a.size_multiple
    return size


def make_input(kind: str, size: int, seed: int = 0) -> torch.Tensor:
    """A generated non-natural input, (3, size, size) float32 in [0, 1]; the same (kind, size, seed) gives the same
    tensor on every machine (a CPU generator). The seed changes the noise kinds only; shapes and flat are fixed."""
    if kind not in KINDS:
        raise UserError(f"unknown input kind {kind!r}: use one of {', '.join(KINDS)}")
    if not isinstance(size, int) or size < 4:
        raise UserError(f"input size must be an integer of at least 4 px (got {size!r})")
    n = size
    g = torch.Generator().manual_seed(int(seed))
    if kind == "noise":
        return torch.rand(3, n, n, generator=g)
    if kind == "gaussian":
        return (0.5 + torch.randn(3, n, n, generator=g) / 6).clamp(0, 1)
    if kind == "flat":
        return torch.tensor([0.8, 0.45, 0.2]).view(3, 1, 1).expand(3, n, n).clone()
    ss = 4  # supersampling: shape edges are anti-aliased, so their spectra are not aliasing artefacts
    c = (torch.arange(n * ss, dtype=torch.float64) + 0.5) / (n * ss)  # pixel-centre coordinates in (0, 1)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    if kind == "disc":
        mask = (((xx - 0.5) ** 2 + (yy - 0.5) ** 2) <= 0.3 ** 2).double()
        fg, bg = torch.tensor([0.9, 0.15, 0.1]), torch.tensor([0.15, 0.3, 0.75])
    elif kind == "stripes":
        mask = (torch.floor(xx * 16) % 2 == 0).double()
        fg, bg = torch.ones(3), torch.zeros(3)
    else:  # checker
        mask = ((torch.floor(xx * 8) + torch.floor(yy * 8)) % 2 == 0).double()
        fg, bg = torch.ones(3), torch.zeros(3)
    cover = mask.view(n, ss, n, ss).mean(dim=(1, 3)).float()
    return (bg.view(3, 1, 1) + (fg - bg).view(3, 1, 1) * cover).clamp(0, 1)


def expand_inputs(names: str | Sequence[str]) -> list[str]:
    """"noise,shapes" -> ["noise", "disc", "stripes", "checker"]; kinds, groups (shapes, all) and paths, in order."""
    items = [s.strip() for s in (names.split(",") if isinstance(names, str) else names) if s and s.strip()]
    out: list[str] = []
    for item in items:
        for name in GROUPS.get(item, (item,)):
            if name not in out:
                out.append(name)
    if not out:
        raise UserError("no input given: use noise, gaussian, shapes (disc, stripes, checker), flat, or an image path")
    return out


def load_inputs(names: str | Sequence[str], size: int, seed: int = 0,
                uploads: dict[str, bytes] | None = None) -> dict[str, torch.Tensor]:
    """Every named input as (3, size, size) in [0, 1], by display name.

    Args:
        names: kinds, groups ("shapes", "all") and image paths, or a comma list of them.
        size: side in px.
        seed: the noise kinds' seed.
        uploads: name -> image bytes (an app upload), read with `core.images.load_image`.
    """
    out: dict[str, torch.Tensor] = {}
    for name in expand_inputs(names) if names else []:
        if name in KINDS:
            out[name] = make_input(name, size, seed)
            continue
        path = Path(name)
        if not path.is_file():
            raise UserError(f"unknown input {name!r}: use noise, gaussian, shapes (or disc, stripes, checker), flat, "
                            f"or the path of a {ACCEPTED} file")
        key = path.stem if path.stem not in out and path.stem not in KINDS else str(path)
        out[key] = load_image(path, size)
    for name, data in (uploads or {}).items():
        key = Path(name).stem or "upload"
        out[key if key not in out else name] = load_image(data, size, name=name)
    if not out:
        raise UserError("no input given: use noise, gaussian, shapes (disc, stripes, checker), flat, or an image")
    return out


# --------------------------------------------------------------------------- descriptors


def radial_power(img: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(k, P(k)): power averaged over the channels and over rings of integer radius k = 1 .. N/2 (cycles per image),
    after removing each channel's mean and applying a 2-D Hann window."""
    x = img.detach().double().cpu()
    if x.dim() == 2:
        x = x.unsqueeze(0)
    n = x.shape[-1]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    w = torch.hann_window(n, periodic=False, dtype=torch.float64)
    power = torch.fft.fft2(x * (w[:, None] * w[None, :])).abs().pow(2).mean(0).numpy()
    f = np.fft.fftfreq(n) * n
    radius = np.rint(np.hypot(f[:, None], f[None, :])).astype(int)
    ks = np.arange(1, n // 2 + 1)
    sums = np.bincount(radius.ravel(), weights=power.ravel(), minlength=n)
    counts = np.bincount(radius.ravel(), minlength=n)
    return ks, sums[ks] / np.maximum(counts[ks], 1)


def spectral_slope(img: torch.Tensor, fit: tuple[float, float] = SLOPE_FIT) -> float | None:
    """The negative slope of log P(k) against log k over k = fit[0] .. fit[1] * N (see the module's docstring).
    About 2 for natural images, 0 for white noise; None for an image with (almost) no variation."""
    x = img.detach().double()
    if float(x.std()) < 1e-4:
        return None
    ks, p = radial_power(x)
    n = x.shape[-1]
    sel = (ks >= fit[0]) & (ks <= max(fit[0] + 2, fit[1] * n)) & (p > 0)
    if sel.sum() < 3:
        return None
    slope = np.polyfit(np.log(ks[sel]), np.log(p[sel]), 1)[0]
    return float(-slope)


def pink_noise(size: int, exponent: float = 2.0, seed: int = 0) -> torch.Tensor:
    """A synthetic image whose power falls as 1/f^exponent (random phases), rescaled to [0, 1]: a known signal."""
    g = torch.Generator().manual_seed(int(seed))
    f = torch.fft.fftfreq(size, dtype=torch.float64) * size
    r = torch.hypot(f[:, None], f[None, :])
    amp = torch.where(r > 0, r.clamp(min=1e-9) ** (-exponent / 2), torch.zeros_like(r))
    out = []
    for _ in range(3):
        noise = torch.randn(size, size, generator=g, dtype=torch.float64)
        out.append(torch.fft.ifft2(torch.fft.fft2(noise) * amp).real)
    x = torch.stack(out)
    x = (x - x.min()) / (x.max() - x.min())
    return x.float()


@dataclass(frozen=True)
class Descriptor:
    name: str
    title: str
    short: str  # in picture captions
    score: str  # how the value is turned into "naturalness" (higher = more natural) for AUC and comparisons
    note: str = ""

    def naturalness(self, v: float | None) -> float | None:
        if v is None:
            return None
        if self.name == "spectral_slope":
            return -abs(v - NATURAL_SLOPE)
        if self.name == "bn_distance":
            return -v
        return v


SLOPE = Descriptor("spectral_slope", "spectral slope (natural ≈ 2)", "slope", "-|slope - 2|",
                   f"negative slope of log power vs log radial frequency, Hann window, channel-mean power, fit over "
                   f"k = {SLOPE_FIT[0]} .. {SLOPE_FIT[1]:g} N cycles per image")
BN = Descriptor("bn_distance", f"BN-statistics distance (trained Lite0, first {BN_LAYERS} BN layers)", "BN",
                "-distance", "DeepInversion prior: mean over the layers of ||mu - mu_run||_2 + ||var - var_run||_2 of "
                "the features entering each batch-norm layer; lower = closer to ImageNet")
JUDGE_DESC = Descriptor("judge_confidence", f"top-1 confidence of a different trained network ({JUDGE})", "conf",
                        "confidence",
                        f"softmax probability of the top class of the ImageNet-trained {JUDGE} (a different network)")


class Describer:
    """Computes the descriptors of a batch of images; built once per run (it holds its own copy of trained Lite0).

    Args:
        arch: the architecture being inverted (the judge must be a different trained network).
        size: image side in px (the BN statistics are measured at it).
        trained: an already loaded trained Lite0 (e.g. the app's cached one; it is deep-copied, because the
            descriptor hooks its batch-norm layers); None loads it when its weights are on disk.
        bn_layers: how many of the first batch-norm layers the BN prior uses.

    Attributes:
        descriptors: the available ones, in order; `notes`: name -> why a descriptor is unavailable.
    """

    def __init__(self, arch: str, size: int, trained=None, bn_layers: int = BN_LAYERS):
        self.size, self.notes = int(size), {}
        self._lock = threading.Lock()
        model = None
        if trained is not None:
            model = copy.copy(trained)
            model.module = copy.deepcopy(trained.module)
        elif trained_status(JUDGE)["cached"]:
            model = load_model(JUDGE, "trained", self.size)
        self.model = model
        self.descriptors = [SLOPE]
        if model is None:
            self.notes[BN.name] = f"trained {JUDGE} weights are not on this machine, so its BN statistics are unknown"
        else:
            bns = [m for m in model.module.modules() if isinstance(m, torch.nn.BatchNorm2d)][:bn_layers]
            self._bns = bns
            self.descriptors.append(BN)
        if model is None or arch == JUDGE:
            have = f"the only one on this machine is {JUDGE}, the inverted network itself" if model is not None \
                else f"not even {JUDGE}'s trained weights are on this machine"
            self.notes[JUDGE_DESC.name] = (f"unavailable: it needs a trained network other than the inverted {arch}, "
                                           f"and {have} (other ImageNet weights need a download, e.g. "
                                           "`python -m core download resnet18`)")
        else:
            self.descriptors.append(JUDGE_DESC)

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.descriptors]

    def __call__(self, images: torch.Tensor) -> dict[str, list[float | None]]:
        """name -> one value per image of a (B, 3, N, N) batch (or one (3, N, N) image) in [0, 1]."""
        x = images.detach().float().cpu().clamp(0, 1)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        out: dict[str, list[float | None]] = {SLOPE.name: [spectral_slope(im) for im in x]}
        if self.model is None:
            return out
        stats: list[tuple[torch.Tensor, torch.Tensor]] = []

        def hook(module, args):
            feat = args[0].double()
            stats.append((feat.mean(dim=(2, 3)), feat.var(dim=(2, 3), unbiased=False)))

        mean = torch.tensor(self.model.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(self.model.std, dtype=torch.float32).view(1, 3, 1, 1)
        with self._lock, torch.no_grad(), MODEL_LOCK.shared():
            handles = [bn.register_forward_pre_hook(hook) for bn in self._bns]
            try:
                logits = self.model.module((x - mean) / std)
            finally:
                for h in handles:
                    h.remove()
        dist = torch.zeros(x.shape[0], dtype=torch.float64)
        for bn, (mu, var) in zip(self._bns, stats):
            dist += (mu - bn.running_mean.double()).norm(dim=1) + (var - bn.running_var.double()).norm(dim=1)
        out[BN.name] = (dist / max(1, len(stats))).tolist()
        if JUDGE_DESC in self.descriptors:
            out[JUDGE_DESC.name] = logits.float().softmax(-1).max(-1).values.tolist()
        return out


def finite_mean(values) -> float | None:
    """The mean of the finite values (None and NaN are a seed without a value); None when there are none."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(vals) if vals else None


# --------------------------------------------------------------------------- validation


def auc(natural: Sequence[float], other: Sequence[float]) -> float | None:
    """P(a natural score > a non-natural score), ties counting half; None when either side is empty."""
    nat, oth = [v for v in natural if v is not None], [v for v in other if v is not None]
    if not nat or not oth:
        return None
    wins = sum((a > b) + 0.5 * (a == b) for a in nat for b in oth)
    return wins / (len(nat) * len(oth))


def validate(size: int, describer: Describer, seed: int = 0) -> dict:
    """The descriptors on the sample photos (natural) and the generated inputs (non-natural) at `size`.

    Returns:
        {"size", "natural": {name: {descriptor: value}}, "generated": {...}, "descriptors": {descriptor:
        {"title", "score", "note", "natural_range": [lo, hi], "inside_range": [generated names in that range],
        "auc" (natural vs generated, by the naturalness score), "auc_noise" (vs uniform and Gaussian noise only),
        "margin" (lowest natural score minus highest generated score: > 0 separates them all)}},
        "unavailable": {descriptor: why}}.
    """
    natural = {name: load_image(path, size) for name, path in sample_images().items()}
    generated = {k: make_input(k, size, seed) for k in KINDS}
    vals_n = describer(torch.stack(list(natural.values())))
    vals_g = describer(torch.stack(list(generated.values())))
    out = {"size": size, "natural": {n: {d: vals_n[d][i] for d in vals_n} for i, n in enumerate(natural)},
           "generated": {n: {d: vals_g[d][i] for d in vals_g} for i, n in enumerate(generated)},
           "descriptors": {}, "unavailable": dict(describer.notes)}
    for d in describer.descriptors:
        nat = [v for v in vals_n[d.name] if v is not None]
        sn = [d.naturalness(v) for v in nat]
        sg = {n: d.naturalness(v) for n, v in zip(generated, vals_g[d.name]) if v is not None}
        lo, hi = (min(nat), max(nat)) if nat else (None, None)
        noise = [sg[k] for k in ("noise", "gaussian") if k in sg]
        out["descriptors"][d.name] = {
            "title": d.title, "score": d.score, "note": d.note, "natural_range": [lo, hi],
            "inside_range": [n for n, v in zip(generated, vals_g[d.name]) if v is not None and lo is not None
                             and lo <= v <= hi],
            "undefined_for": [n for n, v in zip(generated, vals_g[d.name]) if v is None],
            "auc": auc(sn, list(sg.values())), "auc_noise": auc(sn, noise),
            "margin": (min(sn) - max(sg.values())) if sn and sg else None,
        }
    return out


def gap(value: float | None, band: Sequence[float | None]) -> float | None:
    """How far `value` lies outside the natural range [lo, hi] (0 inside)."""
    lo, hi = band
    if value is None or lo is None:
        return None
    return max(0.0, lo - value, value - hi)


# --------------------------------------------------------------------------- runs


@dataclass
class ManifoldRow:
    """One inversion of one input at one layer with one checkpoint, with the descriptors of what came back."""

    checkpoint: str
    layer: str
    label: str
    depth: float
    input: str
    result: object  # core.engine.result.InversionResult
    descriptors: dict  # descriptor -> one value per seed (the reconstructions)
    input_descriptors: dict  # descriptor -> the input's own value
    cached: bool = False

    def value(self, name: str, seed_index: int = 0) -> float | None:
        vals = self.descriptors.get(name) or []
        return vals[seed_index] if seed_index < len(vals) else None

    def to_json(self) -> dict:
        m = self.result.metrics
        row = {"checkpoint": self.checkpoint, "layer": self.layer, "label": self.label, "depth": self.depth,
               "input": self.input, "clarity": m["clarity"], "converged": all(m["converged"]),
               "converged_seeds": sum(m["converged"]), "status": status(m), "steps_done": self.result.steps_done,
               "seconds": round(self.result.seconds, 3), "cached": self.cached}
        for name, vals in self.descriptors.items():
            row[name] = vals[0] if vals else None
            row[f"{name}_mean"] = finite_mean(vals)
            row[f"{name}_seeds"] = list(vals)
            row[f"input_{name}"] = self.input_descriptors.get(name)
        return row


def iter_manifold(arch: str, inputs: dict[str, torch.Tensor], checkpoints: Sequence[str], layers=None, *,
                  seeds: Sequence[int] = (0, 1), preset=None, device: str = "auto", init_seed: int = 0,
                  describer: Describer | None = None, models: Sequence | None = None, cache=None,
                  use_cache: bool = True, callbacks: Callbacks | None = None,
                  every: int | None = None, speed=None) -> Iterator[ManifoldRow]:
    """One row per (checkpoint, layer, input), each through `core.jobs.pipeline.run` (cache, queue, memory plan, store).

    Args:
        arch: architecture name.
        inputs: name -> (3, N, N) in [0, 1], all one size (`load_inputs`).
        checkpoints: "untrained", "trained" or state-dict paths; each model is loaded once (or pass `models`).
        layers: node names or depth stops (None: the model's deep stops, `core.studies.deep.deep_stops`).
        seeds, preset, device, init_seed: as for `core.jobs.spec.RunSpec.of` (preset default: `default`).
        describer: computes the descriptors (default: `Describer(arch, N)`).
        models: already loaded models, one per checkpoint.
        cache, use_cache, every, speed: as for `core.jobs.pipeline.run` (a report fixes `speed`'s CPU threads, so
            its numbers do not follow a timing probe).
        callbacks: the hooks (`core.jobs.pipeline.Callbacks`): `stop(done, total, checkpoint, layer)` before each
            run (its input is `list(inputs)[done % len(inputs)]`: inputs run in order within a layer) and
            (total, total, "", "") at the end; the others are passed to each run.

    Returns:
        An iterator of `ManifoldRow`s: checkpoint by checkpoint, layers in forward order, inputs in order.
    """
    if not checkpoints:
        raise UserError("choose at least one checkpoint (untrained, trained or a path)")
    if not inputs:
        raise UserError("choose at least one input")
    size = int(next(iter(inputs.values())).shape[-1])
    preset = preset or get_preset("default")
    dev = resolve_device(device)
    models = list(models) if models is not None else [load_model(arch, ck, size, init_seed) for ck in checkpoints]
    plan = resolve_layers(models[0], layers or deep_stops(models[0]))
    describer = describer or Describer(arch, size)
    names = list(inputs)
    own = describer(torch.stack([inputs[n] for n in names]))
    input_desc = {n: {d: own[d][i] for d in own} for i, n in enumerate(names)}
    total, done = len(models) * len(plan) * len(names), 0
    on_stop = (callbacks or Callbacks()).next_run
    for ck, model in zip(checkpoints, models):
        for depth, node, label in plan:
            for name in names:
                if on_stop:
                    on_stop(done, total, ck, node)
                image = inputs[name]
                spec = RunSpec.of(model, node, image, list(seeds), preset, dev, checkpoint=ck)
                job = run(spec, image, model, cache=cache, use_cache=use_cache, callbacks=callbacks, every=every,
                          speed=speed)
                done += 1
                yield ManifoldRow(ck, node, label, depth, name, job.result, describer(job.result.images),
                                  input_desc[name], cached=job.cached)
    if on_stop:
        on_stop(done, total, "", "")


# --------------------------------------------------------------------------- reading the rows


def natural_gaps(rows: Sequence[ManifoldRow], validation: dict) -> dict:
    """Per descriptor: for every (input, layer) run with both checkpoints, the seed-mean value of the untrained and
    trained reconstructions, their distance outside the natural range (`gap`) and which one is more natural by the
    descriptor's score; plus counts. The question: do trained reconstructions move toward natural values?"""
    by = {(r.checkpoint, r.layer, r.input): r for r in rows}
    out = {}
    for name, v in validation["descriptors"].items():
        desc = next(d for d in (SLOPE, BN, JUDGE_DESC) if d.name == name)
        band = v["natural_range"]
        pairs = []
        for (ck, layer, inp), r in by.items():
            t = by.get(("trained", layer, inp))
            if ck != "untrained" or t is None:
                continue
            u_v, t_v = finite_mean(r.descriptors.get(name, [])), finite_mean(t.descriptors.get(name, []))
            if u_v is None or t_v is None:
                continue
            pairs.append({"input": inp, "layer": layer, "input_value": r.input_descriptors.get(name), "untrained": u_v,
                          "trained": t_v, "untrained_gap": gap(u_v, band), "trained_gap": gap(t_v, band),
                          "trained_more_natural": desc.naturalness(t_v) > desc.naturalness(u_v),
                          "untrained_inside": gap(u_v, band) == 0, "trained_inside": gap(t_v, band) == 0})
        out[name] = {"pairs": pairs, "of": len(pairs),
                     "trained_more_natural": sum(p["trained_more_natural"] for p in pairs),
                     "trained_closer_to_range": sum(p["trained_gap"] < p["untrained_gap"] for p in pairs),
                     "untrained_closer_to_range": sum(p["untrained_gap"] < p["trained_gap"] for p in pairs),
                     "inside_range": {"untrained": sum(p["untrained_inside"] for p in pairs),
                                      "trained": sum(p["trained_inside"] for p in pairs)},
                     "mean_gap": {"untrained": finite_mean(p["untrained_gap"] for p in pairs),
                                  "trained": finite_mean(p["trained_gap"] for p in pairs)}}
    return out


def layers_of(rows: Sequence[ManifoldRow]) -> list[tuple[str, str]]:
    """(layer, label) of the rows, in forward order."""
    return [(layer, label) for _, layer, label in sorted({(r.depth, r.layer, r.label) for r in rows})]


def by_input(rows: Sequence[ManifoldRow], name: str) -> dict | None:
    """The input's own descriptor values (from any row of that input)."""
    return next((r.input_descriptors for r in rows if r.input == name), None)
