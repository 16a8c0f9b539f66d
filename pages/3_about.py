"""About: the method, the metrics and the paper, in short (the text is docs/about.md, also readable on GitHub)."""

from pathlib import Path

import streamlit as st

from ui.nav import heading, page_setup

page_setup("About")

heading("About this explorer")
st.markdown((Path(__file__).resolve().parents[1] / "docs" / "about.md").read_text(encoding="utf-8"))

