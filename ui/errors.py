"""Errors on a page: a UserError is shown as its message; anything else as one line (traceback in the log).

The page keeps working and nothing already shown is lost.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager

import streamlit as st

from core import UserError

log = logging.getLogger("inversion.app")


def message(exc: Exception, what: str = "") -> str:
    """The one line a page shows for `exc`: a UserError's own message, else its type and start (the traceback
    goes to the server log)."""
    if isinstance(exc, UserError):
        text = str(exc)
        word = what.rstrip(": ").lower()
        if word and text.lower().startswith(word):  # "checkpoint 'x.pth' …", not "checkpoint: checkpoint 'x.pth' …"
            return text[0].upper() + text[1:]
        return f"{what}{text}"
    log.error("unexpected error%s\n%s", f" in {what}" if what else "", traceback.format_exc())
    return f"{what}unexpected error: {type(exc).__name__}: {str(exc)[:300]} (details in the server log)"


@contextmanager
def errors(what: str = "", box=None):
    """Show a UserError as st.error and carry on; other errors get a short message, not a traceback."""
    box = box or st
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must stay usable; details go to the log
        box.error(message(exc, what))
