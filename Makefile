# One-command set-up: `make test` and `make demo` create .venv/ from nothing when needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.avdiff-installed
.PHONY: setup test demo bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.9.1" "torchaudio==2.9.*"
	$(PY) -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

# One worker per core, each running whole test files (their module fixtures are built once).
test: setup
	$(PY) -m pytest -q -n auto --dist loadfile

demo: setup
	$(PY) -m avdiff demo --output demo-output

bench: setup
	$(PY) -m benchmarks.speed.sampling_speed --config configs/tiny.yaml --device cpu --batch-sizes 1 16 --output benchmarks/results/tiny-cpu

clean-venv:
	rm -rf $(VENV)
