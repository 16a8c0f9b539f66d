"""Models for the pages: loaded once per process (`st.cache_resource`), uploads read safely, stop lists.

Weights are frozen and shared between sessions; core's model lock (core/models/lock.py) makes that safe.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import streamlit as st

from core import (ARCHITECTURES, UserError, depth_stops, download_trained, get_architecture, load_model, stop_shapes,
                  trained_status)
from core.models import all_names, split_name
from core.jobs import file_hash

CHECKPOINT_SUFFIXES = ["pth", "pt", "safetensors", "bin"]
MAX_UPLOAD_MB = 200  # = server.maxUploadSize in .streamlit/config.toml; checked here too (AppTest, other configs)
UPLOAD_DIR: str | None = None  # where an uploaded checkpoint is kept while it is read (None: the system's temp dir)
SIZES = [32, 48, 64, 96, 128, 160, 192, 224, 256, 299]
DEFAULT_LAYERS = {"efficientnet_lite0": "blocks.1.1", "resnet18": "layer2", "resnet50": "layer2",
                  "resnet152": "layer2"}


def model_label(arch: str) -> str:
    """The model selector's text: the title, and the id where the title does not already spell it
    ("ResNet-18", "GoogLeNet (Inception v1) · googlenet"); a library model as "timm · resnet26d", so typing
    the library's name lists its models."""
    lib = split_name(arch)
    if lib is not None and arch not in ARCHITECTURES:
        return f"{lib[0]} · {lib[1]}"
    title = ARCHITECTURES[arch].title if arch in ARCHITECTURES else arch
    same = "".join(ch for ch in title.lower() if ch.isalnum()) == "".join(ch for ch in arch if ch.isalnum())
    return title if same else f"{title} · {arch}"


@st.cache_resource(show_spinner=False)
def model_names() -> list[str]:
    """What the model pickers offer: the curated (and operator's) models first, then every torchvision and every
    timm classifier by name ("torchvision:…", "timm:…"), each library's in alphabetical order."""
    return list(ARCHITECTURES) + [n for n in all_names() if n not in ARCHITECTURES]


def known_name(raw: str) -> str:
    """A URL field's parser: a model this machine can name (curated or any library name); ValueError otherwise."""
    if raw in ARCHITECTURES or raw in set(model_names()):
        return raw
    raise ValueError(raw)


def model_problem(arch: str) -> str | None:
    """Why `arch` cannot be offered here (too large for this server, a graph that cannot be traced, an unknown
    name), or None. Library models are made into entries on first use: this is that first use."""
    try:
        get_architecture(arch)
        if arch not in ARCHITECTURES:
            stops_of(arch)  # derives (traces) its stops: an untraceable model fails here, not in a run
    except UserError as exc:
        return str(exc)
    return None


def build_size(arch: str, size: int) -> int:
    return get_architecture(arch).build_size(size)


@st.cache_resource(show_spinner="Loading the model…", max_entries=12)
def _cached_model(arch: str, checkpoint_id: str, msize: int, init_seed: int, _path: str | None = None):
    return load_model(arch, _path or checkpoint_id, msize, init_seed)


def get_model(arch: str, checkpoint: str, size: int, init_seed: int = 0, upload=None):
    """(model, checkpoint id for the run's spec, display name). `upload` = a Streamlit UploadedFile."""
    msize = build_size(arch, size)
    if checkpoint != "upload":
        return _cached_model(arch, checkpoint, msize, init_seed), checkpoint, checkpoint
    if upload is None:
        raise UserError("choose a state-dict file to upload (.pth, .pt, .safetensors or .bin)")
    suffix = Path(upload.name).suffix.lower()
    if suffix.lstrip(".") not in CHECKPOINT_SUFFIXES:
        raise UserError(f"checkpoint {upload.name!r}: expected a .pth, .pt, .safetensors or .bin file")
    n = getattr(upload, "size", None)
    if n is not None and n > MAX_UPLOAD_MB * 2**20:
        raise UserError(f"checkpoint {upload.name!r} is {n / 2**20:.0f} MB: the upload limit is {MAX_UPLOAD_MB} MB")
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
    m = _cached_model(arch, "untrained", build_size(arch, 224), 0)
    return [(s.node, s.label) for s in depth_stops(m)]


def shapes_of(arch: str, size: int) -> dict:
    try:
        return stop_shapes(_cached_model(arch, "untrained", build_size(arch, size), 0), size)
    except Exception:  # noqa: BLE001 - shapes are a nicety
        return {}


