"""The one inversion engine: gradient descent on a batch of inputs until their embeddings match.

The loop is the only loop; what it optimises comes from the preset's parts (`core.recipe.components`):
the parameterisation makes the images, forward transforms change what the encoder sees, the
objective terms give the loss, post transforms act on the pixels after each step.

All seeds of a run are one batch; only the input has gradients (the model is frozen). Per-step
distances stay on the device and are copied to the host only at snapshots and stopping checks.
Iterate `Inversion.snapshots()` to watch a run (stop whenever you like), then call `result()`;
`run()`/`invert()` do both to the end; `extend(n)` continues a finished or stopped run.

Convergence rule (`Preset.early_stop`): every `stop_window` steps, the run ends when every seed has
`m_g <= m_r` (converged, see `converged_mask`) and its SSIM to the image changed by at most
`stop_tol` since the last check; otherwise it runs to the budget (`Preset.iters`).
"""

from __future__ import annotations

import sys
import time
from typing import Iterator, Sequence, TextIO

import torch

from core.devices import describe, resolve_device
from core.engine.hostcopy import HostCopy
from core.engine.result import InversionResult, Metrics, Snapshot
from core.engine.speed import SpeedOptions
from core.engine.stopping import converged_mask, is_degenerate
from core.errors import DivergenceError, UserError
from core.measures import baseline, measure
from core.metrics import l2_per_item, mean_pairwise, pairwise, perturbed, psnr, ssim
from core.models.checkpoints import LoadedModel
from core.models.encoder import Encoder, resolve_layer
from core.models.health import signal_health
from core.models.lock import MODEL_LOCK
from core.priors import lerp
from core.recipe.objectives import Target, total
from core.recipe.presets import Preset

MAX_SEEDS = 64


EXPLODED = 1e6  # pixel values this far outside [0, 1] mean the steps are too large to come back


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise UserError("at least one seed is needed")
    if len(seeds) > MAX_SEEDS:
        raise UserError(f"{len(seeds)} seeds is too many: use at most {MAX_SEEDS}")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise UserError(f"seeds must be non-negative integers (got {seeds})")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"seeds must be distinct (got {seeds})")
    return seeds


