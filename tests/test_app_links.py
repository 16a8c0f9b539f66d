"""Links reproduce views: every setting of every page goes into the URL and comes back in a fresh session,
and a linked run that is neither cached nor quick waits for Run. Pages are reached through the entry file."""

import pytest

pytest.importorskip("streamlit")

from app_helpers import _cache_dir, app, errors, first_row, ok  # noqa: E402,F401  (_cache_dir: autouse fixture)

# every setting of a one-layer page, none at its default (init seed, learning rate and graph node included)
ONE_LAYER = {"model": "resnet18", "ckpt": "untrained", "layer": "layer2", "node": "layer2.0.conv1",
             "image": "coffee", "seeds": "3", "iters": "20", "size": "32", "preset": "paper", "device": "cpu",
             "init_seed": "3", "lr": "0.05"}
WIDGETS = {"model": "selectbox", "ckpt": "radio", "layer": "select_slider", "node": "text_input", "image": "radio",
           "seeds": "slider", "iters": "number_input", "size": "select_slider", "preset": "selectbox",
           "device": "selectbox", "init_seed": "number_input", "lr": "number_input"}


def open_link(page: str | None, query: dict):
    """A fresh session opened on `page` by a link with `query` (the entry file runs first, as in a browser)."""
    at = app(None if page else query)
    if page:
        at.run()
        at.switch_page(page)
        at.query_params.clear()
        for k, v in query.items():
            at.query_params[k] = v
    at.run()
    ok(at)
    return at


