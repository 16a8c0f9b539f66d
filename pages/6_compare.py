"""Compare models: the clarity curves of several models on one relative-depth axis (0 = input, 1 = logits)."""

import streamlit as st

from core import ARCHITECTURES
from core.report import compare_figure
from core.studies import iter_compare, plan_compare
from ui import live, models, pickers, state, views
from ui.errors import errors
from ui.nav import heading, page_setup
from ui.limits import refusal
from ui.notices import known_only, link_values, plan_estimate
from ui.state import Field, choice, dump_bool, flag, integer, items, join

present = page_setup("Compare models")
GPU = pickers.ON_GPU
MODELS = ["resnet18", "vgg16", "efficientnet_lite0"]
FIELDS = [Field("models", MODELS, items(), join),  # a link's unknown models: named and left out below
          Field("cks", ["untrained"], items(["untrained", "trained"]), join), Field("all", GPU, flag, dump_bool),
          Field("per", 6, integer(2, 12)), Field("image", "chelsea"), pickers.IMAGE_ID,
          *pickers.run_fields({"seeds": 4 if GPU else 2, "iters": 200 if GPU else 80, "size": 128 if GPU else 32}),
          Field("batch", "auto", choice(pickers.BATCH_STOPS))]
page = state.PageState("cmp_", FIELDS)
link = link_values(page, "models")
link_warnings, _ = page.bind()
if not present:
    heading("Compare models")
    st.caption("Is the clarity curve a property of ResNets or of depth itself? Each model × checkpoint is one line "
               "against relative depth: (stop index + 1) / its number of depth stops, so 0 is the input and 1 the "
               "logits of every model. The band is the spread over seeds; hollow points did not converge.")
notices = st.container()
for w in link_warnings:
    notices.warning(w)
known_only(page, "models", link.get("models"), ARCHITECTURES, MODELS, "a model here (`python -m core models` lists them)",
           notices)
LITES = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]  # trained weights bundled: offline


def _three_trained():
    page["models"], page["cks"] = list(LITES), ["trained"]


with st.sidebar:
    st.header("Models")
    st.button("Three trained models, offline", key=page.key("lites"), on_click=_three_trained,
              help="EfficientNet-Lite0, -Lite1 and -Lite2 with their bundled ImageNet weights: no download needed")
    chosen = st.multiselect("Models", list(ARCHITECTURES), key=page.key("models"), format_func=models.model_label)
    cks = st.multiselect("Checkpoints", ["untrained", "trained"], key=page.key("cks"))
    all_stops = st.toggle("All depth stops", key=page.key("all"), help="off: a few stops spread evenly over each model")
    per = st.slider("Stops per model", 2, 12, key=page.key("per"), disabled=all_stops,
                    help="the first stop, the logits and evenly spaced stops between")
    with st.expander("Advanced"):
        preset_name, device, init_seed, lr = pickers.recipe(page)
        batch = pickers.batch_stops_picker(page)
sizes = [s for s in models.SIZES if all(s in models.sizes_for(m) for m in chosen)] or models.SIZES
if page.get("size") not in sizes:
    page["size"] = min(sizes, key=lambda s: abs(s - (page.get("size") or 32)))
    st.warning(f"Using {page['size']} px: the size every chosen model takes nearest the asked one.")
c_img, c_run = st.columns([3, 2])
with c_run:
    seeds_n, iters, size = pickers.run_size(page, sizes)
image = image_name = None
with c_img, errors("image: "):
    image, image_name = pickers.image_picker(page.key("image"), size, notices=notices)
preset, seeds, lines, skipped = pickers.preset_with_lr(preset_name, iters, lr), list(range(seeds_n)), [], []
with errors("models: "):
    if chosen and cks:  # every model × checkpoint loaded and checked before any run; missing weights: skipped
        lines, skipped = plan_compare(chosen, cks, size, "stops" if all_stops else per, init_seed,
                                      loader=lambda a, ck, s, i: models.get_model(a, ck, s, i)[0])
for note in skipped:
    st.info(note[0].upper() + note[1:])
total = sum(len(line.plan) for line in lines)
st.caption(f"{pickers.plural(len(lines), 'model × checkpoint line')}, {pickers.plural(total, 'inversion')} of "
           f"{pickers.plural(seeds_n, 'seed')}, up to {iters} steps at {size} px. The slowest stops are the large "
           "dense layers (VGG-16's classifier) and ViT-B/16's blocks; finished stops come from the cache, and Stop "
           "keeps every finished one.")
problems = [t for good, t in ((lines, "choose at least one model and checkpoint that load"),
                              (image is not None, "choose or upload an image")) if not good]
estimate_box = st.container()
b1, b2, _ = st.columns([2, 1, 4])
run_clicked = b1.button("Run comparison", type="primary", key=page.key("run"), disabled=bool(problems))
stop_box = b2.empty()  # Stop is drawn once it is known whether a run starts
compare_s = None
if problems:
    st.info("Run comparison is not available yet: " + "; ".join(problems) + ".")
else:  # measured now at each line's first and last stop (cached for a minute), never a constant
    compare_s = plan_estimate(estimate_box, [(x.model, x.loaded, x.checkpoint, x.nodes) for x in lines], image, seeds,
                              preset, device, batch)
base = {"models": list(dict.fromkeys(x.model for x in lines)), "checkpoints": cks, "stops": {x.name: x.nodes for x in
        lines}, "size": size, "seeds": seeds, "preset": preset.to_dict(), "init_seed": init_seed, "image": image_name}
first, page["visited"] = not page.get("visited"), True
auto = first and not problems and all(live.curve_cached([x.loaded], [x.checkpoint], x.nodes, image, seeds, preset,
                                                        device) for x in lines)


running = (run_clicked or auto) and not problems
refused = refusal(compare_s if not problems else None, device) if run_clicked and not auto else None
if refused:  # the operator's limits (ui/limits.py): nothing runs, the shown comparison stays
    st.error(refused)
    running = False
stop_box.button("Stop", key=page.key("stop"), disabled=not running or auto,  # auto: all from the cache
                help="Stops after keeping every finished stop" if running else "nothing is running")
if running:  # rows kept stop by stop: Stop (a rerun) keeps every finished one
    view = page["view"] = {"base": base, "rows": [], "original": image, "skipped": skipped}
    with errors("compare: "):
        live.stream(lambda cb: iter_compare(lines, image, seeds=seeds, preset=preset, device=device, callbacks=cb,
                                            cache=live.disk_cache(), batch_stops=batch),
                    seeds, total, view, st.container(), lambda rows: compare_figure(rows, "clarity", "clarity so far"))
shown = page.get("view")
if shown and shown["rows"]:
    views.comparison(shown, base, page)
elif not run_clicked and not problems:
    st.info("Choose the models and press **Run comparison**; the chart grows stop by stop.")
page.sync()