def start_images(seeds: Sequence[int], size: int, preset: Preset) -> torch.Tensor:
    """a_0 ~ N(init_mean, init_std) per seed from a CPU generator: the same start on every device."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        out.append(torch.randn(3, size, size, generator=g) * preset.init_std + preset.init_mean)
    return torch.stack(out)


class Inversion:
    """One run: encode `image` at `layer`, then descend every seed's input towards that embedding.

    Args:
        model: a loaded model (`core.models.checkpoints.load_model`).
        layer: a depth stop or any graph node name.
        image: (3, N, N) in [0, 1].
        seeds: distinct non-negative ints; seed s always starts from the same a_0.
        preset: the recipe (`core.recipe.presets`).
        device: "auto", "cpu", "cuda[:N]", "mps" or a torch.device.
        encoder: reuse a built encoder (rebuilt if its normalisation differs from the preset's).
        speed: `SpeedOptions`; None = what is exact up to rounding on this device.

    Example:
        >>> run = Inversion(load_model("resnet18", "untrained", 64), "layer2", image, [0, 1], get_preset("default"))
        >>> for snap in run.snapshots(every=20): print(snap.step, snap.embedding_l2)
        >>> result = run.result()
    """

    def __init__(self, model: LoadedModel, layer: str, image: torch.Tensor, seeds: Sequence[int],
                 preset: Preset, device: str | torch.device = "auto", encoder: Encoder | None = None,
                 speed: SpeedOptions | None = None):
        if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] != image.shape[2]:
            raise UserError(f"image must be a square RGB tensor (3, N, N); got {tuple(image.shape)}")
        self.model, self.preset = model, preset
        self.stop = resolve_layer(model, layer)
        self.seeds = check_seeds(seeds)
        self.size = int(image.shape[-1])
        model.arch.check_size(self.size)
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        # speed=None: SpeedOptions.auto (only options exact up to rounding); SpeedOptions.off(): plain
        self.speed = speed if speed is not None else SpeedOptions.auto(self.device)
        self.speed.apply_global(self.device)
        if encoder is not None and getattr(encoder, "normalize", True) != preset.normalize:
            encoder = None
        with MODEL_LOCK.exclusive():  # building the encoder (and BN folding) traces: see core/models/lock.py
            self.raw_encoder = (encoder or Encoder(model, self.stop.node, preset.normalize)).to(self.device)
            self.encoder = self.speed.prepare_encoder(self.raw_encoder, self.device)
        self.step_encoder = self.speed.step_encoder(self.encoder, self.device)  # None: the plain call
        # hand snapshots over once their copy has landed (see `snapshots`); like TF32, CUDA only
        self.lag_snapshots = self.speed.async_snapshots and self.device.type == "cuda"
        self.original = image.detach().float().cpu().clamp(0, 1)
        self.a = self.original.unsqueeze(0).to(self.device)
        with torch.no_grad(), MODEL_LOCK.shared():
            self.y = self.encoder(self.a)
            a_ref = perturbed(self.a)
            self.m_r = float(l2_per_item(self.encoder(a_ref), self.y)[0])
            self.shift = float(l2_per_item(a_ref, self.a)[0])
        if not bool(torch.isfinite(self.y).all()):
            raise UserError(f"{model.name} outputs NaN/inf at {self.stop.node} for this image: the checkpoint "
                            "holds non-finite weights or is broken")
        self.target = Target.of(self.y)
        self.y_norm = float(self.target.l2)
        a0 = start_images(self.seeds, self.size, preset)
        self.state = preset.param.create(self.speed.format_input(a0.to(self.device)))
        with torch.no_grad():
            self.start = self.state.image().detach().float().cpu().clamp(0, 1)
        self._baseline = None  # the measures' zero points (`baseline`): loaded after the first step
        self._forward_tf = [t for t in preset.transforms if not t.on_pixels]
        self._post_tf = [t for t in preset.transforms if t.on_pixels]
        k = len(self.seeds)
        self.total = preset.iters  # the budget; extend() raises it
        self._hist = torch.full((self.total + 1, 3, k), float("nan"), device=self.device)  # loss, m_g, m_i per step
        self.steps_done = 0
        self.seconds = 0.0
        self.stop_reason: str | None = None  # "converged", "budget" or None (running, or stopped by the caller)
        self._opt: torch.optim.Optimizer | None = None
        self._last_check: torch.Tensor | None = None
        self._early_stop = preset.early_stop
        self._health: dict | None = None
        self.eval_batch = k  # seeds per forward in result(); run_resilient lowers it to what fits the memory
        self.incomplete = False  # run_resilient: a run split into seed batches, not every batch absorbed yet
        self.spec = None  # core.jobs: the RunSpec this run computes (what a Stop part-way leaves behind)

    @property
    def finished(self) -> bool:
        return self.stop_reason is not None

    # ------------------------------------------------------------------ the loop

    def optimizer(self) -> torch.optim.Optimizer:
        """The run's optimiser, made on first use and kept across `snapshots()` calls and `extend()`."""
        if self._opt is None:  # kept across snapshots() calls and extend(): Adam's moments carry on
            cls = torch.optim.Adam if self.preset.optimizer == "adam" else torch.optim.SGD
            self._opt = cls(self.state.tensors, lr=self.preset.lr_start)
        return self._opt

    def extend(self, steps: int, early_stop: bool = False) -> None:
        """Continue this run (finished or stopped) for `steps` more steps from its current images.

        The schedules hold their end values after the budget, so with constant schedules the
        images equal one longer run's. `early_stop=False` runs all `steps`."""
        steps = int(steps)
        if steps < 1:
            raise UserError(f"continue needs a positive number of steps (got {steps})")
        k = len(self.seeds)
        more = torch.full((steps, 3, k), float("nan"), device=self.device)
        self._hist = torch.cat([self._hist[: self.steps_done + 1], more])
        self.total = self.steps_done + steps
        self.stop_reason = None
        self._early_stop = early_stop
        self._last_check = None

    def snapshots(self, every: int = 10) -> Iterator[Snapshot]:
        """Run the remaining steps, yielding a snapshot every `every` steps and at the end.

        With `SpeedOptions.async_snapshots` on CUDA, a snapshot's copy to the host is started at its step
        and the snapshot is yielded at the first later step at which the copy has landed (the last one at
        once), so the GPU works on through the queued steps while the caller draws it. Its `step` is the
        step it shows; the next snapshot's copy waits for an earlier one still in flight."""
        every = max(1, int(every))
        opt = self.optimizer()
        last: Snapshot | None = None
        pending: HostCopy | None = None  # a snapshot on its way to the host
        self.speed.apply_global(self.device)
        watch = self.speed.watch(self.device)
        t0 = time.perf_counter() - self.seconds
        while self.steps_done < self.total and not self.finished:
            n = self.steps_done
            with MODEL_LOCK.shared():  # one step; never held across the yield below
                img, seen = self.inputs(n)
                out = self.encode_step(seen)
                per_seed = self.loss(img, out)
                opt.zero_grad(set_to_none=True)
                per_seed.sum().backward()
                self.apply(n, img, out, per_seed)
            self.advance()
            self.follow(watch)
            if self._baseline is None:  # the content judge loads after the first step, outside the timed steps
                b = time.perf_counter()
                self.baseline  # noqa: B018 - loads it
                t0 += time.perf_counter() - b
            if pending is not None and pending.ready():
                last, pending = self._deliver(pending, last), None
                yield last
            if self.steps_done % every == 0 or self.finished:
                self.seconds = time.perf_counter() - t0
                copy = self._copy_out(n)
                if pending is not None:  # an earlier snapshot still in flight goes first
                    last, pending = self._deliver(pending, last), None
                    yield last
                if self.lag_snapshots and not self.finished:
                    pending = copy
                else:
                    if self.finished and self.step_encoder is not None:
                        self.step_encoder.release()  # a finished run kept for Continue holds no graph memory
                    last = self._deliver(copy, last)
                    yield last

    @property
    def baseline(self):
        """The measures' zero points per seed (`core.measures.baseline`), made at first use: they load the content
        judge (another trained network), which a run needs for its first snapshot, not for its first step."""
        if self._baseline is None:
            self._baseline = baseline(self.original, self.start, self.model.name)
        return self._baseline

    def follow(self, watch) -> None:
        """Move to the thread count the load asks for now (`core.threads.Watch`; None: nothing to follow)."""
        n = watch.check() if watch is not None else None
        if n:
            torch.set_num_threads(n)
            self.speed = self.speed.replace(threads=n)

    # ------------------------------------------------------------------ the step API
    # One step in parts, so `core.engine.multistop` can step several runs through one shared forward and
    # backward, and `core.jobs.executor` can run a run's seeds in chunks and gather them back (`absorb`):
    #   img, seen = run.inputs(n); out = <encoder>(seen); per_seed = run.loss(img, out)
    #   run.optimizer().zero_grad(); per_seed.sum().backward(); run.apply(n, img, out, per_seed); run.advance()

    def inputs(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step n's images and what the encoder sees of them (forward transforms); sets step n's learning rate.

        Args:
            n: the step, counted from 0 over the whole run (continuations included).

        Returns:
            (img, seen): the parameterisation's images, with gradients, and the transformed encoder input.
        """
        p = self.preset
        for group in self.optimizer().param_groups:
            group["lr"] = lerp(p.lr_start, p.lr_end, n, p.horizon)
        img = self.state.image()
        seen = img
        for t in self._forward_tf:
            seen = t.forward(seen, n)
        return img, seen

    def encode_step(self, seen: torch.Tensor) -> torch.Tensor:
        """The step's forward: replayed from CUDA graphs when `SpeedOptions.cuda_graphs` is on (its output
        is then overwritten by the next step's), else the encoder under the options' autocast."""
        if self.step_encoder is not None:
            return self.step_encoder(seen)
        with self.speed.autocast(self.device):
            return self.encoder(seen)

    def loss(self, img: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The objective per seed for images `img` whose embedding is `out` (a (K,) tensor with gradients)."""
        return total(self.preset.objective, out.float(), self.target, img)

    def apply(self, n: int, img: torch.Tensor, out: torch.Tensor, per_seed: torch.Tensor) -> None:
        """After the backward: record step n's loss and distances, take the optimiser step, apply pixel transforms."""
        with torch.no_grad():
            self._hist[n, 0] = per_seed.detach()
            self._hist[n, 1] = l2_per_item(out.detach().float(), self.y)
            self._hist[n, 2] = l2_per_item(img.detach(), self.a)
            self.state.before_step(n)
            self.optimizer().step()
            for t in self._post_tf:
                t.post(self.state.pixels, n, self.preset.horizon)

    def advance(self) -> None:
        """Count the step and apply the convergence rule (sets `stop_reason` when the run ends)."""
        self.steps_done += 1
        if self._stop_check_due(self.preset) and self._done() and self.steps_done >= self.preset.horizon:
            self.stop_reason = "converged"
        elif self.steps_done >= self.total:
            self.stop_reason = "budget"

    def _stop_check_due(self, p: Preset) -> bool:
        """Whether the convergence rule looks at this step: every `stop_window` steps from one window before the
        schedules' horizon. It may end a run only once the schedules (learning rate, blur) have run their course:
        before that a plateau is the blur's, not the layer's (an untrained ViT-B/16 block at 32 px sat at
        m_g/m_r 0.98-1.0 from step 20 to 40 under the blur, then fell to 0.12 by step 150: clarity 0.62 if
        stopped at 40, 0.89 at 150)."""
        return (self._early_stop and self.steps_done % p.stop_window == 0
                and self.steps_done >= p.horizon - p.stop_window)

    def _done(self) -> bool:
        """The convergence rule: every seed converged (m_g <= m_r) and its SSIM to the image moved by at most
        `stop_tol` since the last check, one window ago: more steps would only refine the embedding match,
        not bring the picture closer. (A pixel-distance rule stopped too soon: m_i settles while the
        structure SSIM sees still sharpens, e.g. Lite0 blocks.1.0 SSIM 0.67 at step 120, 0.77 at 200.)"""
        with torch.no_grad(), MODEL_LOCK.shared():
            img = self.state.image().detach().float()
            with self.speed.autocast(self.device):
                m_g = l2_per_item(self.encoder(img).float(), self.y)
        conv = converged_mask(m_g, self.m_r, self.y_norm)
        if not bool(conv.all()):
            self._last_check = None
            return False
        now = torch.tensor([ssim(im, self.original) for im in img.clamp(0, 1).cpu()])
        prev, self._last_check = self._last_check, now
        return prev is not None and bool(((now - prev).abs() <= self.preset.stop_tol).all())

    def _copy_out(self, n: int) -> HostCopy:
        """Start copying step n's snapshot to the host: images, distances and whether the run diverged."""
        with torch.no_grad():
            raw = self.state.image().detach()
            bad = torch.stack([~torch.isfinite(t).all() for t in self.state.tensors]
                              + [raw.abs().max() > EXPLODED]).any()  # NaN/inf, or pixels too far to come back
            return HostCopy({"images": raw.float().clamp(0, 1), "hist": self._hist[n], "bad": bad},
                            step=self.steps_done, total=self.total, seconds=self.seconds)

    def _deliver(self, copy: HostCopy, last: Snapshot | None) -> Snapshot:
        """The snapshot of a landed copy; DivergenceError (with the last good snapshot) if the run diverged."""
        t, meta = copy.wait(), copy.meta
        if bool(t["bad"]):
            raise DivergenceError(
                f"the run diverged (NaN/inf or exploding pixels) before step {meta['step']}: lower lr_start "
                f"(now {self.preset.lr_start:g}) or the objective's weights, or use the default preset",
                last_snapshot=last,
            )
        h = t["hist"]
        return Snapshot(meta["step"], meta["total"], t["images"], h[0].tolist(), h[1].tolist(), h[2].tolist(),
                        meta["seconds"])

    def snapshot(self, n: int, last: Snapshot | None) -> Snapshot:
        """Step n's snapshot now (the device's queue drained up to it); `last` is the previous good one."""
        return self._deliver(self._copy_out(n), last)

    def absorb(self, part: "Inversion", index: list[int]) -> None:
        """Take over a chunk run's parameters, optimiser state and per-step history into seed slots `index`.

        `core.jobs.executor` runs a run's seeds in chunks when they do not fit the device at once; gathered back,
        the whole run can be continued as one batch exactly as the chunks would have gone on (when the chunks
        ran the same steps: a per-tensor step count, such as Adam's, takes the last chunk's). The whole run has
        then run as far as its longest chunk.

        Args:
            part: a run of the same image, layer and preset over some of this run's seeds.
            index: the positions of `part`'s seeds among this run's seeds, in `part`'s order.
        """
        with torch.no_grad():
            for whole, piece in zip(self.state.tensors, part.state.tensors):
                whole[index] = piece.detach().to(whole.device)
            if part._opt is not None:
                mine = self.optimizer()
                for whole, piece in zip(self.state.tensors, part.state.tensors):
                    for name, value in part._opt.state.get(piece, {}).items():
                        slot = mine.state[whole]
                        if torch.is_tensor(value) and value.shape == piece.shape:  # per element: the seeds' slots
                            if name not in slot:
                                slot[name] = torch.zeros_like(whole)
                            slot[name][index] = value.to(whole.device)
                        else:  # per tensor (a step count)
                            slot[name] = value.clone() if torch.is_tensor(value) else value
            n = min(self._hist.shape[0], part._hist.shape[0])
            self._hist[:n, :, index] = part._hist[:n].to(self._hist.device)
        self.steps_done = max(self.steps_done, part.steps_done)
        self.seconds += part.seconds

    def run(self, every: int | None = None) -> "InversionResult":
        for _ in self.snapshots(every or max(1, self.preset.iters // 10)):
            pass
        return self.result()

    # ------------------------------------------------------------------ the answer

    def health(self) -> dict:
        """Signal health of the stop for the encoded image (see core/models/health.py); computed once."""
        if self._health is None:
            self._health = signal_health(self.raw_encoder, self.a)
        return self._health

    def result(self) -> InversionResult:
        """Metrics of the current images (the final ones, or the last ones of a stopped run)."""
        with torch.no_grad(), MODEL_LOCK.shared():
            x = self.state.image().detach().float()
            b = max(1, int(self.eval_batch))
            out = torch.cat([self.encoder(x[i:i + b]).float() for i in range(0, x.shape[0], b)])
            m_g = l2_per_item(out, self.y)
            m_i = l2_per_item(x, self.a)
            self._hist[self.steps_done, 0] = total(self.preset.objective, out, self.target, x)
            self._hist[self.steps_done, 1] = m_g
            self._hist[self.steps_done, 2] = m_i
        images = x.cpu()
        shown = images.clamp(0, 1)
        hist = self._hist[: self.steps_done + 1].cpu()
        reached = [next((i for i, v in enumerate(hist[:, 1, s].tolist()) if v <= self.m_r), None)
                   for s in range(len(self.seeds))]
        degenerate = is_degenerate(self.m_r, self.y_norm)
        mg = m_g.cpu().tolist()
        metrics = Metrics(
            input_l2=m_i.cpu().tolist(),
            embedding_l2=mg,
            psnr=[psnr(img, self.original) for img in shown],
            **measure(shown, self.baseline),
            start_input_l2=l2_per_item(self.start, self.original.unsqueeze(0)).tolist(),
            reference_l2=self.m_r,
            shift_input_l2=self.shift,
            embedding_norm=self.y_norm,
            degenerate=degenerate,
            converged=converged_mask(m_g, self.m_r, self.y_norm).cpu().tolist(),
            mg_over_mr=None if degenerate else [v / self.m_r for v in mg],
            seed_spread_input=mean_pairwise(x),
            seed_spread_embedding=mean_pairwise(out),
            seed_distances_input=pairwise(x),  # K x K, for the non-uniqueness view
            seed_distances_embedding=pairwise(out),
            steps_to_reference=reached,
            stop_reason=self.stop_reason,
            budget=self.total,  # the steps this run was to take (a continued run's included)
            signal=self.health(),
        )
        history = {"step": list(range(self.steps_done + 1)), "loss": hist[:, 0].T.tolist(),
                   "embedding_l2": hist[:, 1].T.tolist(), "input_l2": hist[:, 2].T.tolist()}
        return InversionResult(
            self.model.name, self.model.checkpoint, self.stop.node, self.stop.label, self.size, self.preset,
            self.seeds, describe(self.device), self.seconds, self.steps_done, not self.finished,
            self.original, images, tuple(self.y.shape[1:]), metrics, history,
        )


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (a notebook, JupyterLab, VS Code, Colab); not a terminal or the app."""
    ipython = sys.modules.get("IPython")  # never imported here: a notebook has imported it already
    try:
        shell = ipython.get_ipython() if ipython is not None else None
    except Exception:  # an IPython too old or half set up: no notebook to draw in
        return False
    if shell is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "IPKernelApp" in getattr(shell, "config", {})


def progress_bar(progress: "bool | TextIO | None", total: int, desc: str, unit: str = "step"):
    """The progress bar a notebook user asked for, or None.

    Args:
        progress: None (default): a bar only in a Jupyter kernel (`in_notebook`), none in a terminal, a script or
            the app; True: a bar anyway (`tqdm.auto`: a widget in a notebook, text on stderr elsewhere); False:
            none; a writable text stream (a StringIO, sys.stderr): a plain text bar written to it.
        total: the bar's total; desc: its label; unit: what it counts.

    Returns:
        A tqdm bar (close it) or None.
    """
    if progress is None:
        progress = in_notebook()
    if progress is False:
        return None
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit)
    from tqdm import tqdm  # a stream: plain text, never a widget

    return tqdm(total=total, desc=desc, unit=unit, file=progress)


def invert(model: LoadedModel, layer: str, image: torch.Tensor, seeds: Sequence[int], preset: Preset,
           device: str | torch.device = "auto", speed: SpeedOptions | None = None, *,
           progress: "bool | TextIO | None" = None) -> InversionResult:
    """Run an inversion to the end and return its result.

    Args:
        model, layer, image, seeds, preset, device, speed: as for `Inversion`.
        progress: a progress bar over the steps, updated at each snapshot (`progress_bar`): None (default) shows
            one only in a notebook, False never, True always, a text stream writes a plain one to it.
    """
    run = Inversion(model, layer, image, seeds, preset, device, speed=speed)
    bar = progress_bar(progress, preset.iters, f"{model.name} {layer}")
    if bar is None:
        return run.run()
    try:
        for snap in run.snapshots(max(1, preset.iters // 50)):
            bar.total = snap.total
            bar.update(snap.step - bar.n)
        if run.stop_reason == "converged":
            bar.total = bar.n  # stopped before the budget because every seed converged: the bar is complete
            bar.set_postfix_str("converged", refresh=False)
    finally:
        bar.close()
    return run.result()
