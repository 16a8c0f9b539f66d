"""The pickers every page shares: model, checkpoint, depth, recipe, device, run size and image.

Each picker reads and writes `page[field]`, so `ui.state` can put every
setting in the URL. `inversion` draws the whole set for a one-layer run and returns a `Pick`
with the loaded model and the run's `RunSpec` (or the reasons it cannot run yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st
import torch
from PIL import Image

from core import PRESETS, UserError, get_preset, load_image, resolve_layer, sample_images
from core.devices import describe, resolve_device
from core.jobs import SETTINGS, RunSettings, RunSpec, UploadStore, is_upload_id
from core.studies import BATCH_STOPS
from ui import models
from ui.errors import errors
from ui.state import Field, PageState, choice, limits, setting

IMAGE_TYPES = ["png", "jpg", "jpeg", "gif", "tif", "tiff", "bmp", "webp"]
ON_GPU = torch.cuda.is_available()
# The default run: seconds on a small CPU, a clear picture on a GPU.
DEFAULTS = {
    "model": "efficientnet_lite0", "ckpt": "trained", "image": "chelsea", "preset": "default", "device": "auto",
    "seeds": 4 if ON_GPU else 2, "iters": 300 if ON_GPU else 150, "size": 128 if ON_GPU else 64,
}
CHECKPOINTS = ["untrained", "trained", "upload"]
# "compare with": the same run on a second checkpoint; "reinit" = untrained with the next init seed
VS = ["none", "untrained", "trained", "reinit", "upload"]
VS_TEXT = {"none": "nothing", "untrained": "untrained", "trained": "trained", "reinit": "another init",
           "upload": "a file"}


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


def _upload_id(raw: str) -> str:
    if raw and not is_upload_id(raw):
        raise ValueError(raw)
    return raw


# A run on an uploaded image: the link carries the upload's id (`core.jobs.uploads`), which reproduces the run on
# the server that keeps the file; `image_picker` keeps `<prefix>image_id` in step with the image shown.
IMAGE_ID = Field("image_id", "", _upload_id)


def fields(defaults: dict, upload: bool = True, min_seeds: int = 1) -> list[Field]:
    """The URL fields of a one-layer run (Invert, Non-uniqueness): every setting, advanced ones included; `vs`
    (the side-by-side checkpoint) where `defaults` has one."""
    cks = ["untrained", "trained"] + (["upload"] if upload else [])
    return [
        Field("model", defaults["model"], MODEL),
        Field("ckpt", defaults["ckpt"], choice(cks)),
        *([Field("vs", defaults["vs"], choice(VS))] if "vs" in defaults else []),
        Field("layer", None),
        Field("node", ""),
        Field("image", defaults["image"]),
        IMAGE_ID,
        *run_fields(defaults, min_seeds),
    ]


def run_fields(defaults: dict, min_seeds: int = 1) -> list[Field]:
    """The URL fields of the run settings every page shares (seeds, iters, size, preset, device, init seed,
    lr), with the declared types and limits (`core.jobs.SETTINGS`: the CLI's) and this page's defaults."""
    return [
        setting("seeds", defaults["seeds"], lo=min_seeds),
        setting("iters", defaults["iters"]),
        setting("size", defaults["size"]),
        Field("preset", defaults.get("preset", "default"), choice(PRESETS)),
        Field("device", defaults.get("device", "auto"), choice(device_options())),
        setting("init_seed", 0),
        setting("lr", 0.0),
    ]


@dataclass
class Pick:
    """What the pickers chose, the loaded model and the run's spec; `problems` say why it cannot run yet."""

    arch: str
    ckpt: str
    layer: str
    preset: object
    device: str
    seeds: list[int]
    size: int
    image: torch.Tensor | None = None
    image_name: str = ""
    model: object = None
    ck_id: str | None = None
    ck_display: str | None = None
    spec: RunSpec | None = None
    problems: list[str] = field(default_factory=list)
    vs: str = "none"  # the side-by-side checkpoint (`VS`)
    vs_model: object = None
    vs_ck_id: str | None = None
    vs_display: str | None = None
    vs_spec: RunSpec | None = None  # `spec` on the second checkpoint (set by `with_vs` once `spec` is final)

    @property
    def ready(self) -> bool:
        return self.spec is not None


def model_picker(page: PageState, notices=None) -> str:
    """The model: the curated ones first, then every torchvision and timm classifier (type to search: "timm",
    "convnext", …). A model this server cannot offer (too large, untraceable) goes back to the last one that
    worked, with the reason in `notices`."""
    asked = page.get("model")
    if asked is not None and asked != page.get("model_ok"):
        problem = models.model_problem(asked)
        if problem:
            page["model"] = page.get("model_ok") or "efficientnet_lite0"
            (notices or st).error(f"{models.model_label(asked)} is not available here: {problem}. Showing "
                                  f"{models.model_label(page['model'])}.")
    arch = st.selectbox("Model", models.model_names(), key=page.key("model"), format_func=models.model_label,
                        help="The curated models (hand-picked depth stops) first, then every torchvision and timm "
                             "classifier: type to search, e.g. 'timm · convnext'. Their depth stops are derived from "
                             "the traced graph; trained weights come through each library's own download.")
    page["model_ok"] = arch
    return arch


MODEL = models.known_name  # the URL parser of a model field: any name the picker offers


def layer_slider(page: PageState, arch: str, notices, from_link: bool) -> tuple[str, dict]:
    """The depth slider over the model's stops; a link's unknown layer is replaced by the default, with a notice."""
    stops = models.stops_of(arch)
    nodes, labels = [n for n, _ in stops], dict(stops)
    asked = page.get("layer")
    if asked not in nodes:
        page["layer"] = models.default_layer(arch)
        if from_link and asked:
            notices.warning(f"ignored the link's layer={asked!r}: {arch} has no depth stop of that name (any other "
                            f"graph node goes in Advanced); showing {page['layer']}")
    layer = st.select_slider("Depth (forward order)", nodes, key=page.key("layer"),
                             format_func=lambda n: f"{labels[n]} · {n}")
    return layer, labels


def stops_picker(page: PageState, arch: str, defaults: list[str] | None = None) -> list[str]:
    """An "all stops" toggle and a multiselect of the model's depth stops (a link's unknown names dropped);
    returns the chosen stops in forward order. `defaults`: the first choice for this model (else about six
    spread over the depth)."""
    stops = models.stops_of(arch)
    nodes, labels = [n for n, _ in stops], dict(stops)
    key = page.key("stops")
    if page.get("stops_for") != arch or not isinstance(st.session_state.get(key), list):
        kept = [n for n in (st.session_state.get(key) or []) if n in nodes]
        st.session_state[key] = kept or [n for n in (defaults or []) if n in nodes] or nodes[:: max(1, len(nodes) // 6)][:6]
        page["stops_for"] = arch
    st.session_state[key] = [n for n in st.session_state[key] if n in nodes]
    every = st.toggle(f"All {len(nodes)} depth stops", key=page.key("all"))
    chosen = st.multiselect("Depth stops", nodes, key=key, disabled=every, format_func=lambda n: f"{labels[n]} · {n}")
    return nodes if every else [n for n in nodes if n in chosen]


def fix_size(page: PageState, arch: str, notices) -> list[int]:
    sizes = models.sizes_for(arch)
    if page.get("size") not in sizes:
        want = page.get("size") or 64
        page["size"] = min(sizes, key=lambda s: abs(s - want))
        notices.warning(models.size_notice(arch, want, page["size"], sizes))
    return sizes


def recipe(page: PageState):
    """Preset, device, init seed and learning rate (the Advanced expander's common part)."""
    name = st.selectbox("Preset", list(PRESETS), key=page.key("preset"),
                        help="default: Adam, relative L1, image kept in [0, 1] (converges everywhere); "
                             "paper: the paper's plain steps and blur schedule")
    device = st.selectbox("Device", device_options(), key=page.key("device"))
    init_seed = st.number_input("Untrained init seed", *limits("init_seed"), key=page.key("init_seed"),
                                help=SETTINGS["init_seed"].help)
    lr = st.number_input("Starting learning rate (0 = the preset's)", *limits("lr"), step=0.01, format="%g",
                         key=page.key("lr"), help="overrides the preset's lr_start; lr_end keeps the preset's ratio")
    return name, device, int(init_seed), float(lr)


_BATCH_TEXT = {"auto": "auto (GPU: one batch)", "on": "in one batch", "off": "one by one"}


def batch_stops_picker(page: PageState) -> str:
    """How a curve runs its stops (`core.studies.curve.iter_curve`'s batch_stops): same results, different speed."""
    return st.selectbox("Run the stops", BATCH_STOPS, key=page.key("batch"), format_func=_BATCH_TEXT.get,
                        help="One batch sends every stop's seeds of a checkpoint through the network together: the "
                             "same results (checked to 1e-3), 2.5x sooner for small CPU runs (BENCHMARKS.md), but "
                             "a checkpoint's rows appear together when its last stop finishes. Auto: one batch on a "
                             "GPU, one by one on the CPU")


def preset_with_lr(name: str, iters: int, lr: float = 0.0):
    """The preset with `iters`, and `lr` (> 0) as its starting learning rate (lr_end keeps its ratio), as the CLI's --lr."""
    return RunSettings(preset=name, iters=int(iters), lr=float(lr) or None).recipe()


def lr_warning(name: str, lr: float) -> str | None:
    base = get_preset(name).lr_start
    if lr and lr > 10 * base:
        return (f"learning rate {lr:g} is {lr / base:.0f}× the {name} preset's ({base:g}): the run may diverge or "
                "end far from the image; 0 restores the preset's")
    return None


def run_size(page: PageState, sizes: list[int], min_seeds: int = 1, box=None):
    """Seeds, iterations and image size."""
    box = box or st
    seeds_n = box.slider("Seeds", *limits("seeds", min_seeds), key=page.key("seeds"), help=SETTINGS["seeds"].help)
    iters = box.number_input("Iterations", *limits("iters"), step=10, key=page.key("iters"), help=SETTINGS["iters"].help)
    size = box.select_slider("Image size (px)", sizes, key=page.key("size"))
    return int(seeds_n), int(iters), int(size)


@st.cache_data(show_spinner=False, max_entries=64)
def _thumb(path: str) -> Image.Image:
    img = Image.open(path).convert("RGB")
    img.thumbnail((96, 96))
    return img


def image_picker(key: str, size: int, box=None, notices=None, thumb: int = 72):
    """Bundled samples as thumbnails plus an upload; returns (image tensor, name), (None, None) while
    "upload…" has no file yet, or raises UserError (a bad file, a link's upload not on this server).

    A link's unknown image name is replaced by the first sample with a notice in `notices`. An upload is kept on
    this server by its hash (`core.jobs.UploadStore`) and its id put in `key + "_id"` (the page's `IMAGE_ID`
    field), so the page's link reproduces the run here; a link whose upload this server lacks asks for the file."""
    box = box or st.container()
    samples = sample_images()
    id_key = key + "_id"
    asked = st.session_state.get(key)
    if asked not in list(samples) + ["upload…"]:
        st.session_state[key] = next(iter(samples))
        if asked and notices is not None:
            notices.warning(f"ignored the link's image={asked!r}: not one of the samples ({', '.join(samples)}); "
                            f"showing {st.session_state[key]}.")
    cols = box.columns(len(samples))
    for col, (name, path) in zip(cols, samples.items()):  # a narrow thumb has no caption: it would break mid-word,
        col.image(_thumb(str(path)), caption=name if thumb >= 64 else None, width=thumb)  # the radio names them
    choice_ = box.radio("Image", list(samples) + ["upload…"], key=key, horizontal=True)
    if choice_ != "upload…":
        st.session_state[id_key] = ""
        return load_image(samples[choice_], size), choice_
    # no `type=` filter: the browser would refuse another file silently and keep showing the previous
    # one's message; every file reaches load_image, whose error names this file
    up = box.file_uploader("Upload an image (PNG, JPEG, GIF, TIFF, BMP or WebP)", key=f"{key}_file")
    if up is None and st.session_state.pop(f"{key}_had_file", False):
        st.session_state[id_key] = ""  # the visitor removed the file: its id no longer stands for the image
    if up is not None:
        st.session_state[f"{key}_had_file"] = True
        image = read_upload_image(up, size)
        try:
            st.session_state[id_key] = UploadStore().put(up.getvalue(), up.name)
        except OSError as exc:
            st.session_state[id_key] = ""
            if notices is not None:
                notices.warning(f"could not keep the upload on this server ({exc}): the page's link leaves the image "
                                "out, so whoever opens it is asked for the file")
        else:
            if notices is not None:
                notices.info("The image is an upload, kept on this server by its hash: the page's link reproduces "
                             "this run **on this server only** (elsewhere it asks for the same file).")
        return image, up.name
    uid = st.session_state.get(id_key) or ""
    if uid:
        kept = UploadStore().get(uid)
        if kept is not None:
            data, name = kept
            if notices is not None:
                notices.info(f"The image is the upload {name!r} kept on this server (id {uid[:8]}…), as the link "
                             "asks; uploading a file here replaces it.")
            return load_image(data, size, name=name), name
        st.session_state[id_key] = ""
        raise UserError(f"this link's uploaded image (id {uid}) is not on this server: a link to an upload works "
                        "only on the server it was made on. Upload the same file to reproduce the run")
    return None, None  # no file yet: not an error (the page's Run says "choose or upload an image")


def read_upload_image(up, size: int) -> torch.Tensor:
    """An uploaded image (a Streamlit UploadedFile) as the engine's tensor; the size cap is checked before reading."""
    from core.images import MAX_BYTES

    n = getattr(up, "size", None)
    if n is not None and n > MAX_BYTES:
        raise UserError(f"image {up.name!r} is {n / 2**20:.0f} MB: the limit is {MAX_BYTES // 2**20} MB")
    return load_image(up.getvalue(), size, name=up.name)


def vs_options(ckpt: str) -> list[str]:
    """What a run on `ckpt` can be compared with: never itself; another init only for untrained weights."""
    out = ["none", "untrained" if ckpt != "untrained" else "reinit", *(["trained"] if ckpt != "trained" else [])]
    return out + (["upload"] if ckpt != "upload" else [])


def runnable_checkpoints(page: PageState, arch: str, notices, vs: bool, note: bool = True) -> None:
    """Before the checkpoint pickers are drawn: when the model changed (or a link named it), trained weights this
    machine lacks fall back to untrained, with a notice and the download still one click away; `vs` follows so it
    never compares a checkpoint with itself. A user who picks trained afterwards gets the download offer."""
    if page.get("ck_arch") != arch:
        page["ck_arch"], page["ck_note"] = arch, None
        missing = not models.trained_status_cached(arch)
        if page.get("ckpt") == "trained" and missing:
            page["ckpt"] = "untrained"
            page["ck_note"] = (f"{models.model_label(arch)}: its trained weights are not on this machine, so this "
                               "shows the **untrained** checkpoint. Pick *trained* in the sidebar to download them.")
        if vs and page.get("vs") == "trained" and missing:
            page["vs"] = "reinit" if page.get("ckpt") == "untrained" else "untrained"
    if note and page.get("ck_note") and page.get("ckpt") == "untrained":  # shown until the model changes
        notices.info(page["ck_note"])
    if vs:
        options = vs_options(page.get("ckpt") or "untrained")
        if page.get("vs") not in options:  # the checkpoint itself, or another init of trained weights
            swap = {"untrained": "trained", "trained": "untrained", "reinit": "untrained", "upload": "none"}
            want = swap.get(page.get("vs"), "none")
            if want == "trained" and not models.trained_status_cached(arch):
                want = "reinit"
            page["vs"] = want if want in options else "none"


def _vs_model(pick: "Pick", arch: str, size: int, init_seed: int, up_vs, problems: list[str], key: str,
              notices=None) -> None:
    """Load the side-by-side checkpoint into `pick` (or say in `problems` why it cannot run)."""
    if pick.vs == "trained" and not models.trained_panel(arch, key + "vs"):
        problems.append(f"the trained {arch} weights to compare with are not on this machine (see the sidebar)")
        return
    ck, seed = ("untrained", init_seed + 1) if pick.vs == "reinit" else (pick.vs, init_seed)
    with errors("compare with: ", box=notices):  # at the top of the page, with the other notices
        pick.vs_model, pick.vs_ck_id, pick.vs_display = models.get_model(arch, ck, size, seed, up_vs)
        if pick.vs == "reinit":
            pick.vs_display = f"untrained (init seed {seed})"
    if pick.vs_model is None:
        problems.append("the checkpoint to compare with could not be loaded (the red message says why)")


def with_vs(pick: "Pick") -> None:
    """Set `pick.vs_spec`: the final `pick.spec` (its continuation included) on the second checkpoint."""
    pick.vs_spec = None
    if pick.spec is None or pick.vs_model is None:
        return
    base = RunSpec.of(pick.vs_model, pick.spec.layer, pick.image, pick.seeds, pick.preset, pick.device,
                      checkpoint=pick.vs_ck_id)
    pick.vs_spec = base.replace(continued=pick.spec.continued)


def inversion(page: PageState, from_link: bool, notices, controls=None, image_box=None, upload: bool = True,
              min_seeds: int = 1) -> Pick:
    """Draw the sidebar (model, checkpoint, compare with, depth, image, run size, Advanced); load the model(s);
    build the spec.

    Args:
        page: the page's state (`ui.state.PageState`): its keys and URL fields (with a `vs` field: the
            side-by-side checkpoint picker too).
        from_link: whether this render took settings from the URL (a link's bad layer gets a notice).
        notices: where corrections of the settings are shown.
        controls: the container for seeds, iterations and size (None: the sidebar).
        image_box: the container for the image picker (None: the sidebar).
        upload: offer an uploaded checkpoint.
        min_seeds: the seeds slider's minimum.

    Returns:
        A `Pick`; `pick.spec` is None and `pick.problems` say why when something is missing or wrong. With a
        side-by-side checkpoint, call `with_vs(pick)` once `pick.spec` is final.
    """
    problems: list[str] = []
    has_vs = any(f.name == "vs" for f in page.fields)
    with st.sidebar:
        st.header("Model")
        arch = model_picker(page, notices)
        runnable_checkpoints(page, arch, notices, has_vs)
        cks = ["untrained", "trained"] + (["upload"] if upload else [])
        ckpt = st.radio("Checkpoint", cks, key=page.key("ckpt"), horizontal=True,
                        help="untrained: the architecture's random initialisation; trained: ImageNet weights; "
                             "upload: your own state dict (.pth/.pt/.safetensors/.bin, read as tensors only)")
        up = up_vs = None
        if ckpt == "upload":
            up = st.file_uploader("State dict (.pth, .pt, .safetensors, .bin)", key=page.key("ckfile"))
        trained_ok = ckpt != "trained" or models.trained_panel(arch, page.prefix)
        if not trained_ok:
            problems.append(f"the trained {arch} weights are not on this machine (see the sidebar)")
        vs = "none"
        if has_vs:
            runnable_checkpoints(page, arch, notices, True, note=False)  # the checkpoint may have just changed
            vs = st.radio("Compare with", vs_options(ckpt), key=page.key("vs"), horizontal=True,
                          format_func=VS_TEXT.get,
                          help="the same image, depth, seeds and recipe on a second checkpoint, shown under the "
                               "first with the difference in clarity; another init: untrained with the next init seed")
            if vs == "upload":
                up_vs = st.file_uploader("State dict to compare with", key=page.key("vsfile"))
        sizes = fix_size(page, arch, notices)
        layer, labels = layer_slider(page, arch, notices, from_link)
        shapes = models.shapes_of(arch, page["size"])
        nodes = list(labels)
        st.caption(f"Stop {nodes.index(layer) + 1} of {len(nodes)}: **{labels[layer]}** (`{layer}`)"
                   + (f", embedding shape {shapes[layer]}" if layer in shapes else ""))
        image_slot = st.container() if image_box is None else image_box  # drawn below, once the size is known
    with controls or st.sidebar:
        if controls is None:
            st.header("Run")
        seeds_n, iters, size = run_size(page, sizes, min_seeds)
    with st.sidebar:
        with st.expander("Advanced"):
            node = st.text_input("Any graph node (overrides the depth slider)", key=page.key("node"),
                                 placeholder="e.g. blocks.2.0.conv_pw").strip()
            preset_name, device, init_seed, lr = recipe(page)
        st.caption(f"Device: **{device_text(device)}**")
    preset = preset_with_lr(preset_name, iters, lr)
    warn = lr_warning(preset_name, lr)
    if warn:
        notices.warning(warn)
    pick = Pick(arch, ckpt, node or layer, preset, device, list(range(seeds_n)), size, vs=vs)
    with image_slot, errors("image: "):
        if image_box is None:
            st.header("Image")
        pick.image, pick.image_name = image_picker(page.key("image"), size, notices=notices,
                                                   thumb=72 if image_box is not None else 44)
    if pick.image is None:
        problems.append("choose or upload an image")
    if trained_ok:
        with errors("checkpoint: ", box=notices):  # at the top of the page, not under a stale result
            pick.model, pick.ck_id, pick.ck_display = models.get_model(arch, ckpt, size, init_seed, up)
        if pick.model is None:
            problems.append("the checkpoint could not be loaded (the red message says why)")
    if vs != "none":
        with st.sidebar:
            _vs_model(pick, arch, size, init_seed, up_vs, problems, page.prefix, notices)
    if pick.model is not None and pick.image is not None:
        with errors("layer: "):
            resolve_layer(pick.model, pick.layer)
            pick.spec = RunSpec.of(pick.model, pick.layer, pick.image, pick.seeds, preset, device,
                                   checkpoint=pick.ck_id)
        if pick.spec is None:
            problems.append(f"{arch} has no graph node {pick.layer!r}")
    if vs != "none" and pick.vs_model is None and not problems:
        problems.append("the checkpoint to compare with is not ready")
    pick.problems = problems
    if pick.vs_model is None:
        pick.spec = pick.spec if vs == "none" else None
    with_vs(pick)
    return pick
