# Treue: every target bootstraps its own virtualenv (Python >= 3.11) and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# checkov pins its own dependencies: its own virtualenv (infra/checkov.py holds the version)
CHECKOV := .venv-checkov/.installed
# Swagger UI for the API reference page (/docs): pinned in web/package-lock.json, installed with npm and
# copied into the Docs function's code (functions/treue/static, not committed)
SWAGGER := web/node_modules/swagger-ui-dist
DOCS_UI := functions/treue/static/swagger-ui-bundle.js
PORT   ?= 3000
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help preflight run demo test test-fast synth checkov lint bench openapi clean
.DEFAULT_GOAL := help

## List the targets and what each does (what `make` alone does; needs no virtualenv)
help:
	@echo 'make <target>, one of:'
	@awk -v port='$(PORT)' '/^## /{doc=substr($$0, 4); next} \
	  /^[A-Za-z0-9_-]+:([^=]|$$)/ && doc != "" {sub(/:.*/, ""); gsub(/\$$\(PORT\)/, port, doc); \
	  printf "  %-9s %s\n", $$0, doc} {doc = ""}' $(firstword $(MAKEFILE_LIST))

NO_PYTHON = preflight error: Treue needs Python 3.11 or newer; found no '$(PYTHON)' on PATH. Install it from \
  https://www.python.org/downloads/ or your package manager, then name it: make run PYTHON=python3.11

## Check that Python 3.11+ and Node.js 22 or 24 are installed, and say what to install if not
preflight:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(NO_PYTHON)" >&2; exit 1; }
	@$(PYTHON) infra/preflight.py python node

$(STAMP): pyproject.toml
	@$(PYTHON) infra/preflight.py python
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(CHECKOV): $(STAMP) infra/checkov.py
	$(PY) -m infra.checkov
	@touch $(CHECKOV)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

$(DOCS_UI): web/node_modules/.package-lock.json
	@mkdir -p $(dir $(DOCS_UI))
	cp $(SWAGGER)/swagger-ui.css $(SWAGGER)/swagger-ui-bundle.js.LICENSE.txt $(SWAGGER)/LICENSE $(SWAGGER)/NOTICE \
	  $(dir $(DOCS_UI))
	cp $(SWAGGER)/swagger-ui-bundle.js $(DOCS_UI)

cdk.out/Treue.template.json: $(STAMP) $(DOCS_UI) $(shell find infra functions -name '*.py' -o -name '*.json' -o -name '*.asl.json' 2>/dev/null)
	$(PY) -m infra.app

## Start the local twin on 127.0.0.1:$(PORT) with a demo program (Ctrl-C stops it; SEED=word keeps its keys)
run: preflight cdk.out/Treue.template.json
	$(PY) -m infra.twin --port $(PORT) $(if $(SEED),--seed '$(SEED)')

## Scripted walk-through (about a minute) against the running twin, or one it starts and stops; DEMO_BATCH=1000 for a big batch
demo: preflight cdk.out/Treue.template.json
	$(PY) -m infra.twin.demo --port $(PORT)

## The whole suite: ruff, mypy (strict over functions/treue), unit, integration (moto), infra (synth + cdk-nag + checkov), end-to-end (twin)
test: preflight $(STAMP) $(CHECKOV) $(DOCS_UI)
	$(PY) -m ruff check functions infra tests
	$(PY) -m mypy
	$(PY) -m pytest

## Synthesize the CloudFormation template with cdk-nag AwsSolutions checks
synth: preflight $(STAMP) $(DOCS_UI)
	$(PY) -m infra.app

## checkov's CloudFormation checks on the synthesized template (failed checks, then a summary)
checkov: preflight cdk.out/Treue.template.json $(CHECKOV)
	$(PY) -m infra.checkov cdk.out/Treue.template.json

## ruff's lint checks and its format check (the format check only reports)
lint: $(STAMP)
	$(PY) -m ruff check functions infra tests
	$(PY) -m ruff format --check functions infra tests || true

## Cold-start and DynamoDB round-trip figures
bench: preflight cdk.out/Treue.template.json
	$(PY) -m tests.bench

## Regenerate the committed OpenAPI document from the handlers
openapi: $(STAMP)
	$(PY) -m treue.openapi > functions/treue/openapi.json

## Remove the virtualenvs, cdk.out, .treue (the twin's state, cached templates), the test caches and Swagger UI
clean:
	rm -rf $(VENV) .venv-checkov .venv-checkov.lock cdk.out .treue .pytest_cache .mypy_cache .hypothesis web/node_modules \
	  $(dir $(DOCS_UI))
