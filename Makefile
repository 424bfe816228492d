# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
EXTRAS ?= infra,tracking,dev

.PHONY: demo test install services lint typecheck unit clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build (see DESIGN.md).
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

install: $(INSTALLED)

# PostgreSQL for the tracking tests (needs root; see .ci/services).
services:
	bash .ci/services

lint: $(INSTALLED)
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/pyright

unit: $(INSTALLED)
	$(BIN)/pytest

test: $(INSTALLED) services lint typecheck unit

# Renders every stack's offline plan (no cloud credentials) and prints what each would create.
demo: $(INSTALLED)
	@for stack in dev staging prod; do \
		$(BIN)/mlops plan $$stack --out .mlops/plans/$$stack.json || exit $$?; \
	done
	@echo "Plans written to .mlops/plans/ (the JSON contract is described in README.md)."

clean:
	rm -rf $(VENV) .mlops .pytest_cache .ruff_cache
