"""Where the project's own folders are, wherever a module sits in the package tree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project folder (holds app.py, core/, assets/)
ASSETS = ROOT / "assets"
EXAMPLES = ASSETS / "examples"  # the shipped first example: a read-only run cache
CACHE = ROOT / ".cache" / "runs"  # the run cache unless $INVERSION_CACHE_DIR says otherwise
