# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install run example test test-fast lint clean dashboard browser-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job: the Streamlit dashboard on $PERFLEDGER_URL or ./memory/logs, on 127.0.0.1
## (asks for sample data: added only to an empty ledger directory; it prints the local URL).
## Another address: make run ARGS="--address 0.0.0.0 --port 8600".
run: $(STAMP)
	$(BIN)/python -m perfledger.dashboard --sample $(ARGS)

dashboard: run

## The seed's integration examples: log evaluations, print each ticker's best models.
example: $(STAMP)
	$(BIN)/python examples/model_performance_logging_example.py

## Debian's Chromium for the browser tests (never a downloaded browser); the emoji font only
## makes screenshots show the tab icons.
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	fc-list 2>/dev/null | grep -qi emoji || apt-get install -y -qq fonts-noto-color-emoji || true

## Every test (PostgreSQL tests need the server on 127.0.0.1:5432; in CI they must run).
## Chromium is installed for the browser test when this machine allows it (root + apt);
## elsewhere that one test skips with its reason.
test: $(STAMP)
	@command -v chromium >/dev/null || $(MAKE) --no-print-directory browser-deps \
	  || echo "note: could not install Chromium; the browser test will skip"
	$(BIN)/python -m pytest -v -n 2

## The loop while editing: every test except those marked slow (real processes, kills, the
## browser, a fresh install; see pyproject.toml). Needs no Chromium; PostgreSQL as above.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2

lint: $(STAMP)
	$(BIN)/ruff check .

.PHONY: bench bench-quick bench-clean

## Benchmarks: writes docs/benchmarks.md and docs/scaling.png (~10 min); bench-quick is a small
## smoke run writing bench/results/benchmarks-quick.md. Needs PostgreSQL on 127.0.0.1:5432.
## perfledger is measured from .venv-bench; MLflow (the comparison) pins pyarrow<26, which
## perfledger's core cannot use, so it gets its own .venv-mlflow and runs in a worker process.
BENCH_VENV   := .venv-bench
BENCH_STAMP  := $(BENCH_VENV)/.installed-bench
MLFLOW_VENV  := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed-mlflow

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e ".[bench,postgres,dashboard]"
	touch $(BENCH_STAMP)

$(MLFLOW_STAMP): bench/requirements-mlflow.txt
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(MLFLOW_VENV)/bin/python -m pip install -q -r bench/requirements-mlflow.txt
	touch $(MLFLOW_STAMP)

bench: $(BENCH_STAMP) $(MLFLOW_STAMP)
	$(BENCH_VENV)/bin/python -m bench.run_all --mlflow-python $(MLFLOW_VENV)/bin/python

bench-quick: $(BENCH_STAMP) $(MLFLOW_STAMP)
	$(BENCH_VENV)/bin/python -m bench.run_all --quick --mlflow-python $(MLFLOW_VENV)/bin/python

bench-clean:
	rm -rf $(BENCH_VENV) $(MLFLOW_VENV) bench/results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
