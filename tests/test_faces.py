"""The app reaches the library through its faces: each core package's `__init__` says what it offers (`__all__`),
and the pages import only those faces or core's single-module leaves (the ui package is held to the same rule by
the `ui-through-faces` import contract in pyproject.toml; pages/ and app.py are scripts, so they are read here)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p.parent.name for p in (ROOT / "core").glob("*/__init__.py"))
LEAVES = sorted(p.stem for p in (ROOT / "core").glob("*.py") if p.stem not in ("__init__", "__main__"))


def core_imports(path: Path) -> list[str]:
    """The core modules a file imports (absolute imports only)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return [m for m in found if m == "core" or m.startswith("core.")]


def reaches_inside(module: str) -> bool:
    """Whether `module` is a package's inner module (core.jobs.pipeline) rather than a face or a leaf."""
    parts = module.split(".")
    return len(parts) > 2 or (len(parts) == 2 and parts[1] not in PACKAGES + LEAVES)


@pytest.mark.parametrize("path", [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))], ids=lambda p: p.name)
def test_pages_import_core_only_through_faces_and_leaves(path):
    inside = [m for m in core_imports(path) if reaches_inside(m)]
    assert not inside, f"{path.name} imports {inside}: import the package's face (core.<package>) instead"


def test_the_rule_catches_an_inner_module(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("from core.jobs.pipeline import run\nfrom core.jobs import RunSpec\nfrom core.images import x\n")
    assert [m for m in core_imports(page) if reaches_inside(m)] == ["core.jobs.pipeline"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_face_says_what_it_offers_and_offers_it(package):
    face = importlib.import_module(f"core.{package}")
    assert isinstance(getattr(face, "__all__", None), list) and face.__all__, f"core.{package} has no __all__"
    missing = [name for name in face.__all__ if not hasattr(face, name)]
    assert not missing, f"core.{package}.__all__ names {missing}, which it does not define"
    assert len(set(face.__all__)) == len(face.__all__)
