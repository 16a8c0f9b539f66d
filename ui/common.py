"""Streamlit helpers shared by the pages: cached models, pickers, the live run, result views.

Everything that computes goes through `core`; this module only wires it to widgets. Errors a
user can fix arrive as `core.UserError` and are shown with `st.error`; anything else is shown
as a short message (traceback in the server log), and the page keeps working.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import traceback
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
import torch
from PIL import Image

from core import (ARCHITECTURES, DivergenceError, Inversion, UserError, depth_stops,
                  download_trained, get_preset, load_image, load_model, sample_images, stop_shapes,
                  trained_status)
from core.classify import predict
from core.devices import describe, resolve_device
from core.engine import InversionResult
from core.images import to_pil
from core.runcache import RunCache, file_hash
from core.runqueue import queue_for
from core.speed import is_oom, run_resilient
from core.verdict import reading

log = logging.getLogger("inversion.app")

CHECKPOINT_SUFFIXES = ["pth", "pt", "safetensors", "bin"]
MAX_UPLOAD_MB = 200  # = server.maxUploadSize in .streamlit/config.toml; checked here too (AppTest, other configs)
UPLOAD_DIR: str | None = None  # where an uploaded checkpoint is kept while it is read (None: the system's temp dir)
IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "tif", "tiff", "bmp", "webp"]
SIZES = [32, 48, 64, 96, 128, 160, 192, 224, 256, 299]
ON_GPU = torch.cuda.is_available()
# The default run: seconds on a small CPU, a clear picture on a GPU.
DEFAULTS = {
    "model": "efficientnet_lite0", "ckpt": "trained", "image": "chelsea", "preset": "default", "device": "auto",
    "seeds": 4 if ON_GPU else 2, "iters": 300 if ON_GPU else 150, "size": 128 if ON_GPU else 64,
}
DEFAULT_LAYERS = {"efficientnet_lite0": "blocks.1.1", "resnet18": "layer2", "resnet50": "layer2",
                  "resnet152": "layer2"}


# --------------------------------------------------------------------------- errors


@contextmanager
def errors(what: str = ""):
    """Show a UserError as st.error and carry on; other errors get a short message, not a traceback."""
    try:
        yield
    except UserError as exc:
        st.error(f"{what}{exc}")
    except Exception as exc:  # noqa: BLE001 - the page must stay usable; details go to the log
        log.error("unexpected error%s\n%s", f" in {what}" if what else "", traceback.format_exc())
        st.error(f"{what}unexpected error: {type(exc).__name__}: {str(exc)[:300]} (details in the server log)")


# --------------------------------------------------------------------------- devices and models


def device_options() -> list[str]:
    opts = ["auto", "cpu"]
    if torch.cuda.is_available():
        opts += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        opts.append("mps")
    return opts


def device_text(name: str) -> str:
    try:
        return describe(resolve_device(name))
    except UserError as exc:
        return f"unavailable ({exc})"


def plural(n: int, word: str) -> str:
    """"1 seed", "2 seeds"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def model_label(arch: str) -> str:
    """The model selector's text: the title, and the id where the title does not already spell it
    ("ResNet-18", "GoogLeNet (Inception v1) · googlenet"), so the closed selector in the sidebar is not cut off."""
    title = ARCHITECTURES[arch].title
    same = "".join(ch for ch in title.lower() if ch.isalnum()) == "".join(ch for ch in arch if ch.isalnum())
    return title if same else f"{title} · {arch}"


def model_size(arch: str, size: int) -> int:
    """Only ViTs depend on the input size (position embeddings); everything else is built at 224."""
    return size if arch.startswith("vit_") else 224


@st.cache_resource(show_spinner="Loading the model…", max_entries=12)
def _cached_model(arch: str, checkpoint_id: str, msize: int, init_seed: int, _path: str | None = None):
    return load_model(arch, _path or checkpoint_id, msize, init_seed)


