# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install run example test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job: log the example evaluations and print each ticker's best models.
run: $(STAMP)
	$(BIN)/python examples/model_performance_logging_example.py

## Every test (PostgreSQL tests need the server on 127.0.0.1:5432; in CI they must run).
test: $(STAMP)
	$(BIN)/python -m pytest -v

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
	$(BENCH_VENV)/bin/python -m pip install -q -e ".[bench,postgres]"
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
