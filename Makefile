# Entry points. `make help` lists them. Every target bootstraps .venv first, so a fresh
# clone needs nothing but Python 3.11 and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Data source for `make local`; a path, an https URL or a gs:// URI.
SOURCE ?=
PIPELINE_YAML ?= out/crypto_pipeline.yaml
# Cloud stack (Pulumi). STACK=<name> picks a stack; empty uses the selected one.
STACK ?=
PULUMI_STACK = $(if $(STACK),--stack $(STACK))
# The policy pack every preview and update runs, with its config written from the stack's
# settings (only serviceAccountKeys and controlPlaneOpenToAnyAddress relax a policy).
POLICY_CONFIG := .local/policy-config.json
POLICY = --policy-pack infra/policy --policy-pack-config $(POLICY_CONFIG)
# KFP API endpoint for `make pipeline` (kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80).
HOST ?= http://localhost:8080
# `make schedule`: when the recurring run starts (UTC), and its name (default: pipeline + cron).
CRON ?=
NAME ?=
SKIP_IMAGES ?=
# `make destroy SKIP_TEARDOWN=1`: straight to `pulumi destroy` (e.g. the cluster is gone).
SKIP_TEARDOWN ?=
# The locker: the venv and every image install exactly uv.lock. Same version as the `uv`
# pin in pyproject's dev extra (uv sync keeps it in the venv).
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
# uv uses the venv's Python, never one it downloads, and the system's CA certificates.
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1
# `make images`: BUILDER=docker|cloudbuild, PUSH=1|0, REGISTRY=<registry_url>, TAG=<tag>.
BUILDER ?= docker
PUSH ?= 1
REGISTRY ?=
# BUILDER=cloudbuild runs the build as the stack's build account and uploads the source to
# its build-source bucket: the stack outputs build_service_account and build_source_bucket,
# read with the Pulumi CLI unless given here.
BUILD_SERVICE_ACCOUNT ?=
BUILD_SOURCE_BUCKET ?=
# Image tag: the commit (and -dirty for uncommitted changes), so every build gets new tags
# and a compiled pipeline names exactly the images built with it.
TAG ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo dev)
# What `make images` writes and `make pipeline` / `make local RUNNER=docker` read.
IMAGES_JSON := build/images.json
# Registry `make test-images` pushes to: a local one (`.ci/local-registry.sh`, or
# `docker run -d -p 5000:5000 registry:2`), so the pipeline runs pinned to real digests.
TEST_REGISTRY ?= localhost:5000/crypto-kfp
# `make local RUNNER=docker` runs every step in its image (kfp.local's DockerRunner).
RUNNER ?= subprocess
# `make serve` / `make predict`: the model server on the local model repository (in the
# deploy image when RUNNER=docker and build/images.json exists), and a forecast from the
# last 31 days of PREDICT_CSV.
MODEL_REPOSITORY ?= .local/model_repository
MODEL_NAME ?= btc-forecast
SERVE_PORT ?= 8501
PREDICT_CSV ?= ../shared/data/crypto-markets-bitcoin.csv
# `make forecast-bench`: the quantile forecast beside historical quantiles and GARCH on any
# CSV (SOURCE, default the shared Bitcoin file), its coins (space or comma separated, or
# all), a column mapping for other schemas, and any further options in BENCH_ARGS.
COINS ?= all
COLUMN_MAPPING ?=
BENCH_ARGS ?=

.PHONY: help setup test test-infra test-images lint lock lock-check local compile images bench forecast-bench serve predict clean preview up pause resume policy-config destroy keys kubeconfig pipeline schedule schedules unschedule

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet uv==$(UV_VERSION)
	$(UV) sync --quiet --frozen --all-extras --python $(PY)
	touch $(STAMP)

setup: $(STAMP) ## Create .venv with exactly uv.lock: all extras, the project editable

lock: $(STAMP) ## Refresh uv.lock after a change of pyproject.toml's dependencies
	$(UV) lock

lock-check: $(STAMP) ## Fail when uv.lock and pyproject.toml disagree
	@$(UV) lock --check || { echo "uv.lock is out of date with pyproject.toml: run 'make lock'" >&2; exit 1; }

