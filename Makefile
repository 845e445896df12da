# resilient-shop: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
PYTEST_ARGS ?=

.PHONY: help install run test lint format typecheck pytest clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) into .tools/"
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV) ## install Python and every dependency from uv.lock into .venv
	$(UV) sync --locked --compile-bytecode

run: install ## the whole shop on this machine: embedded PostgreSQL + the four services (http://localhost:8080)
	$(UV) run --locked shop-run

test: install lint typecheck pytest ## everything CI runs: format check, lint, mypy --strict, all tests

lint: install ## ruff format --check and ruff check
	$(UV) run --locked ruff format --check services tools tests
	$(UV) run --locked ruff check services tools tests

format: install ## format and autofix with ruff
	$(UV) run --locked ruff format services tools tests
	$(UV) run --locked ruff check --fix services tools tests

typecheck: install ## mypy --strict on services/ and tools/
	$(UV) run --locked mypy services tools/devtools/src

pytest: install ## the test suite against a real (embedded) PostgreSQL
	$(UV) run --locked pytest $(PYTEST_ARGS)

clean: ## remove local data (.data: the embedded database) and caches
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
