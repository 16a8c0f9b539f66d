"""Streamlit entry point (placeholder until the explorer lands): `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="Feature inversion explorer", layout="wide")
st.title("Feature inversion explorer")
st.write("The interactive explorer is being built; use `python -m core --help` meanwhile.")
