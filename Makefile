# cvbench: `make help` lists the targets. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
PYTEST_ARGS ?=
# pip lists the local package mirrors it skips for every package; keep its real messages.
PIP_NOISE := is ignored: it is neither a file nor a directory

.PHONY: help install train test test-fast lint format bench smoke clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install cvbench with its dependencies (only when missing or pyproject.toml changed)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing cvbench and its dependencies into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]' 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	@touch $@

train: install ## Train the default experiment on embedded data (digits, small CNN); ARGS="..." adds overrides
	$(BIN)/cvbench train $(ARGS)

test: install ## Run the whole test suite (slow tests and cvbench/ doctests included); PYTEST_ARGS="..." passes options
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install ## Run the tests not marked slow (doctests included)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install ## Check code style with ruff and the import layers with import-linter (pyproject.toml)
	$(BIN)/ruff check cvbench tests scripts
	$(BIN)/ruff format --check cvbench tests scripts
	$(BIN)/lint-imports --no-cache

format: install ## Format and auto-fix with ruff
	$(BIN)/ruff format cvbench tests scripts
	$(BIN)/ruff check --fix cvbench tests scripts

smoke: install ## Run the smoke suite (a small experiment per task x 2 seeds), then its leaderboard
	$(BIN)/cvbench bench suite=smoke $(ARGS)

bench: install ## Framework overhead: cvbench vs a plain PyTorch loop (scripts/bench_overhead.py)
	$(BIN)/python scripts/bench_overhead.py $(ARGS)

clean: ## Remove caches (keeps .venv, outputs/ and data/)
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
