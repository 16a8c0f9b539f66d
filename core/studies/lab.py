"""The invertibility lab (docs/method.md findings 3 and 6): when can a layer be inverted, and how well?

Two parts, both plain library code (the CLI's `lab` command and the app's lab page call them; their charts
and files are in core/report/lab.py):

* **MLP**: a small untrained fully connected network on a downscaled grey image (16 x 16 = 256
  inputs by default), of a chosen width (a multiple of the input), depth and activation. Every
  configuration is inverted through the one pipeline (`core.jobs.pipeline.run`, recipe `core.recipe.presets.LAB`:
  the default recipe on one grey value per pixel without its blur prior, budget 2000 steps, early
  stop), and its Jacobian at the image gives the exact rank and the condition number. A linear
  network also gets its exact answer, the pseudo-inverse of its composed weights. No prior by
  default: a prior (the default's blur) fills what the network leaves undetermined with smooth
  content and so hides the lost rank; `blur=True` shows that.
* **CNN**: for a registered model, checkpoint and depth stops, the Jacobian of each stop at the
  image (numerical rank, largest and smallest singular values, condition number, input/output
  dimensions), to plot against depth next to the clarity curve (`core.studies.curve.iter_curve`).

Jacobians are computed with `torch.func` (forward mode, `jvp`, over the input when the layer has at
least as many outputs as inputs; reverse mode, `vjp`, over the outputs otherwise; batched with `vmap`
in chunks) in float64 on a deep copy of the network, and their singular values with LAPACK. The rank
uses numpy's `matrix_rank` tolerance, sigma_max * max(m, n) * eps. The condition number is
sigma_max / sigma_r, sigma_r the smallest singular value above that tolerance: the conditioning of
what the layer keeps. A rank below the input dimension means the layer is not injective at the image.

    rows = mlp_lab(load_image("assets/chelsea.png", 16), widths=[0.5, 1, 2], activations=["linear", "relu"])
    [(r.config.name, r.to_json()["clarity"], r.spectrum.rank) for r in rows]
    jac = list(iter_jacobian(load_model("resnet18", "untrained", 32), load_image("assets/chelsea.png", 32)))
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn

from core.threads import cpu_threads
from core.errors import UserError
from core.jobs.pipeline import Callbacks, run
from core.jobs.spec import RunSpec
from core.measures import against_starts, restore
from core.metrics import ssim
from core.models.checkpoints import LoadedModel
from core.models.encoder import Encoder, resolve_layer
from core.models.registry import Architecture, Stop
from core.recipe.presets import DEFAULT, LAB
from core.studies.curve import resolve_layers

ACTIVATIONS = {"linear": "linear (identity)", "relu": "ReLU", "leaky_relu": "leaky ReLU (slope 0.01)",
               "tanh": "tanh"}
DEFAULT_WIDTHS = (0.5, 1.0, 2.0, 4.0)
DEFAULT_ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh")
DEFAULT_DEPTHS = (1, 3)
LAB_SIZE = 16  # px: 16 x 16 = 256 grey inputs
LAB_ITERS = 2000
MIN_SIZE, MAX_SIZE = 8, 32  # px of the MLP's grey image (SSIM needs a few pixels; 32 px = 1024 inputs)
MAX_WIDTH = 8.0  # most hidden units, as a multiple of the input
MAX_DEPTH = 6
TOP_K = 5  # singular values reported at each end
MAX_JACOBIAN_MB = 4096  # largest float64 Jacobian (m x n x 8 bytes) computed; more says which size fits
EPS64 = torch.finfo(torch.float64).eps


# =========================================================================== the MLP


@dataclass(frozen=True)
class MLPConfig:
    """One lab network: `width` x the input units per hidden layer, `depth` layers of Linear + activation."""

    width: float
    activation: str
    depth: int = 1
    size: int = LAB_SIZE

    def __post_init__(self):
        problems = []
        if self.activation not in ACTIVATIONS:
            problems.append(f"unknown activation {self.activation!r}: choose {', '.join(ACTIVATIONS)}")
        w = self.width
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or not 0 < w <= MAX_WIDTH:
            problems.append(f"width must be a multiple of the input in (0, {MAX_WIDTH:g}] (got {w!r})")
        elif round(w * self.size * self.size) < 1:
            problems.append(f"width {w:g} x {self.size * self.size} inputs is less than one unit")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or not 1 <= self.depth <= MAX_DEPTH:
            problems.append(f"depth must be an integer 1-{MAX_DEPTH} (got {self.depth!r})")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not MIN_SIZE <= self.size <= MAX_SIZE:
            problems.append(f"size must be {MIN_SIZE}-{MAX_SIZE} px (got {self.size!r})")
        if problems:
            raise UserError("invalid lab network: " + "; ".join(problems))
        object.__setattr__(self, "width", float(w))

    @property
    def input_dim(self) -> int:
        return self.size * self.size

    @property
    def units(self) -> int:
        """Hidden units per layer: round(width x inputs)."""
        return int(round(self.width * self.input_dim))

    @property
    def name(self) -> str:
        """The architecture's name, which holds the whole configuration (the run cache keys on it)."""
        return f"lab_mlp-{self.activation}-w{self.width:g}-d{self.depth}-s{self.size}"

    @property
    def title(self) -> str:
        return f"MLP {ACTIVATIONS[self.activation]}, width {self.width:g}x ({self.units} units), depth {self.depth}"


