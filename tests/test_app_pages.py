"""Every page of the Streamlit app through AppTest, on tiny CPU configurations."""

import io
import json
import re

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app_helpers import _cache_dir, app, errors, first_row, ok  # noqa: E402,F401  (_cache_dir: autouse fixture)

TINY = {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "image": "chelsea", "seeds": "2",
        "iters": "20", "size": "32", "preset": "default", "device": "cpu"}


def _no_engine(*args, **kwargs):
    raise AssertionError("a cached run must not start the engine")


def result_images(at: AppTest):
    """The result row: the original and one image per seed."""
    rows = [im for im in at.get("image") if im.captions and im.captions[0].startswith("original")]
    return rows[-1] if rows else None


def test_landing_page_shows_a_finished_example_without_clicking():
    at = app()
    at.run()
    ok(at)
    row = result_images(at)
    assert row is not None, "the first visit shows a finished example"
    assert len(row.captions) == 1 + 2  # original + default CPU seeds
    assert all(c.startswith("seed") and "clarity" in c for c in row.captions[1:])
    # trained beside untrained: a second row of the same seeds under the first, and the difference in clarity
    rows = [im for im in at.get("image") if im.captions and len(im.captions) == 3]
    assert len(rows) == 2 and rows[1].captions[0].strip() == "" and rows[1].captions[1].startswith("seed 0")
    heads = [m.value for m in at.markdown if m.value.startswith("**trained**") or m.value.startswith("**untrained**")]
    assert len(heads) == 2 and all("clarity" in h and "pixel" in h and "structure" in h for h in heads), heads
    assert any(m.value.startswith("**At ") and "against" in m.value for m in at.markdown)
    assert sum(m.value.startswith("**Reading, ") for m in at.markdown) == 2
    assert at.query_params["model"] in ("efficientnet_lite0", ["efficientnet_lite0"])  # the view is in the URL
    assert at.query_params["vs"] in ("untrained", ["untrained"])  # the pair is in the link
    assert not at.button(key="inv_stop").value and at.button(key="inv_stop").disabled  # nothing runs: no Stop
    assert not at.button(key="inv_continue").disabled  # the shown run can be continued


def test_a_side_by_side_link_reproduces_both_rows_and_one_checkpoint_links_stay_single():
    """vs= in a link gives the same two rows; a link without it shows one checkpoint (as links always did)."""
    at = app({**TINY, "vs": "reinit"})
    at.run()
    ok(at)
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    heads = [m.value for m in at.markdown if m.value.startswith("**untrained")]
    assert len(heads) == 2 and "init seed 1" in heads[1], heads
    sentence = [m.value for m in at.markdown if m.value.startswith("**At ")]
    assert sentence and "untrained" in sentence[0]
    again = app(dict(at.query_params))
    again.run()
    ok(again)
    assert [m.value for m in again.markdown if m.value.startswith("**untrained")] == heads  # from the cache
    single = app(TINY)
    single.run()
    ok(single)
    assert not [m.value for m in single.markdown if m.value.startswith("**At ")]


def test_switching_to_a_model_without_trained_weights_never_strands_run(monkeypatch):
    """Trained weights this machine lacks: on a model switch (or a link) the checkpoint falls back to untrained
    with a notice, so Run stays enabled; picking trained then offers the download."""
    from core import ARCHITECTURES, trained_status

    missing = [a for a in ARCHITECTURES if not trained_status(a)["cached"]]
    if not missing:
        pytest.skip("every architecture's trained weights are on this machine")
    at = app({"model": missing[0], "ckpt": "trained", "size": "32", "seeds": "1", "iters": "5"})
    at.run()
    ok(at)
    assert at.radio(key="inv_ckpt").value == "untrained"
    assert any("not on this machine" in i.value for i in at.info)
    assert not at.button(key="inv_run").disabled
    at2 = app()
    at2.run()
    at2.selectbox(key="inv_model").select(missing[0])
    at2.run()
    ok(at2)
    assert at2.radio(key="inv_ckpt").value == "untrained" and not at2.button(key="inv_run").disabled
    assert at2.radio(key="inv_vs").value in ("reinit", "none")  # never untrained against itself
    at2.radio(key="inv_ckpt").set_value("trained")
    at2.run()
    assert at2.button(key="inv_run").disabled and any(b.key.endswith("_download") for b in at2.button)


