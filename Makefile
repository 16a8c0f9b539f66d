# make run  : set up .venv if needed, then start the app on http://127.0.0.1:8501
# make test : set up .venv (with test tools and the optional Ray, which CI tests) if needed, check the import
#             contracts ([tool.importlinter] in pyproject.toml), then run the whole test suite
# make test-fast : the same contracts, then only the tests marked `fast` (pure and small: the working loop)
# make gpu-check     : the GPU check (benchmarks/gpu.py) with .venv's python if there is one, else $(PYTHON);
#                      installs nothing (a GPU machine may have no network): see benchmarks/GPU_CHECK.md
# make gpu-check-dry : the same rehearsed on the CPU at tiny sizes (writes only to benchmarks/_scratch/)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
MODELS ?= $(INVERSION_MODELS)# the operator's model files (register_model calls), e.g. make run MODELS=lab_models.py

.PHONY: run test test-fast bench gpu-check gpu-check-dry setup clean-venv

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt requirements-sweep.txt
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-sweep.txt
	@touch $@

setup: $(VENV)/.installed

run: $(VENV)/.installed
	INVERSION_MODELS="$(MODELS)" $(PY) -m streamlit run app.py --server.port $(PORT)

test: $(VENV)/.dev-installed
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(VENV)/.dev-installed
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -m fast $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m benchmarks $(BENCH_ARGS)

# .venv's python where it exists, else $(PYTHON) with the requirements already importable
GPU_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))

gpu-check:
	$(GPU_PY) -m benchmarks --gpu $(GPU_ARGS)

gpu-check-dry:
	$(GPU_PY) -m benchmarks --gpu --dry-run $(GPU_ARGS)

clean-venv:
	rm -rf $(VENV)
