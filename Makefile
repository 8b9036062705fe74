# dpo-teach: two commands do everything.
#   make course   set up .venv, execute every chapter (papermill), write figures/, build the book
#   make test     set up .venv, run the unit tests and nbval over every notebook
#   make lab      open the notebooks in JupyterLab, in the project's environment
#   make bench    run the speed benchmarks (prints ratios measured in one run)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# One thread everywhere: float32 sums then give the same bits on every run.
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export PYTHONHASHSEED := 0
# No per-step progress bars in stored outputs (they carry timings); interactive runs keep them.
export DPO_TEACH_NO_PROGRESS := 1
# Use this environment's Jupyter kernel, not one registered in the user's home.
export JUPYTER_PREFER_ENV_PATH := 1

.PHONY: course test lab bench setup clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

course: $(STAMP)
	$(PY) -m dpo_teach run
	$(PY) -m dpo_teach book

test: $(STAMP)
	$(PY) -m pytest

# Jupyter refuses to run as root unless told; containers often are root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: $(STAMP)
	DPO_TEACH_NO_PROGRESS= $(VENV)/bin/jupyter lab $(LAB_FLAGS) $(LAB_ARGS) notebooks/

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf book/html book/src book/mathjax .pytest_cache test-artifacts
