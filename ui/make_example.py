"""Refresh the shipped first example: `python -m ui.make_example`.

Runs the landing page exactly as a first visitor would (Streamlit's AppTest, default settings,
a fresh cache), then copies the finished run's cache entry into assets/examples/, where the
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

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    if at.exception or at.error:
        print("the landing page failed:", [e.value for e in at.exception] + [e.value for e in at.error])
        return 1
    entries = list(tmp.rglob("*.pt"))
    if len(entries) != 1:
        print(f"expected one new cache entry, found {len(entries)}")
        return 1
    dest_root = ROOT / "assets" / "examples"
    shutil.rmtree(dest_root, ignore_errors=True)
    dest = dest_root / entries[0].relative_to(tmp)
    dest.parent.mkdir(parents=True)
    shutil.copyfile(entries[0], dest)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {dest.relative_to(ROOT)} ({dest.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
