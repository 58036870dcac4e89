# The only commands a newcomer needs: `make demo` and `make test`.
# `make setup` creates .venv when missing and installs torch, the core, every bundled
# plugin (editable), the test tools and the linters; it does nothing when nothing changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet
TORCH := torch==2.14.1 torchvision==0.29.1
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): Makefile pyproject.toml $(wildcard plugins/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[test,plots,lint]' $(foreach p,$(PLUGINS),-e $(p))
	@touch $(STAMP)

demo: setup
	$(PY) examples/demo.py
	$(PY) examples/convert_torchvision.py
	rm -rf runs/demo-lenet5
	OMP_NUM_THREADS=1 $(VENV)/bin/registry-core train --model lenet5 --dataset digits --epochs 15 --batch-size 32 --out runs/demo-lenet5

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info plugins/*/*.egg-info
