"""Shared fixtures: small images, models and presets so the suite stays fast on a 2-core CPU."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # importable through pyproject.toml's pytest `pythonpath`
# runs made by tests (CLI subprocesses and app sessions included) go to a throw-away cache, never the project's
os.environ.setdefault("INVERSION_CACHE_DIR", tempfile.mkdtemp(prefix="inversion-test-cache-"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def chelsea_path() -> Path:
    return ROOT / "assets" / "chelsea.png"


@pytest.fixture(scope="session")
def chelsea64(chelsea_path):
    from core.images import load_image

    return load_image(chelsea_path, 64)


@pytest.fixture(scope="session")
def chelsea32(chelsea_path):
    from core.images import load_image

    return load_image(chelsea_path, 32)


@pytest.fixture(scope="session")
def resnet18_untrained():
    from core.models.checkpoints import load_model

    return load_model("resnet18", "untrained", 64)


@pytest.fixture(scope="session")
def resnet18_32():
    """Untrained ResNet-18 built for 32 px: the engine's small test runs."""
    from core.models.checkpoints import load_model

    return load_model("resnet18", "untrained", 32)


@pytest.fixture(scope="session")
def lite0_models():
    from core.models.checkpoints import load_model

    return {ck: load_model("efficientnet_lite0", ck, 64) for ck in ("untrained", "trained")}