def test_invert_tiny_run_from_link_then_run_again_is_instant(monkeypatch):
    at = app(TINY)
    at.run()
    ok(at)
    assert not at.error, errors(at)
    row = result_images(at)
    assert row is not None and len(row.captions) == 3
    assert first_row(at).result.steps_done == 20
    assert at.selectbox(key="inv_model").value == "resnet18"
    assert len(at.get("download_button")) >= 2
    # a different setting, run by the button
    at.slider(key="inv_seeds").set_value(3)
    at.run()
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    row = result_images(at)
    assert len(row.captions) == 4
    # the same settings again come from the cache: the engine is not even constructed
    import core.jobs.pipeline

    monkeypatch.setattr(core.jobs.pipeline, "run_resilient", _no_engine)
    monkeypatch.setattr(core.jobs.pipeline, "Inversion", _no_engine)
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    assert any("In the cache" in s.value for s in at.caption)
    r = first_row(at).result
    assert r.seeds == [0, 1, 2] and len(r.metrics["ssim"]) == 3


def test_invert_corrupt_image_upload_gives_an_error_and_keeps_the_page():
    at = app(TINY)
    at.run()
    before = first_row(at).result
    at.radio(key="inv_image").set_value("upload…")
    at.run()
    ok(at)
    at.file_uploader(key="inv_image_file").set_value(("cat.png", b"this is not a png at all", "image/png"))
    at.run()
    ok(at)
    assert "not an image" in errors(at)
    assert at.button(key="inv_run").disabled
    assert result_images(at) is not None  # nothing computed is lost
    assert first_row(at).result is before or torch.equal(
        first_row(at).result.images, before.images)
    at.radio(key="inv_image").set_value("coffee")
    at.run()
    ok(at)
    assert not at.error
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error and len(result_images(at).captions) == 3


def test_invert_mismatched_checkpoint_gives_an_error_and_keeps_the_page():
    at = app(TINY)
    at.run()
    at.radio(key="inv_ckpt").set_value("upload")
    at.run()
    ok(at)
    buf = io.BytesIO()
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3)}, buf)  # not a ResNet-18
    at.file_uploader(key="inv_ckfile").set_value(("other.pth", buf.getvalue(), "application/octet-stream"))
    at.run()
    ok(at)
    msg = errors(at)
    assert "does not fit resnet18" in msg and "other.pth" in msg
    assert at.button(key="inv_run").disabled
    assert result_images(at) is not None
    # the message sits at the top with the page's notices, above the stale result, and the toolbar points to it
    def walk(node):  # the main area's elements in page order
        for _, child in sorted(getattr(node, "children", {}).items()):
            yield child
            yield from walk(child)

    body = list(walk(at.main))
    where = next(i for i, el in enumerate(body) if el.type == "error" and "does not fit" in str(el.value))
    first_image = next(i for i, el in enumerate(body) if el.type == "image")
    assert where < first_image, (where, first_image, len(body))
    assert any("the red message says why" in i.value for i in at.info)
    at.radio(key="inv_ckpt").set_value("untrained")
    at.run()
    ok(at)
    assert not at.error


def test_invert_matching_uploaded_checkpoint_runs():
    from core import load_model

    buf = io.BytesIO()
    torch.save(load_model("resnet18", "untrained", 32, init_seed=3).module.state_dict(), buf)
    at = app(TINY)
    at.run()
    at.radio(key="inv_ckpt").set_value("upload")
    at.run()
    at.file_uploader(key="inv_ckfile").set_value(("mine.pth", buf.getvalue(), "application/octet-stream"))
    at.run()
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    assert "mine.pth" in first_row(at).label
    assert len(result_images(at).captions) == 3


