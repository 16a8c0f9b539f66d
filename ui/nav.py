"""Page set-up shared by every page: config, import path, and the sidebar's links.

The app uses Streamlit's `pages/` folder (each page reachable by its own URL: /curve, /nonunique,
/about) with the built-in page list hidden and these labelled links shown instead.
"""

from __future__ import annotations

import logging

import streamlit as st

PAGES = [
    ("app.py", "Invert", ":material/image:"),
    ("pages/1_curve.py", "Clarity curve", ":material/show_chart:"),
    ("pages/2_nonunique.py", "Non-uniqueness", ":material/shuffle:"),
    ("pages/3_about.py", "About", ":material/menu_book:"),
]


def page_setup(title: str) -> None:
    """First call of every page: title, wide layout, sidebar links."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    st.set_page_config(page_title=f"{title} · Feature inversion explorer", page_icon=":material/image_search:",
                       layout="wide")
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.caption("Feature inversion explorer · Badger 2022, *Depth and Representation in Vision Models*")