def _norm(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def values(at, prefix: str) -> dict:
    """Each widget's value (numbers as floats, so "3" and 3 compare equal)."""
    return {k: _norm(getattr(at, w)(key=prefix + k).value) for k, w in WIDGETS.items()}


def url(at) -> dict:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


@pytest.mark.parametrize("page,prefix", [(None, "inv_"), ("pages/2_nonunique.py", "nu_")])
def test_one_layer_pages_round_trip_every_setting(page, prefix):
    at = open_link(page, ONE_LAYER)
    assert not at.warning or all("learning rate" not in w.value for w in at.warning)
    got = values(at, prefix)
    assert got == {k: _norm(v) for k, v in ONE_LAYER.items()}
    # the page writes them back, and a second fresh session from that URL shows the same settings
    link = url(at)
    assert {k: link[k] for k in ONE_LAYER} == {**ONE_LAYER, "lr": "0.05"}
    again = open_link(page, link)
    assert values(again, prefix) == got


def test_invert_link_reproduces_the_result_and_records_every_setting():
    at = open_link(None, ONE_LAYER)
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    first = first_row(at).result
    assert first.layer == "layer2.0.conv1" and first.preset.name == "paper" and first.preset.lr_start == 0.05
    spec = first.spec
    assert spec["init_seed"] == 3 and spec["checkpoint"] == "untrained" and spec["versions"]["torch"]
    caption = " ".join(c.value for c in at.caption)
    assert "init seed 3" in caption and "torch " in caption and "seeds [0, 1, 2]" in caption
    # a fresh session from the page's own link shows exactly that result, from the cache, without a click
    again = open_link(None, url(at))
    shown = first_row(again).result
    assert shown.spec == spec and shown.metrics["ssim"] == first.metrics["ssim"]
    assert any("shown on opening it" in c.value for c in again.caption)


def test_a_linked_long_run_waits_for_run():
    at = open_link(None, {"model": "resnet18", "ckpt": "untrained", "layer": "layer3", "size": "224", "seeds": "4",
                          "iters": "2000", "device": "cpu"})
    assert first_row(at) is None
    assert any("press **Run** to start it" in i.value for i in at.info)
    assert not at.button(key="inv_run").disabled


def test_curve_page_round_trips_every_setting_and_a_cached_curve_shows_from_its_link():
    link = {"model": "resnet18", "cks": "untrained", "all": "0", "stops": "conv1,layer1", "image": "coffee",
            "seeds": "1", "iters": "10", "size": "32", "preset": "default", "device": "cpu", "init_seed": "2",
            "lr": "0.1", "metric": "ssim_mean"}
    at = open_link("pages/1_curve.py", link)
    assert at.multiselect(key="cur_stops").value == ["conv1", "layer1"]
    assert at.multiselect(key="cur_cks").value == ["untrained"]
    assert at.number_input(key="cur_init_seed").value == 2 and at.number_input(key="cur_lr").value == 0.1
    assert at.radio(key="cur_image").value == "coffee" and at.slider(key="cur_seeds").value == 1
    assert "cur_curve" not in at.session_state  # not cached: waits for Run curve
    at.button(key="cur_run").click()
    at.run()
    ok(at)
    rows = at.session_state["cur_curve"]["rows"]
    assert [r.layer for r in rows] == ["conv1", "layer1"] and all(r.result.spec["init_seed"] == 2 for r in rows)
    assert at.selectbox(key="cur_metric").value == "ssim_mean"
    again = open_link("pages/1_curve.py", url(at))
    shown = again.session_state["cur_curve"]["rows"]
    assert [r.cached for r in shown] == [True, True]
    assert [r.result.metrics["ssim"] for r in shown] == [r.result.metrics["ssim"] for r in rows]


def test_curve_page_says_when_trained_weights_are_missing():
    from core import trained_status

    if trained_status("resnet18")["cached"]:
        pytest.skip("resnet18 trained weights are on this machine")
    at = open_link("pages/1_curve.py", {"model": "resnet18", "cks": "untrained,trained", "stops": "conv1",
                                        "size": "32", "iters": "10", "seeds": "1"})
    text = " ".join(w.value for w in at.warning)
    assert "not on this machine" in text and "runs without **trained**" in text
    assert any("1 checkpoint =" in c.value for c in at.caption)  # "1 checkpoint", not "1 checkpoints"


def test_presentation_mode_from_the_link():
    at = open_link(None, {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "size": "32", "seeds": "2",
                          "iters": "20", "device": "cpu", "mode": "present"})
    assert at.session_state["present"] is True and at.toggle(key="present").value
    images = list(at.get("image"))
    first_result = next(i for i, im in enumerate(images) if im.captions and im.captions[0].startswith("original"))
    first_thumb = next(i for i, im in enumerate(images) if not any(im.captions or []))  # the thumbs: no
    # caption in the narrow sidebar (it broke mid-word); the radio under them names them
    assert first_result < first_thumb  # results above the controls
    assert all("m_g/m_r" in c for c in images[first_result].captions[1:])  # the short projector captions
    assert url(at)["mode"] == "present"  # the page's own link keeps the mode


def test_run_disabled_says_why():
    at = open_link(None, {"model": "resnet18", "ckpt": "untrained", "node": "blocks.1.0", "size": "32"})
    assert at.button(key="inv_run").disabled
    assert any("Run is not available yet" in i.value and "no graph node 'blocks.1.0'" in i.value for i in at.info)


def test_a_continued_run_is_in_its_link():
    """Continue puts its steps in the link (cont=), so a fresh session shows the continued result, not the shorter
    run; a further Continue there recomputes what it goes on from; any other change of setting drops cont."""
    base = {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "image": "coffee", "seeds": "2",
            "iters": "20", "size": "32", "device": "cpu", "init_seed": "5"}
    at = open_link(None, base)
    if first_row(at) is None:
        at.button(key="inv_run").click().run()
    assert first_row(at).result.steps_done <= 20 and "cont" not in url(at)
    at.number_input(key="inv_more").set_value(10)
    for expected in ("10", "10,10"):
        at.button(key="inv_continue").click().run()
        ok(at)
        assert not at.error, errors(at)
        assert url(at)["cont"] == expected
    shown = first_row(at).result
    assert shown.spec["continued"] == [10, 10] and "then +10 +10" in " ".join(c.value for c in at.caption)
    again = open_link(None, url(at))
    linked = first_row(again).result
    assert linked.steps_done == shown.steps_done and (linked.images == shown.images).all()
    assert any("In the cache" in s.value for s in again.caption)
    again.number_input(key="inv_more").set_value(10)
    again.button(key="inv_continue").click().run()  # no run in this session's memory: computed again first
    ok(again)
    assert url(again)["cont"] == "10,10,10"
    assert first_row(again).result.steps_done == shown.steps_done + 10
    assert any("computed the 20-step run again first" in c.value for c in again.caption)
    again.slider(key="inv_seeds").set_value(3).run()  # another run now: its link has no continuation
    ok(again)
    assert "cont" not in url(again) or url(again)["cont"] == ""


def test_a_stopped_run_finishes_as_if_never_stopped(monkeypatch):
    """Stop part-way (a rerun during the run, as the Stop button makes), then Finish the run: the page offers it,
    and the finished run is the run's own answer, stored under its key (that it equals the never-stopped run, bit
    for bit, is tests/test_continue.py's)."""
    import streamlit as st

    from ui import live

    query = {"model": "resnet18", "ckpt": "untrained", "layer": "layer2", "image": "coffee", "seeds": "2",
             "iters": "60", "size": "32", "device": "cpu", "init_seed": "8"}
    real, stops = live.LiveView.update, []

    def update(self, snap):
        real(self, snap)
        if snap.step >= 20 and not stops:
            stops.append(snap.step)
            st.rerun()  # what pressing Stop does to the running script

    monkeypatch.setattr(live.LiveView, "update", update)
    at = open_link(None, query)
    if first_row(at) is None or not first_row(at).result.stopped_early:
        at.button(key="inv_run").click().run()
    ok(at)
    stopped = first_row(at).result
    assert stops and stopped.stopped_early and stopped.steps_done == stops[0]
    assert any("Stopped at step" in w.value and "Finish the run" in w.value for w in at.warning)
    assert at.button(key="inv_continue").label == "Finish the run"
    at.button(key="inv_continue").click().run()
    ok(at)
    finished = first_row(at).result
    assert not finished.stopped_early and "cont" not in url(at)
    assert finished.steps_done > stopped.steps_done and finished.metrics["stop_reason"] in ("budget", "converged")
    fresh = open_link(None, query)  # the same spec: now from the cache
    assert any("In the cache" in s.value for s in fresh.caption)
    assert (first_row(fresh).result.images == finished.images).all()


def test_a_stopped_continuation_finishes_with_its_link(monkeypatch):
    """Stop during a Continue: the page keeps the continuation's settings (cont=), so Finish the run completes that
    continuation; the result is the continued run's own answer, and its link shows it."""
    import streamlit as st

    from ui import live

    at = open_link(None, {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "image": "coffee", "seeds": "2",
                          "iters": "20", "size": "32", "device": "cpu", "init_seed": "9"})
    if first_row(at) is None:
        at.button(key="inv_run").click().run()
    base = first_row(at).result
    real, stops = live.LiveView.update, []

    def update(self, snap):
        real(self, snap)
        if snap.step >= base.steps_done + 20 and not stops:
            stops.append(snap.step)
            st.rerun()

    monkeypatch.setattr(live.LiveView, "update", update)
    at.number_input(key="inv_more").set_value(60)
    at.button(key="inv_continue").click().run()
    ok(at)
    stopped = first_row(at).result
    assert stops and stopped.stopped_early and url(at)["cont"] == "60"
    assert any(f"of {base.steps_done + 60}" in w.value for w in at.warning)
    at.button(key="inv_continue").click().run()  # Finish the run
    ok(at)
    done = first_row(at).result
    assert not done.stopped_early and done.steps_done == base.steps_done + 60 and done.spec["continued"] == [60]
    again = open_link(None, url(at))
    assert (first_row(again).result.images == done.images).all()


def test_a_stop_while_a_link_recomputes_what_it_continues(monkeypatch):
    """A link with cont= whose run is not cached computes the run it continues first. Stopped there, the page
    shows that run, stopped, with the link's cont= gone (it is that run's page now); Finish the run ends it."""
    import streamlit as st

    from ui import live

    real, stops = live.LiveView.update, []

    def update(self, snap):
        real(self, snap)
        if snap.step >= 8 and not stops:
            stops.append(snap.step)
            st.rerun()

    monkeypatch.setattr(live.LiveView, "update", update)
    at = open_link(None, {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "image": "rocket", "seeds": "2",
                          "iters": "30", "size": "32", "device": "cpu", "init_seed": "11", "cont": "10"})
    if not stops:
        at.button(key="inv_run").click().run()
        ok(at)
    shown = first_row(at).result
    assert stops and shown.stopped_early and shown.steps_done == stops[0] and "cont" not in url(at)
    assert at.button(key="inv_continue").label == "Finish the run"
    at.button(key="inv_continue").click().run()
    ok(at)
    done = first_row(at).result
    assert not done.stopped_early and done.spec.get("continued") is None and done.steps_done <= 30


def _png(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_run_on_an_upload_gets_a_link_that_reproduces_it_on_this_server():
    tiny = {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "seeds": "2", "iters": "12", "size": "32",
            "preset": "default", "device": "cpu"}
    at = open_link(None, {**tiny, "image": "chelsea"})
    at.radio(key="inv_image").set_value("upload…")
    at.run()
    at.file_uploader(key="inv_image_file").set_value(("mine.png", _png(1), "image/png"))
    at.run()
    ok(at)
    assert any("on this server only" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key="inv_run").click()
    at.run()
    ok(at)
    assert not at.error, errors(at)
    shown = first_row(at)
    link = url(at)
    assert link["image"] == "upload…" and len(link["image_id"]) == 16
    # a fresh session from the link: the same upload, the same run, from this server's cache, without a click
    again = open_link(None, link)
    assert not again.error, errors(again)
    assert any("kept on this server" in i.value and "mine.png" in i.value for i in again.info)
    got = first_row(again)
    assert got.spec.key() == shown.spec.key() and again.session_state["inv_live"].meta["image_name"] == "mine.png"
    assert (got.result.images == shown.result.images).all()
    # a sample afterwards drops the id from the link (it names a sample again)
    again.radio(key="inv_image").set_value("coffee")
    again.run()
    assert "image_id" not in url(again)


def test_a_link_to_an_upload_this_server_lacks_asks_for_the_file():
    at = open_link(None, {"model": "resnet18", "ckpt": "untrained", "layer": "layer1", "size": "32",
                          "image": "upload…", "image_id": "0123456789abcdef"})
    text = errors(at)
    assert "not on this server" in text and "Upload the same file" in text, text
    assert at.button(key="inv_run").disabled
    assert "\n" not in text and "Traceback" not in text
    bad = open_link(None, {"image": "upload…", "image_id": "../../etc"})  # not an id: named, never a path
    assert any("image_id" in w.value for w in bad.warning), [w.value for w in bad.warning]