def test_curve_page_one_point_per_stop_and_checkpoint():
    at = app(TINY)
    at.run()
    at.switch_page("pages/1_curve.py")
    at.run()
    ok(at)
    assert at.button(key="cur_run")  # renders with defaults, no run yet
    at.selectbox(key="cur_model").set_value("efficientnet_lite0")
    at.run()
    at.multiselect(key="cur_cks").set_value(["untrained", "trained"])
    at.multiselect(key="cur_stops").set_value(["conv_stem", "blocks.1.1"])
    at.slider(key="cur_seeds").set_value(2)
    at.number_input(key="cur_iters").set_value(10)
    at.select_slider(key="cur_size").set_value(32)
    at.run()
    at.button(key="cur_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    rows = at.session_state["cur_curve"]["rows"]
    assert sorted((r.checkpoint, r.layer) for r in rows) == [
        ("trained", "blocks.1.1"), ("trained", "conv_stem"), ("untrained", "blocks.1.1"), ("untrained", "conv_stem")]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    lines = [t for t in spec["data"] if t.get("mode") == "lines+markers"]
    assert len(lines) == 2 and all(t["x"] == [0, 4] for t in lines)  # depth-stop indices in forward order
    assert spec["layout"]["xaxis"]["ticktext"] == ["stem conv", "stage 2 block 2"]  # the stops' labels
    assert len(at.get("download_button")) == 3
    # another metric, and a gallery cell with every seed
    at.selectbox(key="cur_metric").set_value("mg_over_mr")
    at.selectbox(key="cur_cell").set_value(at.selectbox(key="cur_cell").options[-1])
    at.run()
    ok(at)
    assert any(len(im.captions) == 3 and im.captions[0] == "original" for im in at.get("image"))


def test_curve_page_runs_the_stops_in_one_batch_when_asked():
    """The Advanced choice "all stops of a checkpoint in one batch": the same rows as one by one (cached under the
    same keys, so the second way reads them all from the cache)."""
    at = app(TINY)
    at.run()
    at.switch_page("pages/1_curve.py")
    at.run()
    at.selectbox(key="cur_model").set_value("resnet18")
    at.run()
    at.multiselect(key="cur_cks").set_value(["untrained"])
    at.multiselect(key="cur_stops").set_value(["conv1", "layer1", "layer3"])
    at.slider(key="cur_seeds").set_value(2)
    at.number_input(key="cur_iters").set_value(12)
    at.select_slider(key="cur_size").set_value(32)
    at.number_input(key="cur_init_seed").set_value(7)  # weights no other test uses: nothing of this in the cache

    def run_curve(batch: str) -> list:
        at.selectbox(key="cur_batch").set_value(batch)
        at.run()
        at.button(key="cur_run").click()
        at.run()
        ok(at)
        return at.session_state["cur_curve"]["rows"]

    together = run_curve("on")
    assert [r.layer for r in together] == ["conv1", "layer1", "layer3"] and not any(r.cached for r in together)
    assert at.query_params.get("batch") in ("on", ["on"])
    again = run_curve("off")
    assert all(r.cached for r in again)
    assert [r.result.metrics["clarity"] for r in again] == [r.result.metrics["clarity"] for r in together]


def test_nonunique_page():
    at = app(TINY)
    at.run()
    at.switch_page("pages/2_nonunique.py")
    at.run()
    ok(at)
    at.selectbox(key="nu_model").set_value("resnet18")
    at.run()
    at.radio(key="nu_ckpt").set_value("untrained")
    at.select_slider(key="nu_layer").set_value("layer2")
    at.slider(key="nu_seeds").set_value(2)
    at.number_input(key="nu_iters").set_value(20)
    at.select_slider(key="nu_size").set_value(32)
    at.run()
    at.button(key="nu_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    charts = at.get("plotly_chart")
    assert len(charts) == 3  # trajectories + two distance matrices
    traj = json.loads(charts[0].proto.spec)
    assert len([t for t in traj["data"] if t["type"] == "scatter"]) == 4  # m_g and m_i per seed
    heat = json.loads(charts[1].proto.spec)["data"][0]
    assert len(heat["z"]) == 2 and heat["z"][0][0] is None  # the diagonal is blank; off it, log10 of a ratio
    assert any(len(im.captions) == 3 for im in at.get("image"))
    labels = {b.label for b in at.get("download_button")}
    assert {"Seed distances (CSV)", "Image grid (PNG)", "Run (JSON)"} <= labels


def test_about_page():
    at = app(TINY)
    at.run()
    at.switch_page("pages/3_about.py")
    at.run()
    ok(at)
    text = " ".join(m.value for m in at.markdown)
    assert "2211.06496" in text and "clarity" in text and "m_r" in text


def test_shipped_example_matches_the_current_defaults():
    """assets/examples holds the landing page's default run; refresh it with `python -m ui.make_example`."""
    from pathlib import Path

    from core import get_preset, load_image, load_model, sample_images
    from core.jobs.spec import RunSpec
    from core.jobs.cache import RunCache
    from ui import models, pickers

    d = pickers.DEFAULTS
    if pickers.ON_GPU:
        pytest.skip("the shipped example is the CPU default")
    size = d["size"]
    spec = RunSpec.of(load_model(d["model"], d["ckpt"], size), models.default_layer(d["model"]),
                      load_image(sample_images()[d["image"]], size), list(range(d["seeds"])),
                      get_preset(d["preset"], iters=d["iters"]), d["device"])
    shipped = RunCache(Path(__file__).resolve().parent.parent / "assets" / "examples").get(spec.key())
    assert shipped is not None, "the defaults changed: run `python -m ui.make_example`"
    beside = RunSpec.of(load_model(d["model"], "untrained", size), spec.layer, load_image(sample_images()[d["image"]],
                        size), list(range(d["seeds"])), get_preset(d["preset"], iters=d["iters"]), d["device"])
    assert RunCache(Path(__file__).resolve().parent.parent / "assets" / "examples").get(beside.key()) is not None, \
        "the first visit's untrained row is not shipped: run `python -m ui.make_example`"
    assert len(shipped.seeds) == d["seeds"] and not shipped.stopped_early
    # a finished run: its whole budget, or fewer steps because the convergence rule found it converged
    assert shipped.steps_done == d["iters"] or (shipped.steps_done < d["iters"]
                                                 and shipped.metrics["stop_reason"] == "converged")


def test_bad_link_values_are_ignored_with_a_warning():
    at = app({**TINY, "model": "no_such_net", "seeds": "99"})
    at.run()
    ok(at)
    text = " ".join(w.value for w in at.warning)
    assert "model='no_such_net'" in text and "seeds='99'" in text
    assert at.selectbox(key="inv_model").value == "efficientnet_lite0"


def test_missing_trained_weights_are_explained_with_their_size():
    from core import trained_status

    if trained_status("resnet18")["cached"]:
        pytest.skip("resnet18 trained weights are on this machine")
    at = app({**TINY, "ckpt": "trained"})
    at.run()
    ok(at)
    assert at.radio(key="inv_ckpt").value == "untrained"  # the link's choice cannot run here: the page falls back
    at.radio(key="inv_ckpt").set_value("trained")  # picked on purpose: what is missing, and the download
    at.run()
    text = " ".join(w.value for w in at.warning)
    assert "not on this machine" in text and "45 MB" in text and "resnet18-f37072fd.pth" in text
    assert any("Download trained resnet18" in b.label for b in at.button)
    assert at.button(key="inv_run").disabled


def test_settings_survive_a_page_switch():
    at = app(TINY)
    at.run()
    at.slider(key="inv_seeds").set_value(3)
    at.run()
    at.switch_page("pages/3_about.py")
    at.run()
    at.switch_page("app.py")
    at.run()
    ok(at)
    assert at.selectbox(key="inv_model").value == "resnet18" and at.slider(key="inv_seeds").value == 3
    assert result_images(at) is not None  # the last result is still there


def test_log_axis_ticks_are_labelled_in_full():
    """The m_g chart's log axis: 1-2-5 ticks with full labels (plotly alone wrote "7, 8, 9, 100, 2")."""
    from core.report.figures import log_ticks, trajectory_figure

    assert log_ticks([65, 800, 261]) == ([100.0, 200.0, 500.0], ["100", "200", "500"])
    assert log_ticks([2.3, 15])[1] == ["3", "4", "5", "6", "7", "8", "9", "10"]
    assert log_ticks([0.001, 1000])[1] == ["0.001", "0.01", "0.1", "1", "10", "100", "1000"]
    assert log_ticks([5.2, 6.1]) == ([], []) and log_ticks([float("nan"), None]) == ([], [])
    fig = trajectory_figure({"step": [0, 1, 2], "embedding_l2": [[800.0, 300.0, 70.0]], "input_l2": [[35.0, 30.0, 21.0]]},
                            [0], m_r=261.0, shift=4.4)
    assert list(fig.layout.yaxis.ticktext) == ["100", "200", "500"]  # m_g from 70 to 800, m_r 261


def test_a_failed_download_says_why_in_words_and_leaves_no_progress_bar(monkeypatch):
    from core import UserError, trained_status
    from ui import models

    if trained_status("resnet18")["cached"]:
        pytest.skip("resnet18 trained weights are on this machine")

    def offline(arch, progress=None):
        progress(0, 45 * 2**20)
        raise UserError("could not download https://download.pytorch.org/models/resnet18-f37072fd.pth (<urlopen error "
                        "[Errno -3] Temporary failure in name resolution>); without a network, copy the file to "
                        "/hub/checkpoints/resnet18-f37072fd.pth")

    monkeypatch.setattr(models, "download_trained", offline)
    at = app({**TINY, "ckpt": "trained"})
    at.run()
    at.radio(key="inv_ckpt").set_value("trained")  # the link fell back to untrained; picked on purpose
    at.run()
    at.button(key="inv__download").click()
    at.run()
    ok(at)
    text = errors(at)
    assert "Download failed: this machine cannot reach the download server" in text, text
    assert "/hub/checkpoints/resnet18-f37072fd.pth" in text and "urlopen" not in text and "Errno" not in text
    assert not at.get("progress")  # the bar is replaced by the message
    assert any("Run is not available yet: the trained resnet18 weights are not on this machine" in i.value
               for i in at.info)


def test_a_rejected_upload_names_the_new_file_not_the_previous_one():
    at = app(TINY)
    at.run()
    at.radio(key="inv_ckpt").set_value("upload")
    at.run()
    buf = io.BytesIO()
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3)}, buf)
    at.file_uploader(key="inv_ckfile").set_value(("other.pth", buf.getvalue(), "application/octet-stream"))
    at.run()
    assert "other.pth" in errors(at)
    at.file_uploader(key="inv_ckfile").set_value(("notes.txt", b"hello", "text/plain"))
    at.run()
    ok(at)
    text = errors(at)
    assert "notes.txt" in text and "other.pth" not in text and ".pth, .pt, .safetensors or .bin" in text, text
    # the same for an image
    at.radio(key="inv_image").set_value("upload…")
    at.run()
    at.file_uploader(key="inv_image_file").set_value(("readme.txt", b"just text", "text/plain"))
    at.run()
    ok(at)
    assert "readme.txt" in errors(at)


