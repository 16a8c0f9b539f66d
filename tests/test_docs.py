"""The documents hold together: their relative links resolve, the README's commands exist, the README stays short.

Covers README.md, CONTRIBUTING.md and docs/*.md. Fast: reads files and builds the CLI's argument parser, nothing more.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_WORDS = 1600

# [text](target) and ![alt](target); the target ends at whitespace or ")" (an optional "title" may follow)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)


def documents() -> list[Path]:
    return [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(path: Path) -> list[str]:
    """The relative link targets of a markdown file, `#anchor` stripped: no http(s):, mailto: or pure #anchors, and
    nothing inside fenced code blocks."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    out = []
    for target in LINK.findall(text):
        if re.match(r"(?i)(https?:|mailto:|#)", target):
            continue
        target = target.split("#", 1)[0]
        if target:
            out.append(target)
    return out


def broken_links(path: Path) -> list[str]:
    """The relative links of `path` that name no existing file or folder (resolved against the file's folder)."""
    return [t for t in relative_links(path) if not (path.parent / t).exists()]


def section(text: str, title: str) -> str:
    """The body of the `## title` section of a markdown text (up to the next heading of level 1 or 2)."""
    m = re.search(rf"^##\s+{re.escape(title)}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", text, re.S | re.M)
    assert m, f"README.md has no '## {title}' section"
    return m.group(1)


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", (ROOT / "Makefile").read_text(), re.M))


# --- the helpers themselves: a broken link must be caught, a good one and the ignored kinds must not

def test_link_helper_catches_a_broken_link(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "there.md").write_text("# There\n")
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    doc = tmp_path / "doc.md"
    doc.write_text("See [there](sub/there.md#there), ![a picture](pic.png) and [gone](sub/missing.md).\n"
                   "Ignored: [web](https://example.org/x.md), [mail](mailto:a@b.c), [anchor](#top).\n"
                   "```bash\n[not a link](inside/a/fence.md)\n```\n")
    assert relative_links(doc) == ["sub/there.md", "pic.png", "sub/missing.md"]
    assert broken_links(doc) == ["sub/missing.md"]


def test_section_helper(tmp_path):
    text = "# T\n\n## Quick start\n\n```bash\nmake run\n```\n\n### More\nmake test\n\n## Next\nmake nothing\n"
    body = section(text, "Quick start")
    assert "make run" in body and "make test" in body and "make nothing" not in body


# --- the documents

@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    assert doc.exists()
    assert not broken_links(doc), f"{doc.relative_to(ROOT)} links to files that do not exist: {broken_links(doc)}"


def test_readme_quick_start_make_targets_exist():
    body = section(README.read_text(encoding="utf-8"), "Quick start")
    used = set(re.findall(r"\bmake\s+([A-Za-z0-9_.-]+)", body))
    assert {"run", "test"} <= used, "the Quick start shows `make run` and `make test`"
    missing = used - make_targets()
    assert not missing, f"the README's Quick start uses make targets the Makefile does not define: {sorted(missing)}"


def test_readme_core_subcommands_exist():
    import argparse

    from core.cli.main import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    used = set(re.findall(r"python -m core\s+([a-z][a-z_-]*)", README.read_text(encoding="utf-8")))
    assert used, "the README shows at least one `python -m core` command"
    unknown = used - set(subs)
    assert not unknown, f"the README shows `python -m core` subcommands that do not exist: {sorted(unknown)}"


def test_readme_is_short():
    words = len(README.read_text(encoding="utf-8").split())
    assert words <= MAX_README_WORDS, (f"README.md has {words} words (at most {MAX_README_WORDS}): move the detail "
                                       "to a page in docs/ and link it")
