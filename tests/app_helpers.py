"""Helpers shared by the AppTest suites: build the app with query parameters, check for exceptions."""

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(scope="module", autouse=True)
def _cache_dir(tmp_path_factory):
    # Streamlit's cache_resource lives as long as the process: the first directory set here is used
    # by every AppTest in this process, so it is a per-process temporary directory.
    os.environ.setdefault("INVERSION_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "runcache"))


def app(query=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at


def ok(at: AppTest):
    assert not at.exception, [e.value for e in at.exception]


def errors(at: AppTest) -> str:
    return " | ".join(e.value for e in at.error)


def first_row(at: AppTest, prefix: str = "inv_"):
    """The first row a page shows (`core.jobs.LiveRow`: its spec, result and label), or None before any run."""
    lr = at.session_state[prefix + "live"] if prefix + "live" in at.session_state else None
    return lr.rows[0] if lr is not None and lr.rows else None
