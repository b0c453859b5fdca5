# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install run example test lint bench bench-quick clean

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

## Benchmarks in their own venv (MLflow for the comparison must not pin the main one's versions).
## Writes docs/benchmarks.md and docs/scaling.png (~15 min); bench-quick is a small smoke run
## writing bench/results/benchmarks-quick.md. PostgreSQL on 127.0.0.1:5432 is needed.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e ".[bench,postgres]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench.run_all

bench-quick: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench.run_all --quick

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache .hypothesis
