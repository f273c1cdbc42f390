# flowserve — `make run` serves on the embedded default, `make test` passes the tests.
# Both install what they need first (a virtualenv in .venv).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install run test test-js lint format openapi check bench soak services clean audit

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv python3-pip && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q -p $(BIN)/python -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Auth is on by default: with no FLOWSERVE_API_KEY / LANGFLOW_API_KEY set, `make run` uses
# an admin dev key kept in .flowserve-dev-key (created once, mode 600, gitignored).
DEV_KEY_FILE ?= .flowserve-dev-key

run: install
	@if [ -n "$$FLOWSERVE_API_KEY$$LANGFLOW_API_KEY" ]; then \
	  exec $(BIN)/flowserve serve --host $(HOST) --port $(PORT); fi; \
	test -s $(DEV_KEY_FILE) || (umask 077 && $(BIN)/python -c \
	  "import secrets; print('fs_dev_' + secrets.token_urlsafe(32))" > $(DEV_KEY_FILE)); \
	echo "flowserve dev API key (admin, from $(DEV_KEY_FILE)): $$(cat $(DEV_KEY_FILE))"; \
	echo "  try: curl -H \"x-api-key: $$(cat $(DEV_KEY_FILE))\" http://$(HOST):$(PORT)/api/v1/config"; \
	FLOWSERVE_API_KEY="$$(cat $(DEV_KEY_FILE))" exec $(BIN)/flowserve serve --host $(HOST) --port $(PORT)

services:
	@bash tests/ensure_services.sh

test: install services
	$(BIN)/pytest -q $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-js

# The JavaScript client (clients/js) under node's test runner, against a live
# `flowserve serve` its harness starts from this virtualenv.
test-js: install services
	cd clients/js && FLOWSERVE_PYTHON=$(abspath $(BIN))/python \
	  node --test --test-reporter=spec test/*.test.js

lint: install
	$(BIN)/ruff format --check src tests
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

openapi: install
	$(BIN)/python -m flowserve.api.openapi > openapi/openapi.json

check: lint test

# Known vulnerabilities in the installed dependencies (pip-audit). Fails on one; only
# warns when the vulnerability database cannot be reached, so CI never flakes offline.
audit: install
	$(BIN)/python .ci/audit.py

# One table: bare Starlette vs flowserve (embedded, and Postgres+Redis when available),
# wrk at c=1/16/64; a few minutes. BENCH_ARGS="--duration 10 --only hello,prompt".
bench: install services
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Ten minutes of mixed load (runs, chats, LLM, streams, webhooks, flow edits, reads) on
# Postgres+Redis with a separate worker; prints a report and fails on unexpected errors
# or growing RSS/fds/connections. SOAK_SECONDS=60 for a shorter one.
soak: install services
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
