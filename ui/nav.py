"""Page set-up shared by every page: config, sidebar links, presentation mode.

Navigation model: Streamlit's `pages/` folder, with the built-in page list hidden and these
labelled links shown instead. Why not `st.navigation` over `st.Page`s: on Streamlit 1.67 a
`pages/` folder next to an entry file that calls `st.navigation` is run as v1 pages on direct
links, which broke `/about` (checked in Chromium), and the project's fixed shape keeps `pages/`.
Each page therefore has its own URL (`/`, `/curve`, `/nonunique`, `/lab`, `/manifold`, `/compare`,
`/sweeps`, `/findings`, `/about`) and loads by a direct link; shared pickers live in `ui/pickers.py` rather than in a frame.

Presentation mode (`?mode=present`, or the sidebar's toggle) collapses the sidebar on load,
trims the page margins and shows results first, at projector size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

# The tab icon is a file the app serves: a `:material/…:` page icon makes the browser fetch an SVG from
# fonts.gstatic.com, which an offline laptop or a conference network cannot reach (the sidebar's Material icons
# come from the font bundled with Streamlit, so they ask no other host).
ICON = Path(__file__).resolve().parent.parent / "assets" / "app" / "icon.png"

PAGES = [
    ("app.py", "Invert", ":material/image:"),
    ("pages/1_curve.py", "Clarity curve", ":material/show_chart:"),
    ("pages/2_nonunique.py", "Non-uniqueness", ":material/shuffle:"),
    ("pages/4_lab.py", "Invertibility lab", ":material/science:"),
    ("pages/5_manifold.py", "Manifold", ":material/blur_on:"),
    ("pages/6_compare.py", "Compare models", ":material/compare_arrows:"),
    ("pages/7_sweeps.py", "Sweeps", ":material/stacked_line_chart:"),
    ("pages/8_findings.py", "Findings", ":material/fact_check:"),
    ("pages/3_about.py", "About", ":material/menu_book:"),
]

# at 800-1000 px the default 300 px sidebar took 37% of the width: narrower there (it stays resizable above)
# The depth slider's value ("stage 3 block 1 (InvertedResidual) · blocks.2.0") overflows the sidebar and is cut at
# its edge; the caption under the slider names the chosen stop in full, so the floating value is hidden.
# Labels and captions wrap between words, never inside one.
_NARROW_CSS = """
<style>
  [class*="st-key-"][class*="_layer"] [data-testid="stSliderThumbValue"] {display: none !important;}
  [data-testid="stImageCaption"], [data-testid="stCaptionContainer"], [data-testid="stWidgetLabel"] p
    {word-break: normal !important; overflow-wrap: normal !important; hyphens: none !important;}
  @media (max-width: 1000px) {
    section[data-testid="stSidebar"] {width: 230px !important; min-width: 230px !important;}
  }
</style>
"""

# the default 6rem above the content pushed the results below a 1280x720 screen; the header bar stays (transparent)
# multiselect chips show the whole "stage 2 block 1 · blocks.1.0" instead of cutting it
_NORMAL_CSS = """
<style>
  .block-container, [data-testid="stMainBlockContainer"] {padding-top: 2.2rem !important;}
  [data-testid="stHeader"] {background: transparent;}
  span[data-baseweb="tag"] {max-width: none !important;}
  span[data-baseweb="tag"] span {max-width: none !important; overflow: visible !important;}
</style>
"""

_PRESENT_CSS = """
<style>
  .block-container {padding-top: 1.2rem; padding-left: 1rem; padding-right: 1rem; padding-bottom: 1rem;}
  [data-testid="stHeader"] {background: transparent;}
</style>
"""


def heading(text: str, help: str | None = None) -> None:
    """A page's title, in the one heading style of every page (a small h4: the results fit the first screen)."""
    st.markdown(f"#### {text}", help=help)


def url_of(path: str) -> str:
    """A page's URL path: "/" for the entry file, "/curve" for pages/1_curve.py."""
    if not path.startswith("pages/"):
        return "/"
    name = path.split("/", 1)[1].removesuffix(".py")
    return "/" + (name.split("_", 1)[1] if name.split("_", 1)[0].isdigit() else name)


def page_setup(title: str) -> bool:
    """First call of every page: title, wide layout, sidebar links, presentation mode.

    Returns:
        Whether the page is in presentation mode.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if "present" not in st.session_state:
        st.session_state["present"] = st.query_params.get("mode") == "present"
    present = bool(st.session_state["present"])
    st.set_page_config(page_title=f"{title} · Feature inversion explorer", page_icon=str(ICON),
                       layout="wide", initial_sidebar_state="collapsed" if present else "auto")
    with st.sidebar:
        for path, label, icon in PAGES:
            try:
                st.page_link(path, label=label, icon=icon)
            except StreamlitAPIException:  # the page registry not ready (seen with threaded test sessions): a plain link
                st.markdown(f"[{label}]({url_of(path)})")
        st.toggle("Presentation mode", key="present",
                  help="results first, reconstructions at 256 px, sidebar collapsed on load (link: ?mode=present)")
        st.caption("Feature inversion explorer · Badger 2022, *Depth and Representation in Vision Models*")
    # the toggle and the link say the same on every page (pages with settings write it again in `state.publish`)
    if present and st.query_params.get("mode") != "present":
        st.query_params["mode"] = "present"
    elif not present and "mode" in st.query_params:
        del st.query_params["mode"]
    st.markdown(_NARROW_CSS + (_PRESENT_CSS if present else _NORMAL_CSS), unsafe_allow_html=True)
    problem = _operator_models()
    if problem:
        st.error(f"The operator's models could not be added: {problem}")
    return present


@st.cache_resource(show_spinner=False)
def _operator_models() -> str | None:
    """Import the operator's model files once per server (`$INVERSION_MODELS`, `make run MODELS=path.py`): their
    `register_model` calls add entries to every page's picker. Returns the reason it failed, or None."""
    from core import UserError
    from core.models import load_operator_models

    try:
        added = load_operator_models()
    except UserError as exc:
        return str(exc)
    if added:
        logging.getLogger("inversion.app").info("operator models: %s", ", ".join(added))
    return None
