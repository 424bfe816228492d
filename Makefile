# The two commands a newcomer needs: `make demo` and `make test`. Each creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
EXTRAS ?= infra,tracking,pipelines,monitoring,dev,serving
# checkov gets its own environment: its pins (boto3 1.35, packaging 23, networkx 2) would downgrade .venv.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_INSTALLED := $(CHECKOV_VENV)/.installed

.PHONY: demo plans test install checkov services lint typecheck unit unit-fast clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build (ARCHITECTURE.md, "Dependencies").
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@# The policy pack's SDK pins protobuf ~=5.29 and kfp needs >= 6.31: no resolver satisfies both, and
	@# pulumi-policy runs on protobuf 6 (tests/policies), so it goes in without its pins (see pyproject.toml).
	$(BIN)/python -m pip install --quiet --no-deps 'pulumi-policy>=1.21,<2'
	touch $@

install: $(INSTALLED)

$(CHECKOV_INSTALLED): .ci/checkov-requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r .ci/checkov-requirements.txt
	touch $@

checkov: $(CHECKOV_INSTALLED)

# PostgreSQL for the tracking tests; promtool, Prometheus, Alertmanager and the Pushgateway for the
# alerting tests (needs root; see .ci/services).
services:
	bash .ci/services

lint: $(INSTALLED)
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/pyright

# tests/ci scans the rendered manifests with checkov, tests/observability runs promtool on the alerting
# rules and real Prometheus, Alertmanager and Pushgateway servers; here a missing checkov, promtool or
# server binary fails instead of skipping.
unit: $(INSTALLED) $(CHECKOV_INSTALLED)
	MLOPS_REQUIRE_CHECKOV=1 MLOPS_CHECKOV=$(CHECKOV_VENV)/bin/checkov MLOPS_REQUIRE_PROMTOOL=1 MLOPS_REQUIRE_PROMETHEUS=1 $(BIN)/pytest

test: $(INSTALLED) services lint typecheck unit

# The fast tier while changing code: unit and component tests only, no services, no processes, no
# whole-stack plans (tests/fast_tier.py decides, by what each test uses); under a minute on two cores.
# `make unit` (and so `make test`) runs these too, with everything else.
unit-fast: $(INSTALLED)
	$(BIN)/pytest --fast-tier -n auto -q --durations=10

# The whole loop on this machine (mlops local up): train, gate, promote, serve, replay traffic, drift,
# alert, retrain; prints where everything is and stops what it started. DEMO_ARGS passes options,
# e.g. `make demo DEMO_ARGS="--model digits --keep"`.
demo: $(INSTALLED)
	$(BIN)/mlops local up $(DEMO_ARGS)

# Renders every stack's offline plan (no cloud credentials) and prints what each would create.
plans: $(INSTALLED)
	@for stack in dev staging prod; do \
		$(BIN)/mlops plan $$stack --out .mlops/plans/$$stack.json || exit $$?; \
	done
	@echo "Plans written to .mlops/plans/ (the JSON contract is described in README.md)."

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .mlops .pytest_cache .ruff_cache
