"""Feature inversion explorer (Badger 2022): `streamlit run app.py`.

Thin pages in app_pages/ (not pages/: Streamlit would also serve a pages/ folder as legacy pages, bypassing app.py on direct links), shared widgets in ui/, all computation in core/.
"""

import logging
import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

st.set_page_config(page_title="Feature inversion explorer", page_icon=":material/image_search:", layout="wide")

pages = [
    st.Page("app_pages/invert.py", title="Invert", icon=":material/image:", default=True),
    st.Page("app_pages/curve.py", title="Clarity curve", icon=":material/show_chart:"),
    st.Page("app_pages/nonunique.py", title="Non-uniqueness", icon=":material/shuffle:"),
    st.Page("app_pages/about.py", title="About", icon=":material/menu_book:"),
]
nav = st.navigation(pages)
st.sidebar.caption("Feature inversion explorer · Badger 2022, *Depth and Representation in Vision Models*")
nav.run()