def default_layer(arch: str) -> str:
    nodes = [n for n, _ in stops_of(arch)]
    want = DEFAULT_LAYERS.get(arch)
    return want if want in nodes else nodes[len(nodes) // 3]


def sizes_for(arch: str) -> list[int]:
    a = get_architecture(arch)
    if a.fixed_size:
        return [a.fixed_size]
    return [s for s in SIZES if s >= a.min_size and s % a.size_multiple == 0] or [max(a.min_size, 224)]


def size_notice(arch: str, want, new: int, sizes: list[int]) -> str:
    """One line: why the page changed the image size from `want` to `new` for `arch`."""
    a = get_architecture(arch)
    rule = f"at least {a.min_size} px" + (f", a multiple of {a.size_multiple}" if a.size_multiple > 1 else "")
    try:
        a.check_size(int(want))
        why = f"is not one of the offered sizes ({', '.join(map(str, sizes))})"
    except (UserError, ValueError, TypeError):
        why = f"does not suit {arch} ({rule})"
    return f"size {want} px {why}: using {new} px"


def trained_status_cached(arch: str) -> bool:
    """Whether `arch`'s trained weights are on this machine now (a checkpoint picker offers them first then)."""
    return bool(trained_status(arch)["cached"])


def trained_panel(arch: str, key: str, box=None) -> bool:
    """Whether trained weights are usable now; otherwise say so, how to get them, and offer the download.

    A failed download replaces its progress bar with the cause in words (no stale bar, no raw error)."""
    box = box or st
    status = trained_status(arch)
    if status["cached"]:
        return True
    if not status["exists"]:
        box.info(f"{model_label(arch)} has no trained weights in its library: use *untrained*, or upload a state dict.")
        return False
    size = f"{status['size_mb']:.0f} MB" if status.get("size_mb") else "a download"
    offline = (f"offline, run `python -m core download {arch}` on a machine with a network and copy its Hugging Face "
               "hub cache here" if str(status.get("url") or "").startswith("https://huggingface.co/") else
               f"offline, copy `{status['url']}` to `{status['path']}`")
    box.warning(f"Trained weights for {arch} are not on this machine ({size}). Download them here if this "
                f"machine has a network; {offline}, and reload.")
    if box.button(f"Download trained {arch} weights ({size})", key=f"{key}_download"):
        slot = box.empty()
        bar = slot.progress(0.0, text="downloading…")

        def progress(done, total):
            bar.progress(min(1.0, done / total) if total else 0.0,
                         text=f"downloading… {done / 2**20:.1f} of {total / 2**20:.1f} MB")

        try:
            download_trained(arch, progress)
        except UserError as exc:
            slot.error(f"Download failed: {download_reason(exc)}")
            return False
        slot.success("Downloaded.")
        return True
    return False


def checkpoints(arch: str, names: list[str], size: int, init_seed: int, key: str, notices):
    """The checkpoints of a multi-checkpoint view that load now, and their models; a missing or broken one is
    explained in `notices` (with the download offer), never dropped silently."""
    from ui.errors import errors

    usable, loaded = [], []
    for ck in names:
        if ck == "trained" and not trained_panel(arch, key, box=notices):
            notices.warning("This view runs without **trained** until its weights are on this machine (see above).")
            continue
        with errors(f"{ck} checkpoint: ", box=notices):
            loaded.append(get_model(arch, ck, size, init_seed)[0])
            usable.append(ck)
    return usable, loaded


def download_reason(exc: Exception) -> str:
    """A failed download's cause in words (the raw error is a urlopen/socket message)."""
    text = str(exc)
    low = text.lower()
    if any(s in low for s in ("name or service not known", "temporary failure in name resolution",
                              "nodename nor servname", "network is unreachable", "no route to host",
                              "connection refused", "errno -2", "errno -3", "errno 101", "errno 111")):
        cause = "this machine cannot reach the download server (no network, or it is blocked)"
    elif "timed out" in low or "timeout" in low:
        cause = "the download server did not answer in time"
    elif "hash check" in low:
        cause = "the downloaded file was damaged (its hash did not match)"
    elif "no space" in low or "errno 28" in low:
        cause = "the disk is full"
    elif "permission" in low or "errno 13" in low:
        cause = "the weights folder is not writable"
    else:
        return text
    where = text.split("copy the file to ", 1)[1] if "copy the file to " in text else "torch's hub cache"
    return f"{cause}. Offline, copy the weights file to {where} and reload."
