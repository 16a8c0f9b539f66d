"""Issue 5 on the app side: bad files through AppTest uploads, bad settings, runs that go wrong.

The bad-image corpus is the one of tests/test_images.py (generated, no blobs), uploaded
through `AppTest.file_uploader(...).set_value`, which drives the page's real `st.file_uploader`.
Checkpoints are generated here; the command line gets the same checkpoint corpus.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import threading
import time
import tomllib
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")

from core import UserError, load_model  # noqa: E402
from core.jobs import SETTINGS  # noqa: E402
from core.cli.main import main
from test_images import BAD, GOOD  # noqa: E402  (the generated bad-image corpus)
from ui import live, models, pickers  # noqa: E402  (the modules the app imports: same objects)
from app_helpers import _cache_dir, app, errors, first_row, ok  # noqa: E402,F401  (_cache_dir: autouse fixture)

ROOT = Path(__file__).resolve().parent.parent
# iters=22: no other test file uses it, so nothing here comes from another test's cache entry
TINY = {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "image": "chelsea", "seeds": "2",
        "iters": "22", "size": "32", "preset": "default", "device": "cpu"}


def warnings(at) -> str:
    return " | ".join(w.value for w in at.warning)


def result_row(at):
    rows = [im for im in at.get("image") if im.captions and im.captions[0].startswith("original")]
    return rows[-1] if rows else None


def run_and_check(at, seeds=2):
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    row = result_row(at)
    assert row is not None and len(row.captions) == 1 + seeds
    return first_row(at).result


# --------------------------------------------------------------------------- bad images


def test_every_bad_and_odd_image_upload(tmp_path):
    at = app(TINY)
    at.run()
    ok(at)
    at.radio(key="inv_image").set_value("upload…")
    at.run()
    ok(at)
    for name, (make, msg) in BAD.items():
        at.file_uploader(key="inv_image_file").set_value((name, make(), "application/octet-stream"))
        at.run()
        ok(at)
        text = errors(at)
        assert msg in text and text.lower().startswith("image"), (name, text)
        assert not text.lower().startswith("image: image"), text  # one word once
        assert all("\n" not in e.value and "Traceback" not in e.value for e in at.error)
        assert at.button(key="inv_run").disabled, name
    for name, make in GOOD.items():
        at.file_uploader(key="inv_image_file").set_value((name, make(), "application/octet-stream"))
        at.run()
        ok(at)
        assert not at.error, (name, errors(at))
        assert not at.button(key="inv_run").disabled, name
    # after the whole corpus the page still runs (the last upload: the EXIF-rotated JPEG)
    r = run_and_check(at)
    assert r.steps_done == 22 and torch.isfinite(r.images).all()


def test_oversized_uploads_are_refused_before_they_are_read():
    class Huge:
        def __init__(self, name, size):
            self.name, self.size = name, size

        def getvalue(self):
            raise AssertionError("an oversized upload must not be read")

    with pytest.raises(UserError, match=r"is 51 MB: the limit is 50 MB"):
        pickers.read_upload_image(Huge("big.png", 51 * 2**20), 32)
    with pytest.raises(UserError, match=r"is 201 MB: the upload limit is 200 MB"):
        models.get_model("resnet18", "upload", 32, upload=Huge("big.pth", 201 * 2**20))
    # the server refuses larger uploads before the page sees them, with the same limit
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == models.MAX_UPLOAD_MB
    assert config["server"]["address"] == "127.0.0.1" and config["server"]["enableXsrfProtection"] is True


# --------------------------------------------------------------------------- bad checkpoints


class _Evil:
    """Unpickling this calls open(marker, 'w'): the marker file appears if code from the file ever runs."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _state_bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def checkpoint_corpus(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, what the message must say)."""
    r18 = load_model("resnet18", "untrained", 32, init_seed=3).module.state_dict()
    wrong = dict(r18)
    wrong["conv1.weight"] = torch.zeros(8, 3, 3, 3)
    full = _state_bytes(r18)
    return {
        "evil_pickle.pth": (pickle.dumps({"conv1.weight": _Evil(str(marker))}, protocol=2), "refused"),
        "evil_torch_save.pt": (_state_bytes({"conv1.weight": _Evil(str(marker))}), "refused"),
        "lite0.pth": (_state_bytes(load_model("efficientnet_lite0", "untrained", 32).module.state_dict()),
                      "does not fit resnet18: missing keys"),
        "wrong_shapes.pth": (_state_bytes(wrong), "wrong shapes: conv1.weight (8, 3, 3, 3) vs (64, 3, 7, 7)"),
        "truncated.pth": (full[: len(full) // 2], "not a readable PyTorch file"),
        "bad_header.safetensors": (struct.pack("<Q", 2**40) + b'{"a": 1}', "not a valid safetensors file"),
    }


def test_every_bad_checkpoint_upload_then_a_good_one(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    monkeypatch.setattr(models, "UPLOAD_DIR", str(uploads))
    seen = []
    real = models.load_model

    def spy(arch, checkpoint, *a, **k):
        if checkpoint.startswith(str(uploads)):  # the bytes sit in the temporary location while read
            seen.append((Path(checkpoint).name, os.path.isfile(checkpoint), os.stat(checkpoint).st_mode & 0o777))
        return real(arch, checkpoint, *a, **k)

    monkeypatch.setattr(models, "load_model", spy)
    at = app(TINY)
    at.run()
    at.radio(key="inv_ckpt").set_value("upload")
    at.run()
    ok(at)
    corpus = checkpoint_corpus(marker)
    for name, (data, msg) in corpus.items():
        at.file_uploader(key="inv_ckfile").set_value((name, data, "application/octet-stream"))
        at.run()
        ok(at)
        text = errors(at)
        assert text.lower().startswith("checkpoint") and msg in text and name in text, (name, text)
        assert not text.lower().startswith("checkpoint: checkpoint"), text  # one word once
        assert "upload-" not in text  # the user sees their file's name, not the temporary one
        assert all("\n" not in e.value for e in at.error)
        assert at.button(key="inv_run").disabled
        assert not marker.exists(), f"{name} ran code"
        assert list(uploads.iterdir()) == [], f"{name} left its temporary file"
    assert len(seen) == len(corpus) and all(exists and mode == 0o600 for _, exists, mode in seen), seen
    assert all(n.startswith("upload-") for n, _, _ in seen)
    # the page still works: a matching state dict runs
    good = _state_bytes(load_model("resnet18", "untrained", 32, init_seed=3).module.state_dict())
    at.file_uploader(key="inv_ckfile").set_value(("mine.pth", good, "application/octet-stream"))
    at.run()
    ok(at)
    assert not at.error, errors(at)
    r = run_and_check(at)
    assert "mine.pth" in first_row(at).label and r.steps_done == 22
    assert list(uploads.iterdir()) == [] and not marker.exists()


def test_every_bad_checkpoint_on_the_command_line(tmp_path, capsys, chelsea_path):
    marker = tmp_path / "pwned"
    for name, (data, msg) in checkpoint_corpus(marker).items():
        path = tmp_path / name
        path.write_bytes(data)
        code = main(["invert", "--model", "resnet18", "--checkpoint", str(path), "--layer", "layer1", "--image",
                     str(chelsea_path), "--size", "32", "--iters", "1", "--seeds", "1", "--out",
                     str(tmp_path / "o"), "--quiet"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error: ") and "\n" not in err and msg in err, (name, err)
        assert not marker.exists(), f"{name} ran code"
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- bad settings


def test_bad_link_settings_are_explained_and_the_page_runs():
    at = app({**TINY, "seeds": "0", "iters": "-3", "layer": "blocks.1.0"})
    at.run()
    ok(at)
    text = warnings(at)
    assert "seeds='0'" in text and "iters='-3'" in text, text
    assert "ignored the link's layer='blocks.1.0': resnet18 has no depth stop of that name" in text, text
    assert not at.error, errors(at)
    # the widgets cannot hold an invalid value: their bounds are the accepted ranges, the CLI's (core.jobs.SETTINGS)
    assert (at.slider(key="inv_seeds").min, at.slider(key="inv_seeds").max) == (1, SETTINGS["seeds"].hi) == (1, 64)
    assert at.number_input(key="inv_iters").min == SETTINGS["iters"].lo and at.number_input(key="inv_iters").value >= 1
    assert at.number_input(key="inv_lr").min == 0 and at.number_input(key="inv_lr").max == SETTINGS["lr"].hi == 1e4
    layer = at.select_slider(key="inv_layer")
    assert layer.value == "layer2" and any(o.endswith(" · layer2") for o in layer.options)  # a real stop
    at.slider(key="inv_seeds").set_value(1)
    at.number_input(key="inv_iters").set_value(20)
    at.select_slider(key="inv_layer").set_value("layer1")
    at.run()
    run_and_check(at, seeds=1)


def test_size_below_the_model_minimum_is_corrected_with_a_message():
    at = app({**TINY, "model": "alexnet", "layer": "features.2", "size": "32", "seeds": "1", "iters": "10"})
    at.run()
    ok(at)
    assert "size 32 px does not suit alexnet (at least 63 px): using 64 px" in warnings(at)
    assert at.select_slider(key="inv_size").value == 64
    assert min(int(o) for o in at.select_slider(key="inv_size").options) >= 63  # smaller sizes cannot be chosen
    assert not at.error, errors(at)


def test_a_layer_of_another_model_in_the_advanced_field():
    at = app(TINY)
    at.run()
    at.text_input(key="inv_node").set_value("blocks.1.0")  # an EfficientNet node, not a ResNet one
    at.run()
    ok(at)
    text = errors(at)
    assert text.startswith("layer: unknown layer 'blocks.1.0' for resnet18: use one of conv1") and "\n" not in text
    assert at.button(key="inv_run").disabled
    at.text_input(key="inv_node").set_value("layer2.0.conv1")  # any graph node of this model is fine
    at.run()
    ok(at)
    assert not at.error, errors(at)
    assert run_and_check(at).layer == "layer2.0.conv1"


def test_huge_learning_rate_warns_and_divergence_keeps_the_last_finite_images(monkeypatch):
    """lr is bounded by the widget (0..1e4, no NaN); a large one is flagged before the run. At this tiny
    size even lr 1e4 leaves pixels of ~1e4, under the engine's explosion bound (1e6), so the run is made
    to blow up the way a real one does: from step 7 on the schedule (core.priors.lerp) returns NaN, and
    the app's real divergence path runs (message naming the setting, last finite snapshot, page usable)."""
    import core.engine.loop

    real_lerp = core.priors.lerp
    monkeypatch.setattr(core.engine.loop, "lerp", lambda a, b, n, total: float("nan") if n >= 7 else real_lerp(a, b, n, total))
    at = app({**TINY, "preset": "paper", "iters": "20"})
    at.run()
    ok(at)
    at.number_input(key="inv_lr").set_value(1e4)
    at.run()
    ok(at)
    assert "learning rate 10000 is 100000× the paper preset's (0.1)" in warnings(at)
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    text = errors(at)
    assert "diverged" in text and "lower lr_start (now 10000)" in text and "\n" not in text, text
    finite = [im for im in at.get("image") if im.captions and "last finite step" in im.captions[0]]
    assert finite and finite[-1].captions == ["seed 0, last finite step 5", "seed 1, last finite step 5"]
    assert not at.session_state["inv_live"].running  # nothing half-run left for the next run
    monkeypatch.setattr(core.engine.loop, "lerp", real_lerp)
    at.number_input(key="inv_lr").set_value(0.0)
    at.run()
    run_and_check(at)


# --------------------------------------------------------------------------- out of memory


def test_out_of_memory_splits_the_seeds_and_says_so(monkeypatch):
    """A fake allocator limit (as in tests/test_speed.py): any step with more than one seed is out of memory."""
    from core.models.encoder import Encoder

    real = Encoder.forward

    def forward(self, x):
        if torch.is_grad_enabled() and x.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (fake: batch {x.shape[0]} > 1)")
        return real(self, x)

    monkeypatch.setattr(Encoder, "forward", forward)
    at = app({**TINY, "iters": "24"})
    at.run()
    ok(at)
    assert not at.error, errors(at)
    assert any("Out of memory measuring 2 seeds" in i.value for i in at.info)
    r = run_and_check(at)
    text = " ".join(c.value for c in at.caption)  # the result keeps what the run had to do, as its notes
    assert "Note: out of memory with 2 seeds per batch: retrying with 1" in text, text
    assert "Note: finished in 2 batches of at most 1 seeds" in text, text
    assert r.seeds == [0, 1] and r.steps_done == 24 and torch.isfinite(r.images).all()


# --------------------------------------------------------------------------- a rerun frees the device at once


class _View:
    """A LiveView stand-in. Streamlit stops an abandoned script at its next st call by raising
    RerunException there; `update` does the same once `stop` is set."""

    def __init__(self, stop: threading.Event | None = None):
        self.stop, self.positions, self.started_at, self.updates = stop, [], None, 0
        self.aheads = []

    def waiting(self, position, waiting):
        self.positions.append((position, waiting))

    def ahead(self, ahead):
        self.aheads.append(ahead)

    def note(self, text):
        pass

    def update(self, snap):
        if self.started_at is None:
            self.started_at = time.monotonic()
        self.updates += 1
        if self.stop is not None and self.stop.is_set():
            from streamlit.runtime.scriptrunner_utils.exceptions import RerunException

            raise RerunException(None)

    progress = update

    def clear(self):
        pass


def test_a_rerun_releases_the_queue_at_once_and_keeps_the_partial_run():
    from core import get_preset, load_image
    from core.jobs import Callbacks, LiveRow, LiveRun
    from core.jobs.spec import RunSpec
    from core.jobs.queue import queue_for

    model = load_model("resnet18", "untrained", 224)
    image = load_image(ROOT / "assets" / "chelsea.png", 32)
    long, short = get_preset("default", iters=5000), get_preset("default", iters=10)
    stop = threading.Event()
    view_a, view_b = _View(stop), _View()
    outcome = {}

    run_a, run_b = LiveRun(), LiveRun()  # each session's page keeps one

    def hooks(view):
        return lambda i, row: Callbacks(snapshot=view.update, progress=view.progress, wait=view.waiting,
                                        ahead=view.ahead)

    def session_a():
        try:
            run_a.go(image, [LiveRow(RunSpec.of(model, "layer2", image, [0], long, "cpu"), model)],
                     callbacks=hooks(view_a), every=5)
            outcome["a"] = "finished"
        except BaseException as exc:  # noqa: BLE001 - the rerun
            outcome["a"] = type(exc).__name__

    def session_b():
        run_b.go(image, [LiveRow(RunSpec.of(model, "layer1", image, [0, 1], short, "cpu"), model)],
                 callbacks=hooks(view_b), every=5)
        outcome["b"] = run_b.rows[0].result

    ta = threading.Thread(target=session_a)
    ta.start()
    deadline = time.monotonic() + 60
    while view_a.updates < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view_a.updates >= 2, "session A did not start"
    tb = threading.Thread(target=session_b)
    tb.start()
    while not view_b.positions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view_b.positions[0] == (1, 1)  # B is told it is first in line, behind A
    assert view_b.aheads[0].runs == 1 and view_b.aheads[0].unknown == 1  # A gave no estimate: no wait promised
    t_stop = time.monotonic()
    stop.set()  # A's page reruns (Stop button, changed widget, closed tab)
    ta.join(30)
    tb.join(60)
    assert outcome["a"] == "RerunException"
    assert view_b.started_at is not None and view_b.started_at - t_stop < 3.0, view_b.started_at - t_stop
    assert outcome["b"] is not None and outcome["b"].steps_done == 10
    assert queue_for("cpu").state() == {"running": 0, "waiting": 0, "slots": 1}
    assert run_a.salvage()  # what A computed is kept for its page
    partial = run_a.rows[0].result
    assert partial.stopped_early and 0 < partial.steps_done < 5000
    print(f"B started {view_b.started_at - t_stop:.2f} s after A's rerun (A had done {partial.steps_done} steps)")


def test_the_queue_line_gives_the_place_and_the_runs_ahead_time():
    from core.jobs import Ahead

    assert live.waiting_text(2, 3) == ("The device is busy with another run: you are number 2 of 3 in the queue. "
                                       "Your run starts by itself.")
    text = live.waiting_text(2, 3, Ahead(runs=2, seconds=40.0, unknown=0, slots=1))
    assert "you are number 2 of 3 in the queue" in text and "take about 40 s more by their estimates" in text
    assert "before yours" not in live.waiting_text(1, 1, Ahead(runs=1, seconds=0.0, unknown=1))  # no estimate: no time
