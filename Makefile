# Two commands do all the setup: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := chromium dataset-fashion-mnist sweethome3d-furniture
PORT ?= 8501

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements-scale.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt -r requirements-scale.txt
	touch $@

# System packages: Chromium for the browser tests, and the offline datasets (Fashion-MNIST, furniture).
.apt-stamp:
	@if command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else echo "apt-get not found: install $(APT_PACKAGES) with your package manager"; fi
	touch $@

run: $(VENV)/.runtime
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.dev .apt-stamp
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	LOOKALIKE_WEIGHTS=random $(BIN)/python -m pytest

# The unit tier: no browser, no training, no whole-corpus page runs (markers e2e and slow); under 2 minutes.
test-fast: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	LOOKALIKE_WEIGHTS=random $(BIN)/python -m pytest -m "not e2e and not slow"

# ruff, and the architecture's import rules (contracts in pyproject.toml).
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(VENV)/.dev
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .apt-stamp test-artifacts .pytest_cache
