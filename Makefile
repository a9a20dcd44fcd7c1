# patrolkg: `make serve` runs the endpoint on the embedded store, `make test` runs the tests.
# Both create their own virtual environment in .venv and install the package into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STORE ?= var/store
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

SOURCES := pyproject.toml $(shell find src ontology shapes data queries -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: install serve query load test soak bench docs clean help

help:
	@echo "make serve   install, load the bundled data if the store is empty, serve on http://$(HOST):$(PORT)"
	@echo "make query   install, load if needed, and answer the first competency question"
	@echo "make test    install and run the test suite"
	@echo "make soak    load, soak and kill -9 rounds against a real server (minutes)"
	@echo "make bench   run the benchmark (writes docs/benchmarks.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A real (non-editable) install, so the tests exercise the package as users get it.
$(VENV)/.installed: $(BIN)/python $(SOURCES)
	$(BIN)/python -m pip install --quiet '.[test]'
	@touch $@

install: $(VENV)/.installed

serve: install
	$(BIN)/patrolkg serve --store $(STORE) --host $(HOST) --port $(PORT)

load: install
	$(BIN)/patrolkg load --store $(STORE)

query: install
	@test -d $(STORE) || $(BIN)/patrolkg load --store $(STORE)
	$(BIN)/patrolkg query --store $(STORE) --format table cq01-patrols

test: install
	$(BIN)/python -m pytest -p no:cacheprovider -m "not soak" $(PYTEST_ARGS)

# About 8 minutes: 50 clients for 60 s, memory per commit, 20 rounds of kill -9 (tests/test_soak.py);
# the numbers go to var/soak-report.json (docs/reliability.md is written from them).
soak: install
	SOAK_REPORT=var/soak-report.json $(BIN)/python -m pytest -p no:cacheprovider -m soak tests/test_soak.py $(PYTEST_ARGS)

# The full run takes about an hour; BENCH_ARGS passes options (python bench/run.py --help).
# wrk (Debian's package) measures throughput; without it the Python client would be the limit.
bench: install
	$(BIN)/python -m pip install --quiet '.[bench]'
	@command -v wrk >/dev/null 2>&1 || { echo "installing wrk (apt-get)"; \
		if [ "$$(id -u)" = "0" ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi; } \
		|| echo "wrk could not be installed: throughput will be measured with the Python client"
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build dist

docs: install
	$(BIN)/python tests/test_docs.py --write
