"""Invertibility lab (findings 3 and 6): MLP width, depth and activation; a CNN's Jacobian against depth.

The tabs are in ui/lab_tabs.py, the logic in core/studies/lab.py."""

import streamlit as st

from core import ARCHITECTURES
from core.studies import ACTIVATIONS
from ui import lab_tabs, pickers, state
from ui.errors import errors
from ui.lab_tabs import DEPTHS, MSIZES, WIDTHS
from ui.nav import heading, page_setup
from ui.notices import link_values
from ui.state import Field, choice, dump_bool, flag, integer, items, join

page_setup("Invertibility lab")
FIELDS = [Field("widths", ["0.5", "1", "2", "4"], items(WIDTHS), join),
          Field("depths", ["1", "3"], items(DEPTHS), join),
          Field("acts", ["linear", "relu"], items(list(ACTIVATIONS)), join), Field("seeds", 2, integer(1, 4)),
          Field("iters", 2000, integer(50, 5000)), Field("msize", 16, lambda raw: MSIZES[MSIZES.index(int(raw))]),
          Field("init_seed", 0, integer(0, 10_000)), Field("blur", False, flag, dump_bool),
          Field("early", True, flag, dump_bool), Field("image", "chelsea"), pickers.IMAGE_ID,
          Field("cmodel", "resnet18", choice(ARCHITECTURES)),
          Field("cckpt", "untrained", choice(["untrained", "trained"])),
          Field("cstops", None, items(), join), Field("csize", 16, integer(16, 64)),
          Field("cclarity", True, flag, dump_bool), Field("citers", 100, integer(10, 2000))]
page = state.PageState("lab_", FIELDS)
link = link_values(page, "cstops", "csize")  # before bind: checked against the CNN tab's model
link_warnings, _ = page.bind()
heading("Invertibility lab")
st.caption("Finding 6: a fully connected layer narrower than its input cannot represent it uniquely, ReLU needs about "
           "twice the input's width, and depth worsens conditioning. Finding 3: poor deep reconstructions come from "
           "lost rank and poor conditioning, not from a failing optimiser. Rank and condition number are exact "
           "(a float64 Jacobian at the image); clarity comes from the same gradient-descent runs as every page's.")
notices = st.container()
for w in link_warnings:
    notices.warning(w)
name = None
with errors("image: "):
    name = pickers.image_picker(page.key("image"), 8, notices=notices)[1]
mlp_tab, cnn_tab = st.tabs(["MLP: width, depth, activation", "CNN: Jacobian against depth"])
with mlp_tab:
    lab_tabs.mlp_tab(page, name)
with cnn_tab:
    lab_tabs.cnn_tab(page, name, link, notices)
page.sync()
