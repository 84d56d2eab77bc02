# synthguard: `make run` installs and runs the main job; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system services run demo-corpus test lint corpus-default default-image-model \
	default-voice-model default-video-model bench clean

# Debian packages the voice side uses, installed when missing (root, apt-get): espeak-ng
# (text-to-speech generator), alsa-utils (its voice recordings are the audio starter
# source), a C compiler and Python headers (pyworld, the WORLD vocoder, builds from source).
# Without apt-get or root this only warns; those generators then say what is missing.
system:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	[ -f /usr/share/sounds/alsa/Front_Center.wav ] || missing="$$missing alsa-utils"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	$(PYTHON) -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
		|| missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "warning: missing$$missing (install them with apt-get as root)"; fi; \
	fi

$(STAMP): pyproject.toml
	$(MAKE) --no-print-directory system
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[dev]'
	$(BIN)/pip install -e '.[dev,voice]' \
		|| echo "warning: pyworld did not build; the WORLD voice generators are unavailable"
	touch $(STAMP)

install: $(STAMP)

# The main job: the service on http://127.0.0.1:8000 in its embedded default (tasks in
# process, SQLite and uploads under ./synthguard-data; no Redis, no PostgreSQL).
run: install
	$(BIN)/synthguard serve

# A small labeled corpus from the starter photos (a few minutes on 2 cores).
demo-corpus: install
	$(BIN)/synthguard corpus build --real starter --generators gan_tconv,ae_bilinear,ddpm \
		--preset tiny --per-generator 100 --out corpora/demo

# The tests start their own redis-server (to stop and restart it); install it when missing.
# PostgreSQL tests use the server on 127.0.0.1:5432 and skip when there is none.
services:
	@command -v redis-server >/dev/null || { \
		echo "installing redis-server (Debian package) for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

test: install services
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy api worker

# The full-size corpus of the README (default presets; tens of minutes on 2 cores).
corpus-default: install
	$(BIN)/synthguard corpus build --real starter --generators gan_tconv,ae_bilinear,ddpm \
		--preset default --per-generator 700 --out corpora/starter-default

# The image model shipped in detector/weights/image: corpus, two trainings (with and
# without online fakes) combined into an ensemble calibrated on validation, evaluation.
# Every registered image generator: four up-sampling kinds in each of the GAN and the
# autoencoder families, and the diffusion model.
GAN_GENERATORS := gan_tconv,gan_nearest,gan_bilinear,gan_pixelshuffle
AE_GENERATORS := ae_tconv,ae_nearest,ae_bilinear,ae_pixelshuffle
IMAGE_GENERATORS := $(GAN_GENERATORS),$(AE_GENERATORS),ddpm
default-image-model: install
	$(BIN)/synthguard corpus build --real starter --generators $(IMAGE_GENERATORS) \
		--preset default --per-generator 250 --out corpora/image-default
	$(BIN)/synthguard train --corpus corpora/image-default --out runs/image-default --preset default
	$(BIN)/synthguard train --corpus corpora/image-default --out runs/image-p0 --preset default \
		--train-set p_online_fake=0
	$(BIN)/synthguard ensemble --model runs/image-default --model runs/image-p0 \
		--corpus corpora/image-default --out detector/weights/image
	$(BIN)/synthguard evaluate --model detector/weights/image --corpus corpora/image-default \
		--out runs/image-default-report --robustness --leave-one-out \
		--train-set epochs=30 --train-set patience=6

# The voice model shipped in detector/weights/audio: corpus, training, evaluation. Needs a
# folder of real speech (VOICE_REAL; ../shared/data/real_speech in this project's
# checkouts: 137 recordings, so one resynthesis of each per generator).
VOICE_REAL ?= ../shared/data/real_speech
VOICE_PER_GENERATOR ?= 137
VOICE_GENERATORS := gl_linear,gl_mel,world,world_pitch,lpc,melgan,tts_espeak,splice
default-voice-model: install
	$(BIN)/synthguard corpus build --modality audio --real $(VOICE_REAL) \
		--generators $(VOICE_GENERATORS) --preset default --per-generator $(VOICE_PER_GENERATOR) \
		--out corpora/voice-default
	$(BIN)/synthguard train --modality audio --corpus corpora/voice-default \
		--out runs/voice-default --preset default
	mkdir -p detector/weights/audio
	cp runs/voice-default/model.safetensors runs/voice-default/card.json detector/weights/audio/
	$(BIN)/synthguard evaluate --model detector/weights/audio --corpus corpora/voice-default \
		--out runs/voice-default-report --robustness

# The video model shipped in detector/weights/video: corpus, training, evaluation. Needs a
# folder of real video and photos with faces (VIDEO_REAL). By default it is made of links
# to this project's shared data: 24 talking-head videos (cut into clips of 3 s, at most
# 12 each) and 147 face photos (a 3 s pan-and-zoom clip each when a face is found with
# room around it: 85 of them).
SHARED_DATA ?= ../shared/data
VIDEO_REAL ?= corpora/video-real
VIDEO_PER_GENERATOR ?= 110
VIDEO_GENERATORS := faceswap,ae_swap,selfblend,voice_swap
corpora/video-real:
	test -d $(SHARED_DATA)/real_video/faces && test -d $(SHARED_DATA)/real_images/faces
	mkdir -p $@/video $@/photos
	ln -sfn $(abspath $(SHARED_DATA))/real_video/faces/* $@/video/
	ln -sfn $(abspath $(SHARED_DATA))/real_images/faces/* $@/photos/
default-video-model: install $(VIDEO_REAL)
	$(BIN)/synthguard corpus build --modality video --real $(VIDEO_REAL) \
		--generators $(VIDEO_GENERATORS) --preset default --per-generator $(VIDEO_PER_GENERATOR) \
		--clip-seconds 3 --max-clips 12 --out corpora/video-default
	$(BIN)/synthguard train --modality video --corpus corpora/video-default \
		--out runs/video-default --preset default
	rm -rf detector/weights/video && mkdir -p detector/weights/video/voice
	cp runs/video-default/model.safetensors runs/video-default/card.json detector/weights/video/
	cp runs/video-default/voice/* detector/weights/video/voice/
	$(BIN)/synthguard evaluate --model detector/weights/video --corpus corpora/video-default \
		--out runs/video-default-report --robustness

# Every benchmark (about 8 minutes on 2 cores), then the README's table.
bench: install services
	$(BIN)/python -m bench.image_scan
	$(BIN)/python -m bench.audio_scan
	$(BIN)/python -m bench.video_scan
	$(BIN)/python -m bench.service_batch --workers 1 --json bench/results/service_batch_1.json
	$(BIN)/python -m bench.service_batch --workers 2
	$(BIN)/python -m bench.service_latency
	$(BIN)/python -m bench.service_load
	$(BIN)/python -m bench.train
	$(BIN)/python -m bench.summary

clean:
	rm -rf $(VENV) corpora .pytest_cache
