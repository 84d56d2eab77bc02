# synthguard: `make run` installs and runs the main job; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint corpus-default clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The main job, for now: a small labeled corpus from the starter photos (a few minutes on 2 cores).
run: install
	$(BIN)/synthguard corpus build --real starter --generators gan_tconv,ae_bilinear,ddpm \
		--preset tiny --per-generator 100 --out corpora/demo

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy api worker

# The full-size corpus of the README (default presets; tens of minutes on 2 cores).
corpus-default: install
	$(BIN)/synthguard corpus build --real starter --generators gan_tconv,ae_bilinear,ddpm \
		--preset default --per-generator 700 --out corpora/starter-default

clean:
	rm -rf $(VENV) corpora .pytest_cache