def test_the_presentation_toggle_puts_the_mode_in_the_link_on_every_page():
    """The sidebar's toggle and ?mode=present say the same: the link of a presented page presents it."""
    at = app(TINY)
    at.run()
    at.toggle(key="present").set_value(True)
    at.run()
    ok(at)
    assert at.query_params.get("mode") in ("present", ["present"])
    at.switch_page("pages/3_about.py")
    at.run()
    assert at.query_params.get("mode") in ("present", ["present"])
    at.toggle(key="present").set_value(False)
    at.run()
    assert "mode" not in at.query_params


@pytest.mark.parametrize("page,prefix", [("pages/1_curve.py", "cur_"), ("pages/2_nonunique.py", "nu_"),
                                         ("pages/6_compare.py", "cmp_"), ("app.py", "inv_")])
def test_stop_is_disabled_while_nothing_runs(page, prefix):
    at = app({"model": "resnet18", "ckpt": "untrained", "size": "32", "iters": "12345"})  # never cached, never quick
    at.run()
    if page != "app.py":
        at.switch_page(page)
        at.run()
    ok(at)
    stop = at.button(key=prefix + "stop")
    assert stop.disabled, page


def test_the_cheaper_setting_button_runs_what_it_offers(monkeypatch):
    """A run estimated at minutes offers a setting that fits about 20 s; its button sets it and runs it."""
    from core.jobs import Estimate
    from ui import live

    def slow(key, layer, size, seeds, preset_json, device, _model):  # half a second a step, whatever the setting
        return Estimate(0.0, 0.5 * seeds / 2 * (size / 32) ** 2, json.loads(preset_json).get("iters", 300))

    monkeypatch.setattr(live, "_estimate", slow)
    at = app({**TINY, "iters": "300"})
    at.run()
    ok(at)
    assert any("take up to" in w.value for w in at.warning), [w.value for w in at.warning]
    (offer,) = [b for b in at.button if b.label.startswith("Run at ")]
    offered = re.match(r"Run at 32 px, 2 seeds, (\d+) iterations", offer.label)
    assert offered and int(offered[1]) < 300, offer.label
    assert first_row(at) is None
    offer.click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    row = first_row(at)
    iters = int(offered[1])
    assert row is not None and row.result.preset.iters == iters and at.number_input(key="inv_iters").value == iters
    assert result_images(at) is not None


def test_the_operators_limits_refuse_a_run_in_words_and_keep_the_page(monkeypatch):
    """A run estimated past INVERSION_MAX_RUN_S, or asked while INVERSION_MAX_WAITING runs wait, is refused with
    what to do; nothing runs and the page stays usable."""
    at = app({**TINY, "iters": "1500", "init_seed": "7"})  # not cached, nor short enough to run by itself
    at.run()
    ok(at)
    monkeypatch.setenv("INVERSION_MAX_RUN_S", "0.01")
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    text = errors(at)
    assert "This server limits one run to under a second" in text and "INVERSION_MAX_RUN_S" in text, text
    assert first_row(at) is None
    monkeypatch.setenv("INVERSION_MAX_RUN_S", "100000")
    monkeypatch.setenv("INVERSION_MAX_WAITING", "0")
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert "The server is busy" in errors(at) and first_row(at) is None
    monkeypatch.delenv("INVERSION_MAX_WAITING")
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    assert first_row(at) is not None and first_row(at).result.steps_done >= 1