def get_model(arch: str, checkpoint: str, size: int, init_seed: int = 0, upload=None):
    """(model, checkpoint id for cache keys, display name). `upload` = a Streamlit UploadedFile."""
    msize = model_size(arch, size)
    if checkpoint != "upload":
        return _cached_model(arch, checkpoint, msize, init_seed), checkpoint, checkpoint
    if upload is None:
        raise UserError("choose a state-dict file to upload (.pth, .pt, .safetensors or .bin)")
    suffix = Path(upload.name).suffix.lower()
    if suffix.lstrip(".") not in CHECKPOINT_SUFFIXES:
        raise UserError(f"checkpoint {upload.name!r}: expected a .pth, .pt, .safetensors or .bin file")
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_UPLOAD_MB * 2**20:
        raise UserError(f"checkpoint {upload.name!r} is {size / 2**20:.0f} MB: the upload limit is {MAX_UPLOAD_MB} MB")
    data = upload.getvalue()
    if len(data) > MAX_UPLOAD_MB * 2**20:
        raise UserError(f"checkpoint {upload.name!r} is {len(data) / 2**20:.0f} MB: the upload limit is "
                        f"{MAX_UPLOAD_MB} MB")
    digest = file_hash(data)
    ck_id = f"upload:{digest}"
    # The bytes go to a private (0600) temporary file, are read as tensors only (weights_only / safetensors,
    # never unpickled into objects), and the file is removed whatever happens.
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="upload-", dir=UPLOAD_DIR)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        model = _cached_model(arch, ck_id, msize, init_seed, _path=path)
    except UserError as exc:
        raise UserError(str(exc).replace(Path(path).name, upload.name)) from None
    finally:
        os.remove(path)
    return model, ck_id, f"{upload.name} ({digest[:8]})"


@st.cache_resource(show_spinner=False, max_entries=32)
def stops_of(arch: str) -> list[tuple[str, str]]:
    """(node, label) of every depth stop, in forward order."""
    m = _cached_model(arch, "untrained", model_size(arch, 224), 0)
    return [(s.node, s.label) for s in depth_stops(m)]


def shapes_of(arch: str, size: int) -> dict:
    try:
        model = _cached_model(arch, "untrained", model_size(arch, size), 0)
        return stop_shapes(model, size)  # core takes the tracing lock (core/modellock.py)
    except Exception:  # noqa: BLE001 - shapes are a nicety
        return {}


