"""Refresh the shipped first example: `python -m ui.make_example`.

Runs the landing page exactly as a first visitor would (Streamlit's AppTest, default settings,
a fresh cache), then copies the finished runs' cache entries (trained, and the untrained row it is
compared with) into assets/examples/, where the
app finds it before computing anything. Rerun after changing the defaults, a preset, or the
engine; tests/test_app_pages.py checks that the shipped entry matches the current defaults.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="example-cache-"))
    os.environ["INVERSION_CACHE_DIR"] = str(tmp)
    from streamlit.testing.v1 import AppTest

    dest_root = ROOT / "assets" / "examples"
    old = Path(tempfile.mkdtemp(prefix="example-old-")) / "examples"
    if dest_root.exists():  # computed afresh, not read from the example being replaced
        shutil.move(str(dest_root), old)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    if at.exception or at.error:
        print("the landing page failed:", [e.value for e in at.exception] + [e.value for e in at.error])
        if old.exists():
            shutil.move(str(old), dest_root)
        return 1
    entries = list(tmp.rglob("*.pt"))
    if len(entries) != 2:
        print(f"expected two new cache entries (the side-by-side pair), found {len(entries)}")
        if old.exists():
            shutil.move(str(old), dest_root)
        return 1
    shutil.rmtree(old.parent, ignore_errors=True)
    for entry in entries:
        dest = dest_root / entry.relative_to(tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry, dest)
        print(f"wrote {dest.relative_to(ROOT)} ({dest.stat().st_size / 1024:.0f} kB)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
