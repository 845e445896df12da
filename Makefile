# resilient-shop: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
PYTEST_ARGS ?=
PROFILE ?= resilient
-include .data/cluster.mk
CLUSTER ?= kind
MONITORING ?=
AUTOSCALING ?=
SCHEDULED_DRILL ?=
CLUSTER_FLAGS = --profile $(PROFILE) $(if $(MONITORING),--monitoring) $(if $(AUTOSCALING),--autoscaling) $(if $(SCHEDULED_DRILL),--scheduled-drill)
CLUSTER_CLI = $(UV) run --locked python -m shop_devtools.cluster
SHOP_URL ?= http://localhost:8080
USERS ?= 20
RATE ?= 5
DURATION ?= 60s
DRILL_OUT ?= drill-out
DRILL_ARGS ?=
PROOF_OUT ?= .data/e2e
PROOF_ARGS ?= --rate 30 --browse-rate 180 --warmup 5 --cooldown 5
FAULT ?=
BENCH_ARGS ?=
PROFILE_ARGS ?=

.PHONY: help install run test test-browser recovery-screenshot lint format typecheck pytest clean images kind-up minikube-up deploy leak status down \
	compose-up compose-down e2e-containers load drill bench profile diagram report-schema

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) into .tools/"
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV) ## install Python and every dependency from uv.lock into .venv
	$(UV) sync --locked --compile-bytecode

run: install ## the whole shop on this machine: embedded PostgreSQL + the four services (http://localhost:8080; PAYMENT_REPLICAS=3)
	$(UV) run --locked shop-run

test: install lint typecheck pytest ## everything CI runs: format check, lint, import contracts, mypy --strict, all tests

lint: install ## ruff format --check, ruff check, the import contracts (lint-imports: no cycles, services apart), the workflows (actionlint with shellcheck on their run: blocks, zizmor)
	$(UV) run --locked ruff format --check services tools tests load
	$(UV) run --locked ruff check services tools tests load
	$(UV) run --locked lint-imports
	$(UV) run --locked actionlint
	$(UV) run --locked zizmor --offline .github/workflows

format: install ## format and autofix with ruff
	$(UV) run --locked ruff format services tools tests load
	$(UV) run --locked ruff check --fix services tools tests load

typecheck: install ## mypy --strict on services/, tools/, load/ and tests/
	$(UV) run --locked mypy services tools/devtools/src load/src tests

pytest: install ## the test suite against a real (embedded) PostgreSQL
	PATH="$(dir $(UV)):$$PATH" $(UV) run --locked pytest $(PYTEST_ARGS)

test-browser: install ## only the browser tests: the web shop and the recovery page, Playwright drives chromium (apt-get install chromium)
	PATH="$(dir $(UV)):$$PATH" $(UV) run --locked pytest tests/process/test_web_shop.py tests/process/test_recovery_page.py $(PYTEST_ARGS)

recovery-screenshot: install ## the recovery page's browser test, saving the page once a leaking replica is back into docs/recovery.png
	RECOVERY_SCREENSHOT=docs/recovery.png PATH="$(dir $(UV)):$$PATH" $(UV) run --locked pytest tests/process/test_recovery_page.py $(PYTEST_ARGS)

images: install ## build the four images resilient-shop/<service>:<version> (BASE_IMAGE, CA_BUNDLE, DOCKER_BUILD_NETWORK)
	$(UV) run --locked python -m shop_devtools.images

kind-up: install ## kind cluster + images loaded + the shop deployed and Ready (PROFILE=fragile, MONITORING=1, AUTOSCALING=1: payment's HPA + metrics-server, SCHEDULED_DRILL=1 with MONITORING=1: the weekly drill in the cluster)
	$(CLUSTER_CLI) kind-up $(CLUSTER_FLAGS)

minikube-up: install ## the same on minikube (PROFILE=fragile, MONITORING=1, AUTOSCALING=1: payment's HPA + the metrics-server addon, SCHEDULED_DRILL=1)
	$(CLUSTER_CLI) minikube-up $(CLUSTER_FLAGS)

