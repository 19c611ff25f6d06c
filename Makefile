# make dev   - the whole system on local stand-ins, no keys needed (see README)
# make test  - set up what the tests need and run them
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: setup dev test test-fast package migrate status tenants gaps bench-ingest bench-retrieval bench-answers fit-answerability bench-hostile bench-sync sync coldstart pinecone-index tfcheck clean

$(BIN)/.installed: requirements.txt requirements-unit.txt requirements-dev.txt requirements-local.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (first run: a few minutes)"
	$(BIN)/pip install $(PIP_FLAGS) -r requirements-dev.txt -c constraints.txt
	@touch $@

# The Cloud Tasks emulator pins an old protobuf, so it lives in a virtualenv of its own.
.venv-tasks/.installed: infra/requirements-tasks-emulator.txt
	@test -x .venv-tasks/bin/python || $(PYTHON) -m venv .venv-tasks
	.venv-tasks/bin/pip install $(PIP_FLAGS) -r infra/requirements-tasks-emulator.txt
	@touch $@

setup: $(BIN)/.installed .venv-tasks/.installed
	@$(BIN)/python -m infra.stack.prerequisites

dev: setup
	$(BIN)/python -m infra.dev

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup  ## unit tests only
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

package: setup
	$(BIN)/python -m infra.package

migrate: setup  ## apply migrations to DATABASE_URL / CLOUD_SQL_INSTANCE
	$(BIN)/python -m infra.migrate

status: setup  ## document status of the running local stack
	@source .local/stack.env && $(BIN)/python -m infra.kb status $(ARGS)

tenants: setup  ## the tenant registry: make tenants ARGS="add acme --origin https://help.acme.example"
	@source .local/stack.env && $(BIN)/python -m infra.tenants $(ARGS)

sync: setup  ## sync the sources now; ARGS="runs" | "show RUN" | "sources list" | "run --dry-run" (infra/sync.py)
	@source .local/stack.env && $(BIN)/python -m infra.sync $(or $(ARGS),run)

bench-sync: setup  ## the sync against a generated 6,114-page docs site (../shared/eval/support-mix, msdocs)
	$(BIN)/python -m infra.bench_sync ../shared/eval/support-mix $(ARGS)

gaps: setup  ## questions the local assistant could not answer (coverage gaps)
	@source .local/stack.env && $(BIN)/python -m infra.kb gaps $(ARGS)

bench-ingest: setup
	$(BIN)/python -m infra.bench_ingest $(ARGS)

bench-hostile: setup  ## what each hostile file (zip bombs, page trees, many elements) costs to parse
	$(BIN)/python -m infra.bench_hostile_files $(ARGS)

bench-retrieval: setup  ## retrieval quality and latency on ../shared/eval/support-mix (dev queries)
	$(BIN)/python -m infra.bench_retrieval ../shared/eval/support-mix --queries queries.dev.jsonl --qrels qrels.dev.tsv $(ARGS)

bench-answers: setup  ## honest answers: the sample knowledge base through chat, and support-mix counterfactual
	$(BIN)/python -m infra.bench_answers $(ARGS)

fit-answerability: setup  ## refit the answerability gate (shared/answerability/model.json)
	$(BIN)/python -m infra.fit_answerability $(ARGS)

pinecone-index: setup  ## create or check the Pinecone index: make pinecone-index ARGS="--name support-kb" (PINECONE_API_KEY)
	$(BIN)/python -m infra.pinecone_index $(ARGS)

coldstart: setup  ## import time of each function's module in a fresh interpreter
	$(BIN)/python -m infra.coldstart $(ARGS)

clean:
	rm -rf dist .pytest_cache test-artifacts

tfcheck: setup  ## offline Terraform checks: fmt, validate, test, checkov, discovery (infra/tfcheck); ARGS="validate --dir x"
	$(BIN)/python -m infra.tfcheck $(or $(ARGS),all)