def _activation(name: str) -> nn.Module:
    return {"linear": nn.Identity, "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}[name]()


class LabMLP(nn.Module):
    """Reads channel 0 of a (B, 3, N, N) image (the lab's images are grey: all channels equal), so exactly
    N*N inputs, then `depth` x (Linear, activation). FX-traceable; the stops are `body.act<i>`."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.body = nn.Sequential()
        for i in range(1, config.depth + 1):
            self.body.add_module(f"fc{i}", nn.Linear(config.input_dim if i == 1 else config.units, config.units))
            self.body.add_module(f"act{i}", _activation(config.activation))

    def forward(self, x):
        return self.body(x[:, 0].flatten(1))


def _mlp_stops(config: MLPConfig) -> Callable[[nn.Module], list[Stop]]:
    def stops(_module: nn.Module) -> list[Stop]:
        out = [Stop(f"body.act{i}", f"hidden layer {i} ({ACTIVATIONS[config.activation]})")
               for i in range(1, config.depth)]
        return out + [Stop(f"body.act{config.depth}", f"embedding (layer {config.depth})")]

    return stops


_ARCHS: dict[MLPConfig, Architecture] = {}


def mlp_architecture(config: MLPConfig) -> Architecture:
    """The network's `Architecture`, made on the fly (never registered: the model pickers list the registry).
    One object per configuration, so the encoder's caches recognise it."""
    if config not in _ARCHS:
        _ARCHS[config] = Architecture(
            config.name, "lab", config.title, min_size=config.size, size_note=f"exactly {config.size} px",
            stops_of=_mlp_stops(config), build=lambda _size, c=config: LabMLP(c))
    return _ARCHS[config]


def build_mlp(config: MLPConfig, init_seed: int = 0) -> LoadedModel:
    """The untrained, frozen network of `config`; its weights are PyTorch's default Linear initialisation
    (uniform in +-1/sqrt(fan_in), bias too) under `init_seed`, the global RNG untouched."""
    if isinstance(init_seed, bool) or not isinstance(init_seed, int) or init_seed < 0:
        raise UserError(f"init seed must be a non-negative integer (got {init_seed!r})")
    arch = mlp_architecture(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        module = arch.build(config.size)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return LoadedModel(arch, module, "untrained", arch.mean, arch.std, config.size, init_seed,
                       f"random initialisation, init seed {init_seed}", None)


def embedding_node(model: LoadedModel) -> str:
    """The MLP's embedding stop (its last activation)."""
    return model.arch.stops_of(model.module)[-1].node


def grey_image(image: torch.Tensor) -> torch.Tensor:
    """(3, N, N) in [0, 1] -> its grey version (the mean of the channels) in all three channels."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise UserError(f"image must be (3, N, N); got {tuple(image.shape)}")
    return image.float().mean(dim=0, keepdim=True).expand(3, -1, -1).contiguous()


def lab_preset(iters: int = LAB_ITERS, blur: bool = False, early_stop: bool = True):
    """The lab's recipe (`core.recipe.presets.LAB`: no prior) with a budget of `iters` steps (the convergence rule may end
    it sooner, unless `early_stop=False`); `blur=True` adds the default recipe's blur prior (named "lab+blur"),
    which fills what the network leaves undetermined with smooth content."""
    preset = LAB.replace(iters=int(iters), early_stop=bool(early_stop))
    if blur:
        preset = preset.replace(name="lab+blur", transforms=DEFAULT.transforms,
                                note=LAB.note.replace("no blur prior", "the default's blur prior"))
    return preset


def linear_pinv(model: LoadedModel, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The exact answer for a linear network: x = pinv(W) (y - b), W and b its layers composed in float64,
    y its embedding of the grey `image` computed in float64.

    Returns:
        (the reconstruction as a (3, N, N) float tensor, not clamped; {"max_error": max |x - image|,
        "l2_error": ||x - image||_2 over the N x N grey pixels}).
    """
    body = model.module.body
    if any(not isinstance(m, (nn.Linear, nn.Identity)) for m in body):
        raise UserError("the pseudo-inverse answer exists only for a linear network")
    n = image.shape[-1] * image.shape[-2]
    W, b = torch.eye(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for m in body:
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double().cpu()
            W, b = w @ W, w @ b + m.bias.detach().double().cpu()
    x = grey_image(image)[0].double().reshape(-1)
    net = copy.deepcopy(model.module).to("cpu", torch.float64)
    with torch.no_grad():
        y = net(x.view(1, 1, *image.shape[-2:]).expand(1, 3, -1, -1)).reshape(-1)
    xh = torch.linalg.pinv(W) @ (y - b)
    err = {"max_error": float((xh - x).abs().max()), "l2_error": float((xh - x).norm())}
    return xh.float().view(1, *image.shape[-2:]).expand(3, -1, -1).contiguous(), err


# =========================================================================== Jacobians


@dataclass
class Spectrum:
    """The singular values of one Jacobian (m outputs x n inputs) and what they say."""

    input_dim: int
    output_dim: int
    singular_values: torch.Tensor  # all min(m, n) of them, float64, descending
    jacobian_seconds: float
    svd_seconds: float
    mode: str  # "jvp" (forward, one column per input) or "vjp" (reverse, one row per output)
    threads: int = 1  # CPU threads it ran with

    @property
    def tolerance(self) -> float:
        """numpy's matrix_rank default: sigma_max * max(m, n) * eps(float64)."""
        return self.sigma_max * max(self.input_dim, self.output_dim) * EPS64

    @property
    def rank(self) -> int:
        return int((self.singular_values > self.tolerance).sum())

    @property
    def sigma_max(self) -> float:
        return float(self.singular_values[0]) if len(self.singular_values) else 0.0

    @property
    def sigma_min(self) -> float:
        """The smallest of the min(m, n) singular values (0 up to rounding when rank-deficient)."""
        return float(self.singular_values[-1]) if len(self.singular_values) else 0.0

    @property
    def condition_number(self) -> float:
        """sigma_max / the smallest singular value above the tolerance (inf for a zero Jacobian)."""
        r = self.rank
        return self.sigma_max / float(self.singular_values[r - 1]) if r else math.inf

    @property
    def seconds(self) -> float:
        return self.jacobian_seconds + self.svd_seconds

    def largest(self, k: int = TOP_K) -> list[float]:
        return [float(v) for v in self.singular_values[:k]]

    def smallest(self, k: int = TOP_K) -> list[float]:
        return [float(v) for v in self.singular_values[-k:]]

    def to_json(self, k: int = TOP_K) -> dict:
        cond = self.condition_number
        return {"input_dim": self.input_dim, "output_dim": self.output_dim,
                "dim_ratio": self.input_dim / self.output_dim, "rank": self.rank,
                "rank_fraction": self.rank / self.input_dim,
                "singular_values": {"largest": self.largest(k), "smallest": self.smallest(k)},
                "sigma_max": self.sigma_max, "sigma_min": self.sigma_min, "tolerance": self.tolerance,
                "condition_number": cond if math.isfinite(cond) else None,
                "log10_condition": math.log10(cond) if math.isfinite(cond) and cond > 0 else None,
                "mode": self.mode, "jacobian_mb": round(self.input_dim * self.output_dim * 8 / 2**20, 1),
                "jacobian_seconds": round(self.jacobian_seconds, 3), "svd_seconds": round(self.svd_seconds, 3),
                "seconds": round(self.seconds, 3), "threads": self.threads}


def jacobian_matrix(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    chunk: int | None = None) -> tuple[torch.Tensor, str]:
    """The Jacobian of `fn` (a flat float64 vector -> a flat vector) at `x`, as an (m, n) float64 matrix.

    Forward mode (`torch.func.jvp`, one column per input) when m >= n, reverse mode (`torch.func.vjp`,
    one row per output) otherwise; `torch.func.vmap` batches `chunk` basis vectors at a time.

    Returns:
        (J, "jvp" or "vjp").
    """
    from torch.func import jvp, vjp, vmap

    x = x.detach().double().reshape(-1)
    with torch.no_grad():
        m, n = fn(x).numel(), x.numel()
    chunk = chunk or max(1, min(256, int(32e6 // (8 * max(m, n)))))
    J = torch.empty(m, n, dtype=torch.float64)
    if m >= n:
        def column(v):
            return jvp(fn, (x,), (v,))[1]

        batched = vmap(column)
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            basis = torch.zeros(b - a, n, dtype=torch.float64)
            basis[torch.arange(b - a), torch.arange(a, b)] = 1.0
            J[:, a:b] = batched(basis).T
        return J, "jvp"
    _, pull = vjp(fn, x)
    batched = vmap(lambda u: pull(u)[0])
    for a in range(0, m, chunk):
        b = min(m, a + chunk)
        basis = torch.zeros(b - a, m, dtype=torch.float64)
        basis[torch.arange(b - a), torch.arange(a, b)] = 1.0
        J[a:b] = batched(basis)
    return J, "vjp"


def spectrum_of(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Spectrum:
    """The Jacobian of `fn` at `x` (see `jacobian_matrix`) and its singular values, timed.

    Runs with the CPU threads that are fastest now (`core.threads.cpu_threads`): on a shared machine
    whose cores are busy, LAPACK's SVD with one thread per core waited at every barrier (a 4096 x 768 SVD
    took 0.3 s with one thread and 20 s with two, measured here); the previous setting is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_threads())
    try:
        t0 = time.perf_counter()
        J, mode = jacobian_matrix(fn, x)
        t1 = time.perf_counter()
        s = torch.linalg.svdvals(J)
        t2 = time.perf_counter()
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    m, n = J.shape
    del J
    return Spectrum(n, m, s, t1 - t0, t2 - t1, mode, threads)


def _float64_copy(model: LoadedModel) -> LoadedModel:
    """A deep copy of the model in float64 on the CPU (the shared, cached model is never touched)."""
    return replace(model, module=copy.deepcopy(model.module).to("cpu", torch.float64).eval())


def _encoder64(model64: LoadedModel, node):
    return Encoder(model64, node, normalize=False).double().eval()


def _check_size(model64: LoadedModel, nodes: Sequence[str], image: torch.Tensor, grey: bool, max_mb: float) -> dict:
    """Output shapes of `nodes` (one forward of the float64 copy); a UserError before any work when a Jacobian
    is too large."""
    with torch.no_grad():
        out = _encoder64(model64, list(nodes))(image.double().unsqueeze(0))
    n = image.shape[-1] * image.shape[-2] * (1 if grey else 3)
    shapes = {k: tuple(v.shape[1:]) for k, v in out.items()}
    for node, shape in shapes.items():
        m = math.prod(shape)
        mb = m * n * 8 / 2**20
        if mb > max_mb:
            raise UserError(f"the Jacobian of {node} at {image.shape[-1]} px is {m} x {n} ({mb / 1024:.1f} GB in "
                            f"float64), above the {max_mb / 1024:.1f} GB limit: use a smaller size (it grows with "
                            "the fourth power of the side) or a deeper layer")
    return shapes


def layer_jacobian(model: LoadedModel, layer: str, image: torch.Tensor, grey: bool = False,
                   max_mb: float = MAX_JACOBIAN_MB, model64: LoadedModel | None = None,
                   checked: bool = False) -> Spectrum:
    """The Jacobian of the layer's output with respect to the input pixels at `image`, in float64.

    Args:
        model: a loaded model (not modified: a float64 deep copy is used).
        layer: a depth stop or graph node.
        image: (3, N, N) in [0, 1]; fed raw (no normalisation), as the project's recipes do.
        grey: differentiate with respect to the N*N grey values (the lab MLPs) instead of the 3*N*N pixels.
        max_mb: refuse (UserError) a Jacobian larger than this, before computing it.
        model64: a float64 copy made earlier (`iter_jacobian` makes one for all layers).
        checked: the size check was done already (`iter_jacobian` checks every layer first).

    Returns:
        The `Spectrum` (rank, singular values, condition number, seconds).
    """
    node = resolve_layer(model, layer).node
    model64 = model64 or _float64_copy(model)
    if not checked:
        _check_size(model64, [node], image, grey, max_mb)
    enc = _encoder64(model64, node)
    h, w = image.shape[-2:]
    if grey:
        x = grey_image(image)[0].double().reshape(-1)

        def fn(v):
            return enc(v.view(1, 1, h, w).expand(1, 3, h, w)).reshape(-1)
    else:
        x = image.double().reshape(-1)

        def fn(v):
            return enc(v.view(1, 3, h, w)).reshape(-1)
    return spectrum_of(fn, x)


# =========================================================================== the MLP lab


@dataclass
class MLPRow:
    """One configuration's answer: the inversion (through `core.jobs.pipeline.run`), the Jacobian, the exact answer."""

    config: MLPConfig
    init_seed: int
    result: object  # core.engine.result.InversionResult
    spectrum: Spectrum
    pinv: torch.Tensor | None = None  # (3, N, N): the linear network's exact reconstruction
    pinv_scores: dict | None = None
    cached: bool = False

    def to_json(self) -> dict:
        m, s = self.result.metrics, self.spectrum
        ssim = m["ssim"]
        cond = s.condition_number
        return {
            "name": self.config.name, "width": self.config.width, "units": self.config.units,
            "activation": self.config.activation, "depth": self.config.depth, "size": self.config.size,
            "input_dim": self.config.input_dim, "init_seed": self.init_seed, "seeds": list(self.result.seeds),
            "clarity": m["clarity"], "clarity_min": min(m["clarity_per_seed"]),
            "clarity_max": max(m["clarity_per_seed"]), "ssim": sum(ssim) / len(ssim), "ssim_per_seed": ssim,
            "converged": all(m["converged"]), "converged_seeds": sum(m["converged"]),
            "mg_over_mr_max": None if m.get("mg_over_mr") is None else max(m["mg_over_mr"]),
            "steps": self.result.steps_done, "iters": self.result.preset.iters, "stop_reason": m.get("stop_reason"),
            "recipe": self.result.preset.name,
            "jacobian_rank": s.rank, "rank_fraction": s.rank / s.input_dim,
            "condition_number": cond if math.isfinite(cond) else None,
            "sigma_max": s.sigma_max, "sigma_min": s.sigma_min,
            "singular_values": {"largest": s.largest(), "smallest": s.smallest()},
            "pinv_clarity": None if self.pinv_scores is None else self.pinv_scores["clarity"],
            "pinv_ssim": None if self.pinv_scores is None else self.pinv_scores["ssim"],
            "pinv_max_error": None if self.pinv_scores is None else self.pinv_scores["max_error"],
            "seconds": round(self.result.seconds, 3), "jacobian_seconds": round(s.seconds, 4), "cached": self.cached,
        }


def plan_mlp(widths: Sequence[float], activations: Sequence[str], depths: Sequence[int],
             size: int = LAB_SIZE) -> list[MLPConfig]:
    """Every configuration, activation by activation, depth by depth, widths ascending (validated first)."""
    if not widths or not activations or not depths:
        raise UserError("the lab needs at least one width, one activation and one depth")
    return [MLPConfig(float(w), a, int(d), size) for a in dict.fromkeys(activations) for d in dict.fromkeys(depths)
            for w in sorted(set(float(w) for w in widths))]


def iter_mlp_lab(image: torch.Tensor, widths: Sequence[float] = DEFAULT_WIDTHS,
                 activations: Sequence[str] = DEFAULT_ACTIVATIONS, depths: Sequence[int] = DEFAULT_DEPTHS, *,
                 seeds: Sequence[int] = (0, 1), iters: int = LAB_ITERS, init_seed: int = 0, device: str = "cpu",
                 blur: bool = False, early_stop: bool = True, cache=None, use_cache: bool = True,
                 callbacks: Callbacks | None = None, every: int | None = None, speed=None) -> Iterator[MLPRow]:
    """Invert `image` (made grey) with every MLP configuration; one row per configuration as it finishes.

    Each inversion is `core.jobs.pipeline.run(RunSpec.of(model, embedding, image, seeds, lab_preset(...), device))`,
    so it is cached and queued like every other run; the Jacobian is taken at the grey image in float64.

    Args:
        image: (3, N, N) in [0, 1] at the lab's size N (8-32; `core.images.load_image(path, 16)`).
        widths: hidden units as multiples of the N*N inputs.
        activations: keys of ACTIVATIONS.
        depths: numbers of hidden layers.
        seeds, device, cache, use_cache, every, speed: as for `core.jobs.pipeline.run`.
        callbacks: the hooks (`core.jobs.pipeline.Callbacks`): `stop(done, total, config name, embedding node)`
            before each configuration and (total, total, "", "") at the end; the others are passed to each run.
        iters: the step budget (the convergence rule may end a run sooner).
        init_seed: the networks' initialisation seed.
        blur: add the default recipe's blur prior (default: none, so the network alone decides what comes back).
        early_stop: False runs the whole budget (an ill-conditioned network keeps improving after m_g <= m_r).

    Returns:
        An iterator of `MLPRow`s.
    """
    size = int(image.shape[-1])
    configs = plan_mlp(widths, activations, depths, size)
    grey = grey_image(image)
    preset = lab_preset(iters, blur, early_stop)
    on_stop = (callbacks or Callbacks()).next_run
    for i, cfg in enumerate(configs):
        model = build_mlp(cfg, init_seed)
        node = embedding_node(model)
        if on_stop:
            on_stop(i, len(configs), cfg.name, node)
        spec = RunSpec.of(model, node, grey, seeds, preset, device)
        job = run(spec, grey, model, cache=cache, use_cache=use_cache, callbacks=callbacks, every=every, speed=speed)
        spectrum = layer_jacobian(model, node, grey, grey=True)
        pinv = scores = None
        if cfg.activation == "linear":
            pinv, err = linear_pinv(model, grey)
            s = ssim(pinv, grey)
            # on the run's own scale: each measure from its starts (0) to the image (1)
            panel = against_starts(pinv, restore(grey, job.result.metrics, job.result.model))
            scores = {"ssim": s, "clarity": panel["clarity"], "fidelity": panel["fidelity"], **err}
        yield MLPRow(cfg, init_seed, job.result, spectrum, pinv, scores, job.cached)
    if on_stop:
        on_stop(len(configs), len(configs), "", "")


def mlp_lab(*args, **kwargs) -> list[MLPRow]:
    """Every row of `iter_mlp_lab` (same arguments) as a list."""
    return list(iter_mlp_lab(*args, **kwargs))


# =========================================================================== the CNN part


@dataclass
class JacobianRow:
    """One depth stop's Jacobian at the image."""

    layer: str
    label: str
    depth: float  # the stop's index among the model's depth stops (as on the clarity curve)
    shape: tuple
    spectrum: Spectrum
    clarity: float | None = None  # from the clarity curve of the same stops, when computed
    extra: dict = field(default_factory=dict)  # the clarity row's spread and status (`add_clarity`)
    k: int = TOP_K  # singular values reported at each end

    def to_json(self) -> dict:
        return {"layer": self.layer, "label": self.label, "depth": self.depth, "shape": list(self.shape),
                **self.spectrum.to_json(self.k), "clarity": self.clarity, **self.extra}


def iter_jacobian(model: LoadedModel, image: torch.Tensor, layers: Sequence[str] | str | None = None, *,
                  max_mb: float = MAX_JACOBIAN_MB, callbacks: Callbacks | None = None) -> Iterator[JacobianRow]:
    """The Jacobian of each stop at `image`, in forward order (one float64 copy of the network for all).

    Args:
        model: a loaded model (not modified).
        image: (3, N, N) in [0, 1]; every size check is done (UserError) before the first Jacobian.
        layers: "stops"/None for every depth stop, or node names.
        max_mb: the largest Jacobian allowed (float64 MB).
        callbacks: only its `stop(done, total, model name, node)` is called, before each stop, and
            (total, total, "", "") at the end.

    Returns:
        An iterator of `JacobianRow`s.
    """
    model.arch.check_size(int(image.shape[-1]))
    plan = resolve_layers(model, layers)
    if not plan:
        raise UserError("choose at least one layer")
    model64 = _float64_copy(model)
    shapes = _check_size(model64, [node for _, node, _ in plan], image, False, max_mb)
    on_stop = (callbacks or Callbacks()).next_run
    for i, (depth, node, label) in enumerate(plan):
        if on_stop:
            on_stop(i, len(plan), model.name, node)
        spectrum = layer_jacobian(model, node, image, max_mb=max_mb, model64=model64, checked=True)
        yield JacobianRow(node, label, depth, shapes[node], spectrum)
    if on_stop:
        on_stop(len(plan), len(plan), "", "")


def add_clarity(rows: Sequence[JacobianRow], curve_rows) -> None:
    """Put each curve row's clarity (`core.studies.curve.CurveRow`s or their JSON) on the Jacobian row of the same layer."""
    by = {}
    for c in curve_rows:
        d = c.to_json() if hasattr(c, "to_json") else c
        by[d["layer"]] = d
    for r in rows:
        d = by.get(r.layer)
        if d is not None:
            r.clarity = d["clarity"]
            r.extra.update({"clarity_min": d.get("clarity_min"), "clarity_max": d.get("clarity_max"),
                            "clarity_status": d.get("status"), "clarity_steps": d.get("steps_done")})


JACOBIAN_SIZES = (16, 24, 32, 48, 64)  # px offered for Jacobians (64 px: conv1 of ResNet-18 alone is 6 GB)


def jacobian_sizes(arch: Architecture) -> list[int]:
    """The image sizes (px) offered for an architecture's Jacobians: JACOBIAN_SIZES that it accepts."""
    ok = [s for s in JACOBIAN_SIZES if s >= arch.min_size and s % arch.size_multiple == 0]
    return ok or [max(arch.min_size, arch.size_multiple)]


def default_jacobian_stops(arch: Architecture, nodes: Sequence[str]) -> list[str]:
    """A few stops to start from: the architecture's `jacobian_stops` where the model has them, else four spread
    over depth."""
    chosen = [n for n in arch.jacobian_stops if n in nodes]
    return chosen or list(nodes)[:: max(1, len(nodes) // 4)][:4]