test: $(STAMP) ## Run the whole test suite offline (exit 5, no tests, is a failure)
	@$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected" >&2; exit 1; fi; exit $$rc

test-infra: $(STAMP) ## Run only the Pulumi program tests (mocked providers)
	$(PY) -m pytest tests/infra

lint: $(STAMP) ## Check formatting and lint: ruff (lines <= 100), uv.lock, hadolint, actionlint
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory lock-check
	$(VENV)/bin/hadolint components/Dockerfile.base components/*/Dockerfile
	$(VENV)/bin/actionlint .github/workflows/*.yml

local: $(STAMP) ## Run the whole pipeline on this machine (SOURCE=path|https|gs://, RUNNER=docker: in the images of `make images`, ARGS=...)
	$(PY) -m pipeline run-local --local-runner $(RUNNER) $(if $(SOURCE),--source "$(SOURCE)") $(ARGS)

compile: $(STAMP) ## Compile the pipeline to out/crypto_pipeline.yaml with the images of build/images.json if there (PIPELINE_YAML=...)
	$(PY) -m pipeline compile --output $(PIPELINE_YAML) $(if $(wildcard $(IMAGES_JSON)),--images $(IMAGES_JSON))

images: ## Build (and with PUSH=1, the default, push) every image; writes build/images.json (BUILDER=docker|cloudbuild, REGISTRY=, TAG=)
	set -euo pipefail; sa="$(BUILD_SERVICE_ACCOUNT)"; src="$(BUILD_SOURCE_BUCKET)"; \
	if [ "$(BUILDER)" = cloudbuild ]; then \
	  [ -n "$$sa" ] || sa="$$(pulumi stack output build_service_account $(PULUMI_STACK))"; \
	  [ -n "$$src" ] || src="$$(pulumi stack output build_source_bucket $(PULUMI_STACK))"; \
	fi; \
	BUILDER="$(BUILDER)" PUSH="$(PUSH)" REGISTRY="$(REGISTRY)" TAG="$(TAG)" \
	  BUILD_SERVICE_ACCOUNT="$$sa" BUILD_SOURCE_BUCKET="$$src" components/build_images.sh

test-images: $(STAMP) ## Build every image, push it to TEST_REGISTRY, check the images and run the pipeline in them (needs Docker and a registry)
	$(MAKE) --no-print-directory images PUSH=1 REGISTRY=$(TEST_REGISTRY)
	@$(PY) -m pytest -m images tests/images; rc=$$?; if [ $$rc -eq 5 ]; then echo "no image tests collected" >&2; exit 1; fi; exit $$rc

bench: $(STAMP) ## Run the benchmarks and print their figures
	$(PY) bench/transform_bench.py
	$(PY) bench/pipeline_bench.py
	$(PY) bench/serve_bench.py

forecast-bench: $(STAMP) ## The forecast on your CSV (SOURCE=, COINS=, COLUMN_MAPPING=) beside historical quantiles and GARCH
	$(PY) -m bench.forecast_bench --source "$(or $(SOURCE),$(PREDICT_CSV))" --coins $(COINS) \
	  $(if $(COLUMN_MAPPING),--column-mapping '$(COLUMN_MAPPING)') $(BENCH_ARGS)

serve: $(STAMP) ## Serve the CURRENT model of MODEL_REPOSITORY on 127.0.0.1:SERVE_PORT (RUNNER=docker: in the deploy image of build/images.json)
	@if [ "$(RUNNER)" = docker ] && [ -f $(IMAGES_JSON) ]; then \
	  image="$$($(PY) -c 'import sys; from components.images import load_images; print(load_images(sys.argv[1])["deploy"])' $(IMAGES_JSON))" || exit 1; \
	  echo "serving $(MODEL_REPOSITORY) in $$image"; \
	  exec docker run --rm --init -p 127.0.0.1:$(SERVE_PORT):8501 \
	    -v "$$(cd $(MODEL_REPOSITORY) && pwd):/models:ro" "$$image" \
	    python -m components.deploy serve --model-repository /models \
	    --model-name $(MODEL_NAME) --host 0.0.0.0 --port 8501; \
	else \
	  exec $(PY) -m components.deploy serve --model-repository $(MODEL_REPOSITORY) \
	    --model-name $(MODEL_NAME) --port $(SERVE_PORT); \
	fi

predict: $(STAMP) ## Forecast the next close from the last 31 days of PREDICT_CSV with the server of `make serve`
	@$(PY) -m components.deploy forecast --url http://127.0.0.1:$(SERVE_PORT) \
	  --model-name $(MODEL_NAME) --csv $(PREDICT_CSV)

policy-config: $(STAMP) ## Write the policy pack's config for the stack to .local/policy-config.json
	@mkdir -p .local
	@set -o pipefail; pulumi config --json $(PULUMI_STACK) | $(PY) -m infra.policy.stack_config > $(POLICY_CONFIG)

preview: policy-config ## Show what `make up` would change in the cloud stack, checked by the policy pack (needs the Pulumi CLI)
	pulumi preview $(PULUMI_STACK) $(POLICY)

up: policy-config ## Create/update the cloud stack (GKE, KFP, buckets, registry, IAM), checked by the policy pack
	pulumi up $(PULUMI_STACK) $(POLICY)

pause: $(STAMP) ## Take the system pool to zero nodes (KFP stops, its volumes stay): paused=true + make up
	pulumi config set paused true $(PULUMI_STACK)
	$(MAKE) --no-print-directory up

resume: $(STAMP) ## Bring the system pool back and KFP with it: paused=false + make up
	pulumi config set paused false $(PULUMI_STACK)
	$(MAKE) --no-print-directory up

destroy: $(STAMP) ## Remove what deploys created (components.deploy teardown), then everything the stack created (protect=true refuses)
ifeq ($(SKIP_TEARDOWN),)
	$(MAKE) --no-print-directory kubeconfig
	set -o pipefail; pulumi stack output --json $(PULUMI_STACK) | $(PY) -m components.deploy teardown --stack-outputs - --kubeconfig .local/kubeconfig --model-name $(MODEL_NAME)
endif
	pulumi destroy $(PULUMI_STACK)

keys: $(STAMP) ## Write requested service-account keys to service_accounts/ (mode 600)
	set -o pipefail; pulumi stack output --json --show-secrets $(PULUMI_STACK) | $(PY) -m infra.write_keys -

kubeconfig: $(STAMP) ## Write the cluster kubeconfig to .local/kubeconfig (DNS endpoint, tokens from gke-gcloud-auth-plugin)
	@mkdir -p .local
	@umask 077; pulumi stack output kubeconfig --show-secrets $(PULUMI_STACK) > .local/kubeconfig
	@echo "export KUBECONFIG=$$PWD/.local/kubeconfig"

pipeline: $(STAMP) ## Build+push the images (SKIP_IMAGES=1 reuses build/images.json), compile pinned to their digests, submit a run (HOST=, STACK=, ARGS=)
	set -euo pipefail; \
	if [ -z "$(SKIP_IMAGES)" ]; then \
	  $(MAKE) --no-print-directory images REGISTRY="$$(pulumi stack output registry_url $(PULUMI_STACK))"; \
	fi; \
	$(PY) -m pipeline submit --images $(IMAGES_JSON) --host "$(HOST)" $(PULUMI_STACK) $(ARGS)

schedule: $(STAMP) ## Upload the pipeline (images of build/images.json) as a version named by the git revision and run it on CRON="0 6 * * *" (NAME=, HOST=, STACK=, ARGS=)
	@if [ -z "$(CRON)" ]; then echo 'error: pass CRON, e.g. make schedule CRON="0 6 * * *"' >&2; exit 2; fi
	$(PY) -m pipeline schedule --cron "$(CRON)" $(if $(NAME),--name "$(NAME)") --images $(IMAGES_JSON) --host "$(HOST)" $(PULUMI_STACK) $(ARGS)

schedules: $(STAMP) ## List the pipeline's recurring runs (HOST=)
	$(PY) -m pipeline schedules --host "$(HOST)" $(ARGS)

unschedule: $(STAMP) ## Delete the recurring run NAME=..., or every one of this pipeline's without NAME (HOST=)
	$(PY) -m pipeline unschedule $(if $(NAME),--name "$(NAME)",--all) --host "$(HOST)" $(ARGS)

clean: ## Remove local run outputs and build/images.json (keeps .venv)
	rm -rf .local out build
