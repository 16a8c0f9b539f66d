"""Page settings that live in the URL and survive page switches.

Every setting of every page is a `Field`: a widget key, a default, and how it reads from and
writes to a query parameter. On a page's first render in a session the URL's values win (a
shared link reproduces its settings); after that the widgets' own state does. Streamlit drops a
widget's state when its page is not shown, so `remember` keeps a copy that `bind` restores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import streamlit as st

from core.errors import UserError
from core.jobs import SETTINGS


@dataclass(frozen=True)
class Field:
    """One setting: its query-parameter name, its default, and its parser (raises ValueError on bad input)."""

    name: str
    default: Any
    parse: Callable[[str], Any] = str
    dump: Callable[[Any], str] = str


def setting(name: str, default: Any = None, lo: float | None = None, hi: float | None = None) -> Field:
    """The URL field of the declared run setting `name` (`core.jobs.SETTINGS`): the CLI's type and limits.

    Args:
        name: the setting (also the query parameter).
        default: this page's default (None: the setting's).
        lo, hi: tighter limits for this page (e.g. at least 2 seeds to compare them).
    """
    declared = SETTINGS[name]

    def parse(raw: str):
        value = declared.parse(raw)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(raw)
        return value
    return Field(name, declared.default if default is None else default, parse, declared.dump)


def limits(name: str, lo: float | None = None) -> tuple:
    """(min, max) of the declared setting `name`, for its widget, so a widget holds what a link may say."""
    declared = SETTINGS[name]
    return (declared.lo if lo is None else lo), declared.hi


def choice(options) -> Callable[[str], str]:
    options = list(options)

    def parse(raw: str) -> str:
        if raw not in options:
            raise ValueError(raw)
        return raw
    return parse


def integer(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        v = int(raw)
        if not lo <= v <= hi:
            raise ValueError(raw)
        return v
    return parse


def flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def items(options=None) -> Callable[[str], list[str]]:
    """A comma-separated list, each item (optionally) one of `options`."""
    def parse(raw: str) -> list[str]:
        out = [x for x in raw.split(",") if x]
        if options is not None and any(x not in options for x in out):
            raise ValueError(raw)
        return out
    return parse


def join(values) -> str:
    return ",".join(map(str, values))


def dump_bool(v) -> str:
    return "1" if v else "0"


def bind(prefix: str, fields: list[Field]) -> tuple[list[str], bool]:
    """Put each field's value into `st.session_state[prefix + name]` before its widget is drawn.

    Returns:
        (warnings about link values that were ignored, whether this render took values from the URL).
    """
    warnings, from_url = [], False
    for f in fields:
        wk = prefix + f.name
        if wk in st.session_state:
            continue
        if f"_keep_{wk}" in st.session_state:
            st.session_state[wk] = st.session_state[f"_keep_{wk}"]
            continue
        value = f.default
        if f.name in st.query_params:
            raw = st.query_params[f.name]
            try:
                value = f.parse(raw)
                from_url = True
            except (ValueError, KeyError, UserError):
                warnings.append(f"ignored the link's {f.name}={raw!r}: not a valid value here")
        if value is not None:
            st.session_state[wk] = value
    return warnings, from_url


def remember(prefix: str, fields: list[Field]) -> None:
    """Keep the widgets' values for the next visit to this page (Streamlit forgets unshown widgets)."""
    for f in fields:
        wk = prefix + f.name
        if wk in st.session_state:
            st.session_state[f"_keep_{wk}"] = st.session_state[wk]


def publish(prefix: str, fields: list[Field]) -> None:
    """Write every field's current value into the URL (plus the presentation mode), so the link reproduces the page.
    An empty value at an empty default (no graph node, no continuation) is left out: the link means the same."""
    params = {f.name: f.dump(st.session_state[prefix + f.name]) for f in fields if prefix + f.name in st.session_state}
    params = {f.name: params[f.name] for f in fields
              if f.name in params and (params[f.name] != "" or f.default not in ("", [], None))}
    if st.session_state.get("present"):
        params["mode"] = "present"
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def sync(prefix: str, fields: list[Field]) -> None:
    """`remember` and `publish` together: call after the page's widgets are drawn."""
    remember(prefix, fields)
    publish(prefix, fields)


class PageState:
    """One page's state: its widget keys (`prefix` + a field's name) and its URL fields, in one object.

    Pages and pickers say `page.key("seeds")` and `page["seeds"]` instead of spelling `prefix + "seeds"`, so a
    page's keys cannot drift apart and a helper takes one argument for all of them.

    Args:
        prefix: the page's widget-key prefix ("inv_"); keys stay what links and tests know.
        fields: the page's URL fields (`Field`s); more state may live under other names.

    Example:
        >>> page = PageState("cur_", FIELDS)
        >>> warnings, from_link = page.bind()
        >>> st.slider("Seeds", 1, 64, key=page.key("seeds")); ...; page.sync()
    """

    def __init__(self, prefix: str, fields: list[Field] = ()):
        self.prefix, self.fields = prefix, list(fields)

    def key(self, name: str) -> str:
        """The session-state key (and widget key) of `name` on this page."""
        return self.prefix + name

    def __getitem__(self, name: str) -> Any:
        return st.session_state[self.key(name)]

    def __setitem__(self, name: str, value: Any) -> None:
        st.session_state[self.key(name)] = value

    def __contains__(self, name: str) -> bool:
        return self.key(name) in st.session_state

    def get(self, name: str, default: Any = None) -> Any:
        return st.session_state.get(self.key(name), default)

    def pop(self, name: str, default: Any = None) -> Any:
        return st.session_state.pop(self.key(name), default)

    def bind(self) -> tuple[list[str], bool]:
        """`bind` this page's fields: call before its widgets are drawn."""
        return bind(self.prefix, self.fields)

    def sync(self) -> None:
        """`sync` this page's fields: call after its widgets are drawn."""
        sync(self.prefix, self.fields)