def default_layer(arch: str) -> str:
    nodes = [n for n, _ in stops_of(arch)]
    want = DEFAULT_LAYERS.get(arch)
    return want if want in nodes else nodes[len(nodes) // 3]


def sizes_for(arch: str) -> list[int]:
    a = ARCHITECTURES[arch]
    return [s for s in SIZES if s >= a.min_size and s % a.size_multiple == 0] or [max(a.min_size, 224)]


def run_controls(prefix: str, arch: str, min_seeds: int = 1):
    """Seeds, iterations and size in a right-hand column; returns (image column, seeds, iters, size)."""
    sizes = sizes_for(arch)
    if st.session_state.get(prefix + "size") not in sizes:
        wanted = st.session_state.get(prefix + "size") or 64
        st.session_state[prefix + "size"] = min(sizes, key=lambda s: abs(s - wanted))
    c_img, c_set = st.columns([3, 2])
    with c_set:
        seeds_n = st.slider("Seeds", min_seeds, 8, key=prefix + "seeds")
        iters = st.number_input("Iterations", 10, 5000, step=10, key=prefix + "iters")
        size = st.select_slider("Image size (px)", sizes, key=prefix + "size")
    return c_img, seeds_n, iters, size


def size_notice(arch: str, want, new: int, sizes: list[int]) -> str:
    """One line: why the page changed the image size from `want` to `new` for `arch`."""
    a = ARCHITECTURES[arch]
    rule = f"at least {a.min_size} px" + (f", a multiple of {a.size_multiple}" if a.size_multiple > 1 else "")
    try:
        a.check_size(int(want))
        why = f"is not one of the offered sizes ({', '.join(map(str, sizes))})"
    except (UserError, ValueError, TypeError):
        why = f"does not suit {arch} ({rule})"
    return f"size {want} px {why}: using {new} px"


def preset_with_lr(name: str, iters: int, lr: float = 0.0):
    """The preset with `iters`, and `lr` (> 0) as its starting learning rate (lr_end keeps its ratio), as the CLI's --lr."""
    preset = get_preset(name, iters=int(iters))
    return preset.with_lr(float(lr)) if lr and lr > 0 else preset


def trained_panel(arch: str, key: str) -> bool:
    """Whether trained weights are usable now; otherwise explain and offer the download."""
    status = trained_status(arch)
    if status["cached"]:
        return True
    size = f"{status['size_mb']:.0f} MB" if status.get("size_mb") else "a download"
    st.warning(f"Trained weights for {arch} are not on this machine ({size}). Download them here if this "
               f"machine has a network; offline, copy `{status['url']}` to `{status['path']}` and reload.")
    if st.button(f"Download trained {arch} weights ({size})", key=f"{key}_download"):
        bar = st.progress(0.0, text="downloading…")

        def progress(done, total):
            bar.progress(min(1.0, done / total) if total else 0.0,
                         text=f"downloading… {done / 2**20:.1f} of {total / 2**20:.1f} MB")

        with errors("download failed: "):
            download_trained(arch, progress)
            st.success("Downloaded.")
            return True
    return False


# --------------------------------------------------------------------------- images


@st.cache_data(show_spinner=False, max_entries=64)
def _thumb(path: str) -> Image.Image:
    img = Image.open(path).convert("RGB")
    img.thumbnail((96, 96))
    return img


def image_picker(key: str, size: int, columns=None):
    """Bundled samples as thumbnails plus an upload; returns (image tensor, name) or raises UserError."""
    samples = sample_images()
    names = list(samples) + ["upload…"]
    cols = (columns or st).columns(len(samples))
    for col, (name, path) in zip(cols, samples.items()):
        col.image(_thumb(str(path)), caption=name, width=72)
    choice = st.radio("Image", names, key=key, horizontal=True)
    if choice == "upload…":
        up = st.file_uploader("Upload an image", type=IMAGE_TYPES, key=f"{key}_file")
        if up is None:
            raise UserError("upload an image (PNG, JPEG, GIF, TIFF, BMP or WebP), or pick a sample")
        return read_upload_image(up, size), up.name
    return load_image(samples[choice], size), choice


def read_upload_image(up, size: int) -> torch.Tensor:
    """An uploaded image (a Streamlit UploadedFile) as the engine's tensor; the size cap is checked before reading."""
    from core.images import MAX_BYTES

    n = getattr(up, "size", None)
    if n is not None and n > MAX_BYTES:
        raise UserError(f"image {up.name!r} is {n / 2**20:.0f} MB: the limit is {MAX_BYTES // 2**20} MB")
    return load_image(up.getvalue(), size, name=up.name)


def upscale(img: torch.Tensor, target: int = 160) -> Image.Image:
    pil = to_pil(img)
    k = max(1, target // pil.width)
    return pil.resize((pil.width * k, pil.height * k), Image.NEAREST) if k > 1 else pil


# --------------------------------------------------------------------------- cache


EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


@st.cache_resource
def disk_cache() -> RunCache:
    """The run cache, with the shipped first example (see ui/make_example.py) as a read-only fallback."""
    return RunCache(fallbacks=[EXAMPLES])


@st.cache_data(show_spinner=False, max_entries=128)
def _from_disk(key: str) -> InversionResult:
    result = disk_cache().get(key)
    if result is None:
        raise LookupError(key)  # exceptions are not cached: a later run can still fill this key
    return result


def cached_result(key: str) -> InversionResult | None:
    try:
        return _from_disk(key)
    except LookupError:
        return None


def settings_of(arch, ck_id, init_seed, layer, size, seeds, preset, device) -> dict:
    return {"kind": "inversion", "model": arch, "checkpoint": ck_id, "init_seed": int(init_seed), "layer": layer,
            "size": int(size), "seeds": [int(s) for s in seeds], "preset": preset.to_dict(),
            "device": resolve_device(device).type}


# --------------------------------------------------------------------------- the live run


class LiveView:
    """Placeholders that a running inversion refreshes: queue/progress, images, m_g/m_i chart."""

    def __init__(self, seeds, show_images=True, show_chart=True, container=None):
        box = container or st.container()
        self.seeds = list(seeds)
        self.status = box.empty()
        self.bar = box.empty()
        self.images = box.empty() if show_images else None
        self.chart = box.empty() if show_chart else None
        self.steps, self.mg, self.mi = [], [], []

    def waiting(self, position: int, waiting: int):
        self.status.info(f"The device is busy with another run: you are number {position} of {waiting} "
                         f"in the queue. Your run starts by itself.")

    def started(self, text: str):
        self.status.caption(text)

    def progress(self, snap):
        """Only the progress bar (a batch of a split run: its snapshots hold some of the seeds)."""
        self.bar.progress(snap.step / snap.total, text=f"step {snap.step} of {snap.total} · {snap.seconds:.1f} s")

    def update(self, snap):
        self.steps.append(snap.step)
        self.mg.append(snap.embedding_l2)
        self.mi.append(snap.input_l2)
        mg = sum(snap.embedding_l2) / len(snap.embedding_l2)
        self.bar.progress(snap.step / snap.total, text=f"step {snap.step} of {snap.total} · mean m_g {mg:.3g} · "
                                                       f"{snap.seconds:.1f} s")
        if self.images is not None:
            self.images.image([upscale(im, 128) for im in snap.images], width=128,
                              caption=[f"seed {s} · step {snap.step}" for s in self.seeds])
        if self.chart is not None and len(self.steps) > 1:
            hist = {"step": self.steps, "embedding_l2": list(map(list, zip(*self.mg))),
                    "input_l2": list(map(list, zip(*self.mi)))}
            self.chart.plotly_chart(trajectory_figure(hist, self.seeds, height=260), width="stretch")

    def clear(self):
        for ph in (self.status, self.bar, self.images, self.chart):
            if ph is not None:
                ph.empty()


def execute(model, layer: str, image, seeds, preset, device: str, key: str, view: LiveView | None,
            state_key: str, every: int | None = None, meta: dict | None = None) -> InversionResult | None:
    """The finished run for these settings: from the cache, or computed live (queued per device).

    While it runs the live `Inversion` sits in `st.session_state[state_key]`, so a rerun (the
    Stop button, a changed widget, a new page) can keep what was computed with `salvage`.
    """
    hit = cached_result(key)
    if hit is not None:
        return hit
    dev = resolve_device(device)
    every = every or max(5, min(25, preset.iters // 15))
    with queue_for(str(dev)).slot(label=state_key, on_wait=view.waiting if view else None):
        hit = cached_result(key)  # a session with the same settings may have finished it while this one waited
        if hit is not None:
            if view:
                view.clear()
            return hit
        if view:
            view.started(f"running on {describe(dev)}")
        run = Inversion(model, layer, image, seeds, preset, dev)  # core locks tracing and each step
        st.session_state[state_key] = {"run": run, "key": key, "meta": meta or {}}
        oom = False
        try:
            for snap in run.snapshots(every):
                if view:
                    view.update(snap)
        except DivergenceError as exc:
            st.session_state.pop(state_key, None)
            if view:
                view.clear()
            st.error(str(exc))
            if exc.last_snapshot is not None:
                st.image([upscale(im) for im in exc.last_snapshot.images],
                         caption=[f"seed {s}, last finite step {exc.last_snapshot.step}" for s in seeds])
            return None
        except RuntimeError as exc:
            if not is_oom(exc):
                raise
            oom = True  # handled below, once the exception (and the frames holding the batch) are gone
        if oom:
            st.session_state.pop(state_key, None)
            del run
            result = _split_after_oom(model, layer, image, seeds, preset, dev, view, every)
        else:
            result = run.result()
        st.session_state.pop(state_key, None)
    if view:
        view.clear()
    try:
        disk_cache().put(key, result)
    except OSError as exc:  # a full or read-only disk must not lose the result on screen
        st.warning(f"could not store the result in the cache ({exc}); it is shown but not kept on disk")
    return result


def _split_after_oom(model, layer, image, seeds, preset, dev, view, every) -> InversionResult:
    """Out of memory with every seed in one batch: split the seeds (core.speed.run_resilient: halves again
    on each out-of-memory, falls back to the CPU only with one seed per batch still too big), and say so."""
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    per = max(1, len(seeds) // 2)
    first = (f"out of memory on {describe(dev)} with {len(seeds)} seeds in one batch: running them in batches "
             f"of {per} (same result, slower)")
    log.warning(first)
    st.warning(first)
    notes = []

    def note(msg: str):
        notes.append(msg)
        log.warning(msg)
        st.warning(msg)

    try:
        result, info = run_resilient(model, layer, image, seeds, preset, dev, max_batch=per,
                                     on_snapshot=view.progress if view else None, on_note=note, every=every)
    except RuntimeError as exc:
        if not is_oom(exc):
            raise
        raise UserError(f"out of memory even with one seed per batch on {describe(dev)}: use a smaller image "
                        "size, an earlier layer or fewer seeds") from None
    done = f"finished in {len(info.chunks)} batches of at most {max(len(c) for c in info.chunks)} seeds"
    st.info(done + (" on the CPU (the GPU had too little memory)" if info.fell_back_to_cpu else "") + ".")
    return result


def salvage(state_key: str) -> tuple[InversionResult, dict] | None:
    """A run interrupted by a rerun: (its images and metrics so far, its meta), or None."""
    live = st.session_state.pop(state_key, None)
    if not live:
        return None
    run = live["run"]
    if run.steps_done == 0:
        return None
    try:
        return run.result(), live.get("meta", {})
    except Exception:  # noqa: BLE001
        log.error("could not salvage a stopped run\n%s", traceback.format_exc())
        return None


# --------------------------------------------------------------------------- result views


def _predictions(result: InversionResult, model, key: str):
    """Top-1 classes of the original and each seed, computed once per shown result (not on every rerun)."""
    if model is None or model.categories is None:
        return None
    memo = st.session_state.get(f"{key}_preds")
    if memo and memo[0] is result:
        return memo[1]
    preds = None
    with errors("predictions: "):
        preds = predict(model, torch.cat([result.original[None], result.images]), k=1)
    st.session_state[f"{key}_preds"] = (result, preds)
    return preds


def steps_text(result: InversionResult) -> str:
    """"150 steps", or "120 of 150 steps (converged early)" when the stopping rule ended the run before its budget."""
    budget = result.preset.iters
    if result.metrics.get("stop_reason") == "converged" and result.steps_done < budget:
        return f"{result.steps_done} of {budget} steps (converged early)"
    return f"{result.steps_done} steps"


def show_result(result: InversionResult, model=None, ck_display: str | None = None, image_name: str = "",
                key: str = "res"):
    """Original + one image per seed with captions, the run's numbers, predictions and downloads."""
    m = result.metrics
    preds = _predictions(result, model, key)
    captions = ["original" + (f"\n{preds[0][0][1]} ({preds[0][0][2]:.0%})" if preds else "")]
    for i, s in enumerate(result.seeds):
        c = f"seed {s} · SSIM {m['ssim'][i]:.2f} · m_i {m['input_l2'][i]:.2f} · m_g {m['embedding_l2'][i]:.3g}"
        if not m["converged"][i]:
            c += " · not converged"
        if preds:
            c += f"\n{preds[i + 1][0][1]} ({preds[i + 1][0][2]:.0%})"
        captions.append(c)
    st.image([upscale(result.original, 192)] + [upscale(im, 192) for im in result.images], caption=captions,
             width=192)
    st.markdown(f"**Reading:** {reading(result)}")
    c = st.columns(5)
    c[0].metric("clarity", f"{m['clarity']:.3f}", help="SSIM to the image, normalised: 1 = the image itself, "
                "0 = no better than the run's start")
    c[1].metric("m_r", f"{m['reference_l2']:.3g}", help="‖O(a′) − O(a)‖₂: how far a near-copy lands")
    c[2].metric("‖a′ − a‖₂", f"{m['shift_input_l2']:.3g}", help="size of the near-copy's pixel change")
    spread = m["seed_spread_input"]
    c[3].metric("seed spread", "—" if spread is None else f"{spread:.3g}",
                help="mean pixel distance between the seeds' reconstructions")
    c[4].metric("worst m_g / m_r", "degenerate" if m.get("degenerate") else f"{max(m['mg_over_mr']):.2f}",
                help="≤ 1 on every seed: converged; up to 1.25: borderline; degenerate: m_r ≈ 0")
    st.caption(f"{result.model} · {ck_display or result.checkpoint} · image {image_name or '?'} · "
               f"layer {result.layer} ({result.label}) · "
               f"embedding {tuple(result.embedding_shape)} · {result.size} px · {steps_text(result)} · "
               f"{result.preset.name} preset · {result.device} · "
               f"{result.seconds:.1f} s")
    sig = m.get("signal") or {}
    if sig.get("flat_fraction") is not None:
        st.caption(f"Signal health at this layer: output RMS {sig['rms']:.3g} (input {sig['input_rms']:.3g}); "
                   f"{sig['flat_fraction']:.0%} of activation outputs up to here sit on a flat part of their "
                   f"non-linearity ({sig['saturated_fraction']:.0%} at an upper bound such as ReLU6's 6), "
                   f"last activation {sig['last_flat_fraction']:.0%}.")
    from core.report import png_bytes, result_grid

    data = result.to_json()
    data["checkpoint"] = ck_display or result.checkpoint
    data["image"] = image_name
    d1, d2 = st.columns(2)
    d1.download_button("Image grid (PNG)", png_bytes(result_grid(result)), f"inversion_{result.layer}.png",
                       "image/png", key=f"{key}_png")
    d2.download_button("Run (JSON)", json.dumps(data, indent=1), f"inversion_{result.layer}.json",
                       "application/json", key=f"{key}_json")


def log_ticks(values) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log axis over `values`: 1-2-5 steps (powers of ten over many decades, every
    digit within about one; none, leaving plotly's, when even that gives fewer than two), labelled in full ("70", "100", "200"): plotly's own labels show only the leading digit
    between powers of ten ("7, 8, 9, 100, 2"), which reads as values below 100 sitting above it."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return [], []
    lo, hi = min(finite), max(finite)

    def at(digits):
        return [d * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.floor(math.log10(hi)) + 1)
                for d in digits if lo <= d * 10.0 ** e <= hi]

    ticks = at((1, 2, 5))
    if len(ticks) > 10:  # many decades: powers of ten only
        ticks = at((1,))
    elif len(ticks) < 3:  # less than a decade: every digit
        ticks = at(range(1, 10))
    if len(ticks) < 2:  # too narrow for round values: plotly's own ticks
        return [], []
    return ticks, [f"{t:.6g}" for t in ticks]


def trajectory_figure(history: dict, seeds, m_r: float | None = None, shift: float | None = None, height=320):
    """m_g (log scale) and m_i per seed against the step, with the references as dotted lines."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("m_g = ‖O(a_g) − O(a)‖₂", "m_i = ‖a_g − a‖₂"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    steps = history["step"]
    for i, s in enumerate(seeds):
        color = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=steps, y=history["embedding_l2"][i], name=f"seed {s}", legendgroup=str(s),
                                 line={"color": color}), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=history["input_l2"][i], name=f"seed {s}", legendgroup=str(s),
                                 showlegend=False, line={"color": color}), row=1, col=2)
    if m_r:
        # the label goes on separately: on a log axis plotly reads an annotation's y as log10(y) (a shape's as y),
        # and add_hline's own label at y = m_r stretched the axis to 10^m_r, flattening every curve
        fig.add_hline(y=m_r, line_dash="dot", row=1, col=1)
        fig.add_annotation(text="m_r (near-copy)", x=1, xref="x domain", y=math.log10(m_r), yref="y",
                           xanchor="right", yanchor="bottom", showarrow=False, row=1, col=1)
    if shift:
        fig.add_hline(y=shift, line_dash="dot", annotation_text="‖a′−a‖₂", row=1, col=2)
    values = [v for row in history["embedding_l2"] for v in row] + ([m_r] if m_r else [])
    tickvals, ticktext = log_ticks(values)
    fig.update_yaxes(type="log", row=1, col=1, **({"tickvals": tickvals, "ticktext": ticktext} if tickvals else {}))
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=height, template="plotly_white", margin={"l": 40, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


# --------------------------------------------------------------------------- URL state


def keep_state(keys: list[str], defaults: dict, parsers: dict, prefix: str, use_query: bool = False):
    """Widget values that survive page switches (and, for the landing page, come from the URL)."""
    warnings = []
    for k in keys:
        wk = f"{prefix}{k}"
        if wk in st.session_state:
            continue
        if f"_keep_{wk}" in st.session_state:
            st.session_state[wk] = st.session_state[f"_keep_{wk}"]
            continue
        value = defaults.get(k)
        if use_query and k in st.query_params:
            raw = st.query_params[k]
            try:
                value = parsers.get(k, str)(raw)
            except (ValueError, KeyError, UserError):
                warnings.append(f"ignored the link's {k}={raw!r}")
        if value is not None:
            st.session_state[wk] = value
    return warnings


def remember(keys: list[str], prefix: str):
    for k in keys:
        wk = f"{prefix}{k}"
        if wk in st.session_state:
            st.session_state[f"_keep_{wk}"] = st.session_state[wk]