deploy: install ## apply the overlay to the running cluster again (CLUSTER=kind|minikube, PROFILE, MONITORING, AUTOSCALING, SCHEDULED_DRILL)
	$(CLUSTER_CLI) deploy --cluster $(CLUSTER) $(CLUSTER_FLAGS)

leak: install ## make exactly one Ready payment pod leak memory (CLUSTER=kind|minikube; LEAK_ARGS="--mb-per-second 40" outruns liveness: OOMKilled)
	$(CLUSTER_CLI) leak --cluster $(CLUSTER) $(LEAK_ARGS)

status: install ## ReplicaSets and pods of the shop, and payment's HPA with AUTOSCALING (CLUSTER=kind|minikube)
	$(CLUSTER_CLI) status --cluster $(CLUSTER)

down: install ## delete what kind-up/minikube-up created
	$(CLUSTER_CLI) down

compose-up: install ## the same stack with docker compose (run `make images` first; MONITORING=1 adds Prometheus and Grafana)
	$(UV) run --locked python -m shop_devtools.compose up $(if $(MONITORING),--monitoring)

compose-down: install ## stop the compose stack (the database volume is kept)
	$(UV) run --locked python -m shop_devtools.compose down

e2e-containers: install ## container proof: the drill's leak (a real OOM kill) and database faults against the shop in containers, reports in PROOF_OUT (on a running engine; CI: .ci/prepare-containers; PROOF_ARGS= for the full sale)
	$(UV) run --locked python -m shop_load.containers up
	if [[ -f "$${SHOP_DATA_DIR:-.data}/containers/shop.json" ]]; then \
		trap '$(UV) run --locked python -m shop_load.containers down' EXIT; status=0; \
		for fault in leak database; do \
			$(UV) run --locked python -m shop_load.drill --containers --fault "$$fault" --out "$(PROOF_OUT)/$$fault" $(PROOF_ARGS) \
				|| status=1; \
		done; \
		((status == 0)); \
	fi

load: install ## steady shopping traffic (Locust, headless) against SHOP_URL (USERS, RATE spawn rate, DURATION)
	$(UV) run --locked locust -f load/locustfile.py --headless -u $(USERS) -r $(RATE) -t $(DURATION) --host $(SHOP_URL)

drill: install ## the article's crash during a sale (50 checkouts/s, 300 browses/s by wrk); report in DRILL_OUT (FAULT=leak|hang|crash|rollout|database|database-pod, CHAOS_TOKEN=..., PROFILE=fragile, DRILL_ARGS=...)
	$(UV) run --locked python -m shop_load.drill --url $(SHOP_URL) $(if $(KUBE_CONTEXT),--context $(KUBE_CONTEXT)) --profile $(PROFILE) $(if $(FAULT),--fault $(FAULT)) --out $(DRILL_OUT) $(DRILL_ARGS)

bench: install ## hot paths vs ceilings of the same run, then the sale (cold start + 128/512 checkouts) with wrk (apt-get install wrk) and pgbench; BENCH_ARGS="--seconds 3 --burst 128"
	$(UV) run --locked python -m shop_load.bench $(BENCH_ARGS)

profile: install ## the sale's burst (128 checkouts at once, 10 s) under py-spy: a flame graph per service in profile-out/ (a machine that refuses ptrace: says so, writes none); PROFILE_ARGS="--seconds 3 --burst 32"
	$(UV) run --locked python -m shop_load.bench.profile --out profile-out $(PROFILE_ARGS)

diagram: install ## draw the architecture picture in docs/architecture.md from the topology (Mermaid)
	$(UV) run --locked python -m shop_devtools.diagram --write

report-schema: install ## write the JSON Schema of the drill's and the bench's reports into docs/report.schema.json
	$(UV) run --locked python -m shop_load.report.schema --write

clean: ## remove local data (.data: the embedded database; the cluster's choice and image pins stay for `make deploy`) and caches
	[[ ! -d .data ]] || find .data -mindepth 1 -not -path .data/cluster.mk -not -path .data/deploy -not -path .data/deploy/images.json -delete
	rm -rf drill-out profile-out .pytest_cache .mypy_cache .ruff_cache
