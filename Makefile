# kuzet: `make run` (set up and run the demo) and `make test` (set up and run every check).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the Python wheels need at run time (OpenCV's GUI-less core still links libGL and GLib).
DEBIAN_PACKAGES := libgl1 libglib2.0-0

.PHONY: run test install install-test system-deps lint typecheck pytest bench eval clean

run: install
	$(BIN)/kuzet demo

test: install-test lint typecheck pytest

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: system-deps $(VENV)/.installed

install-test: system-deps $(VENV)/.installed-test

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-test
	$(BIN)/mypy --strict src

pytest: install-test
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_analyze.py --out bench/results/analyze.json

eval: install
	$(BIN)/python bench/eval_faces.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
