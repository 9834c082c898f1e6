# CareLoop — the two commands: `make up` (whole system, embedded stack) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements-dev.lock | cut -c1-12)
UV_VERSION := 0.13.9

.PHONY: env up demo console test lint unit integration e2e bench lock schemas clean

$(STAMP): requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync -q --python $(BIN)/python --require-hashes requirements-dev.lock
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

env: $(STAMP)

up: env
	$(BIN)/python -m devstack.up

# demo data for the ops console (http://127.0.0.1:8080/console/), against a running make up
demo: env
	$(BIN)/python -m devstack.demo

# rebuild the console's committed assets (services/gateway/console/dist) from its sources
console:
	cd services/gateway/console && npm ci && npm run build

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# three workers, each with its own embedded stack (the suite mostly waits on I/O); a test
# file stays on one worker (tests/conftest.py)
TEST_WORKERS ?= 3
test: env lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

unit: env
	$(BIN)/python -m pytest -q -m unit

integration: env
	$(BIN)/python -m pytest -q tests/integration

e2e: env
	$(BIN)/python -m pytest -q tests/e2e

# the surge: SURGE_PATIENTS patients on SURGE_NUMBERS numbers (benchmarks/surge); results in .data/bench/
SURGE_PATIENTS ?= 10000
SURGE_NUMBERS  ?= 500
bench: env
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.surge --patients $(SURGE_PATIENTS) --numbers $(SURGE_NUMBERS)

# requirements.lock: the production image; requirements-dev.lock: make up, tests, tools
lock: env
	$(BIN)/uv pip compile -q pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile -q pyproject.toml --extra embedded --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

schemas: env
	$(BIN)/python -m shared.schema_export

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
