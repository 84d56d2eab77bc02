# synthguard: `make run` installs and runs the main job; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint corpus-default default-image-model bench clean

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

# The image model shipped in detector/weights/image: corpus, training, evaluation.
IMAGE_GENERATORS := gan_tconv,gan_bilinear,ae_tconv,ae_pixelshuffle,ddpm
default-image-model: install
	$(BIN)/synthguard corpus build --real starter --generators $(IMAGE_GENERATORS) \
		--preset default --per-generator 450 --out corpora/image-default
	$(BIN)/synthguard train --corpus corpora/image-default --out runs/image-default --preset default
	mkdir -p detector/weights/image
	cp runs/image-default/model.safetensors runs/image-default/card.json detector/weights/image/
	$(BIN)/synthguard evaluate --model detector/weights/image --corpus corpora/image-default \
		--out runs/image-default-report --robustness --leave-one-out

bench: install
	$(BIN)/python -m bench.image_scan

clean:
	rm -rf $(VENV) corpora .pytest_cache
