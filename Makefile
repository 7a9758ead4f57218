# careerqa: `make demo` sets everything up and answers a question; `make test` sets up and runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin
QUESTION ?= What kind of math should I focus on for AI?
export HF_HUB_OFFLINE = 1
export TRANSFORMERS_OFFLINE = 1

.PHONY: demo test bench lint setup browser llama

setup: $(VENV)/.installed

# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
# llama-cpp-python is compiled by scripts/install_llama.sh with explicit CPU flags (portable AVX2 by
# default; CAREERQA_LLAMA_CPU=avx512|native or CMAKE_ARGS=... to choose), once per flag set: several
# minutes on 2 cores the first time, then reused from ~/.cache/careerqa/wheels.
$(VENV)/.installed: pyproject.toml scripts/install_llama.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install torch==2.13.0
	scripts/install_llama.sh $(VENV)
	$(BIN)/pip install -e '.[dev,remote,chart,fast]'
	touch $@

# Rebuild (or reinstall from the wheel cache) llama-cpp-python with the flags in effect now.
llama:
	@[ -x $(BIN)/pip ] || $(PYTHON) -m venv $(VENV)
	scripts/install_llama.sh $(VENV)

demo: setup
	$(BIN)/careerqa ask "$(QUESTION)"

test: setup browser
	$(BIN)/python -m pytest -q -rs
	# Retrieval regression gate (thresholds in eval/gate.json); the report goes to a scratch folder.
	$(BIN)/careerqa eval retrieval --out "$$(mktemp -d)"

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: setup
	$(BIN)/python bench/bench_index.py
	$(BIN)/python bench/bench_generator.py

CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
AXE_CORE = .cache/browser/node_modules/axe-core/axe.min.js

# The chat page tests drive headless Chromium; Debian packages it with its driver (about 100 MB).
# axe-core, the accessibility checker they inject, comes from npm into .cache/browser (gitignored).
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  echo "installing chromium and chromium-driver for the chat page tests"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver; \
	fi
	@if [ ! -f $(AXE_CORE) ]; then \
	  echo "installing axe-core (npm) for the chat page's accessibility test"; \
	  if ! command -v npm >/dev/null; then \
	    sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm; \
	  fi; \
	  npm install --prefix .cache/browser --no-save --no-audit --no-fund axe-core@4; \
	fi
