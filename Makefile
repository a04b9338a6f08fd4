# Two commands on a fresh machine with Python 3.11: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501
SHARED ?= ../shared
export PYTHONPATH := $(CURDIR)
export FER_SHARED_DIR ?= $(abspath $(SHARED))

.PHONY: run test test-random bench demo migrate browsers frontend train-edge train-ednn clean help

help:
	@echo "make run      set up and start the app on the embedded database (http://localhost:$(PORT))"
	@echo "make test     set up everything (incl. Debian Chromium for browser tests) and run the whole suite"
	@echo "make test-random   the whole suite in a random order (pytest-randomly; SEED=N repeats an order)"
	@echo "make bench    print the benchmark tables (model, agent, store, dashboard latency)"
	@echo "make frontend the join page's browser-analysis bundle (npm ci + esbuild into frontend/build; run/test/bench do it)"
	@echo "make demo     load a demo clinician, patients and sessions into the configured database"
	@echo "make migrate DATABASE_URL=...   apply supabase/migrations to any PostgreSQL"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamp files make the installs incremental: they re-run only when a requirements file changes.
$(VENV)/.runtime-installed: $(BIN)/python requirements.txt requirements-pi.txt
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.runtime-installed requirements-train.txt requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# The join page's browser-analysis component (LiteRT.js + the shipped model, see docs/remote-sessions.md): built here,
# never committed (LiteRT's wasm is ~9 MB per build). Rebuilt when package-lock.json or a source file changes. Without
# Node the app still runs: remote sessions then fall back to server analysis, and the browser-mode tests skip.
FRONTEND_SOURCES := $(wildcard frontend/src/*.js) frontend/index.html frontend/build.mjs frontend/package-lock.json
frontend/build/.built: $(FRONTEND_SOURCES)
	@if command -v npm >/dev/null 2>&1; then \
	  cd frontend && npm ci --no-audit --no-fund --loglevel=error && node build.mjs && touch build/.built; \
	else echo "note: npm is missing: browser analysis is not built (remote sessions use server analysis)"; fi

frontend: frontend/build/.built

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`, which downloads a browser).
browsers:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	  else echo "note: Debian chromium is missing and this is not root: browser tests will be skipped"; fi; \
	fi

run: $(VENV)/.runtime-installed frontend
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT) --server.headless true --server.fileWatcherType none

# Two workers (pytest-xdist), whole files per worker so module fixtures (a Streamlit server, a browser) start once: most
# tests wait on a server, a browser or the database, so two workers halve the wall time on these 2 cores.
TEST_WORKERS ?= 2
test: $(VENV)/.dev-installed browsers frontend
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

# Every test must pass alone and in any order: this shuffles files and tests (the seed is printed; SEED=N repeats it).
test-random: $(VENV)/.dev-installed browsers frontend
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -p randomly $(if $(SEED),--randomly-seed=$(SEED)) --durations=15

bench: $(VENV)/.dev-installed frontend
	$(BIN)/python -m bench

demo: $(VENV)/.runtime-installed
	$(BIN)/python -m app.demo

migrate: $(VENV)/.runtime-installed
	@test -n "$(DATABASE_URL)" || (echo "usage: make migrate DATABASE_URL=postgresql://..." && exit 2)
	$(BIN)/python -m store.migrate --database-url "$(DATABASE_URL)"

# The shipped model (training/EXPERIMENTS.md), resumable: one 60-epoch cosine cycle of edge_vgg from scratch and the mean
# of its last 5 epochs; a second 60-epoch cycle from that mean and the mean of its last 5; then the uniform soup of the
# two means, with batch norm recalibrated on clean faces, exported and shipped with its card (about 4 h on 2 cores).
train-edge: $(VENV)/.dev-installed
	$(BIN)/python -m training.train --arch edge_vgg --epochs 60 --seed 2026 --out runs/edge_vgg_long --resume
	$(BIN)/python -m training.swa --run runs/edge_vgg_long --out swa_last5.keras --checkpoints snapshots/epoch_056.keras snapshots/epoch_057.keras snapshots/epoch_058.keras snapshots/epoch_059.keras snapshots/epoch_060.keras
	$(BIN)/python -m training.train --arch edge_vgg --recipe edge_vgg_cycle2 --init-from runs/edge_vgg_long/swa_last5.keras --epochs 60 --seed 2027 --out runs/edge_vgg_c2 --resume
	$(BIN)/python -m training.swa --run runs/edge_vgg_c2 --out swa_last5.keras --checkpoints snapshots/epoch_056.keras snapshots/epoch_057.keras snapshots/epoch_058.keras snapshots/epoch_059.keras snapshots/epoch_060.keras
	$(BIN)/python -m training.swa --run runs/edge_vgg_c2 --out soup_start_last5.keras --checkpoints ../edge_vgg_long/swa_last5.keras swa_last5.keras
	$(BIN)/python -m training.train --arch edge_vgg --recipe edge_vgg_cycle3_cutmix --init-from runs/edge_vgg_c2/soup_start_last5.keras --epochs 50 --seed 2028 --out runs/edge_vgg_c3 --resume
	$(BIN)/python -m training.swa --run runs/edge_vgg_c3 --out swa_last5.keras --checkpoints snapshots/epoch_046.keras snapshots/epoch_047.keras snapshots/epoch_048.keras snapshots/epoch_049.keras snapshots/epoch_050.keras
	# init.keras twice: the uniform soup of the three cycles' means (the second cycle's soup already holds two of them).
	$(BIN)/python -m training.swa --run runs/edge_vgg_c3 --out soup_3way.keras --checkpoints init.keras init.keras swa_last5.keras
	$(BIN)/python -m training.export --run runs/edge_vgg_c3 --checkpoint soup_3way.keras --ship

train-ednn: $(VENV)/.dev-installed
	$(BIN)/python -m training.train --arch ednn --epochs 12 --out runs/ednn_sharp --resume

clean:
	rm -rf $(VENV) .pytest_cache frontend/build frontend/node_modules
