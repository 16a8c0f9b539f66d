"""Clarity curve page: one image inverted at every chosen depth stop, for each checkpoint."""

import streamlit as st

from core import get_architecture
from core.jobs import image_hash
from ui import live, models, pickers, state, views
from ui.errors import errors
from ui.nav import heading, page_setup
from ui.limits import refusal
from ui.notices import curve_estimate, ignored_stops, link_values
from ui.state import Field, choice, dump_bool, flag, items, join

present = page_setup("Clarity curve")
GPU = pickers.ON_GPU
FIELDS = [Field("model", "efficientnet_lite0", pickers.MODEL),
          Field("cks", ["untrained", "trained"], items(["untrained", "trained"]), join),
          Field("all", GPU, flag, dump_bool), Field("stops", None, items(), join),
          Field("image", "chelsea"), pickers.IMAGE_ID,
          *pickers.run_fields({"seeds": 4 if GPU else 2, "iters": 200 if GPU else 80, "size": 128 if GPU else 32}),
          Field("metric", "clarity", choice(views.METRICS)), Field("batch", "auto", choice(pickers.BATCH_STOPS))]
page = state.PageState("cur_", FIELDS)
link = link_values(page, "stops")  # before bind: the link's stops, checked against the model below
link_warnings, from_link = page.bind()
if not present:  # one line of title: the chart must be on the first screen at 1280x720
    heading("Clarity curve · how much of the image each depth keeps", help="Clarity against depth, one line "
                "per checkpoint; the band is the spread over seeds. Before training, deeper is blurrier; training "
                "turns late layers abstract and, the paper says, sharpens early ones (check it here). Settings are "
                "in the sidebar.")
results, notices = st.container(), st.container()
for w in link_warnings:
    notices.warning(w)
with st.sidebar:
    st.header("Curve settings")
    arch = pickers.model_picker(page, notices)
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=page.key("cks"))
    if note := ignored_stops(link.get("stops"), arch, [n for n, _ in models.stops_of(arch)]):
        notices.warning(note)  # stops_picker keeps only the model's stops
    plan = pickers.stops_picker(page, arch, list(get_architecture(arch).cpu_stops) or None)
    with st.expander("Advanced"):
        preset_name, device, init_seed, lr = pickers.recipe(page)
        batch = pickers.batch_stops_picker(page)
    st.caption(f"Device: **{pickers.device_text(device)}**")
    sizes = pickers.fix_size(page, arch, notices)
    seeds_n, iters, size = pickers.run_size(page, sizes)  # in the sidebar: the chart is on the first screen
    st.header("Image")
    image = image_name = None
    with errors("image: "):
        image, image_name = pickers.image_picker(page.key("image"), size, notices=notices, thumb=44)
usable, loaded = models.checkpoints(arch, cks, size, init_seed, page.prefix, notices)
preset, seeds = pickers.preset_with_lr(preset_name, iters, lr), list(range(seeds_n))
total = len(plan) * len(usable)
st.caption(f"{pickers.plural(len(plan), 'depth stop')} × {pickers.plural(len(usable), 'checkpoint')} = "
           f"{pickers.plural(total, 'inversion')} of {pickers.plural(seeds_n, 'seed')}, up to {iters} steps at {size} px.")
estimate_box = st.container()
problems = [t for ok, t in ((usable, "choose at least one checkpoint that loads"), (plan, "choose at least one depth stop"),
                            (image is not None, "choose or upload an image")) if not ok]
b1, b2, _ = st.columns([1, 1, 5])
run_clicked = b1.button("Run curve", type="primary", key=page.key("run"), disabled=bool(problems))
stop_box = b2.empty()  # Stop is drawn once it is known whether a run starts
curve_s = None
if problems:
    st.info("Run curve is not available yet: " + "; ".join(problems) + ".")
else:  # measured now (a few steps at the first and last stop, cached for a minute), never a constant
    curve_s = curve_estimate(estimate_box, arch, loaded, usable, plan, image, seeds, preset, device, batch)
base = {"model": arch, "cks": usable, "stops": plan, "size": size, "seeds": seeds, "preset": preset.to_dict(),
        "init_seed": init_seed, "image": image_name,
        "image_sha256": image_hash(image) if image is not None else None}  # two uploads may share a name
first = not page.get("visited")
page["visited"] = True
auto = first and not problems and live.curve_cached(loaded, usable, plan, image, seeds, preset, device)
running = (run_clicked or auto) and not problems
refused = refusal(curve_s if not problems else None, device) if run_clicked and not auto else None
if refused:  # the operator's limits (ui/limits.py): nothing runs, the shown curve stays
    st.error(refused)
    running = False
stop_box.button("Stop", key=page.key("stop"), disabled=not running or auto,  # auto: all from the cache
                help="Stops after keeping every finished depth stop" if running else "nothing is running")
if running:
    view = page["curve"] = {"base": base, "rows": [], "original": image, "image": image_name}
    with errors("curve: "):
        live.run_curve(arch, image, loaded, usable, plan, seeds, preset, device, view, st.container(), batch)
shown = page.get("curve")
if shown and shown["rows"]:
    with results if present else st.container():
        if shown["base"] != base:
            st.info("Showing the last curve; the settings have changed since. Press Run curve for the current ones.")
        views.curve(shown, page)
elif not run_clicked and not problems:
    st.info("Choose the settings and press **Run curve**; results appear stop by stop, and Stop keeps every "
            "finished one.")
page.sync()
