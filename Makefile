# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: install run example test lint bench clean dashboard browser-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job: log the example evaluations and print each ticker's best models.
run: $(STAMP)
	$(BIN)/python examples/model_performance_logging_example.py

## The Streamlit dashboard on $PERFLEDGER_URL or ./memory/logs (sample data if empty), on 127.0.0.1.
dashboard: $(STAMP)
	$(BIN)/python -m perfledger.dashboard

## Debian's Chromium for the browser tests (never a downloaded browser); the emoji font only
## makes screenshots show the tab icons.
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	fc-list 2>/dev/null | grep -qi emoji || apt-get install -y -qq fonts-noto-color-emoji || true

## Every test (PostgreSQL tests need the server on 127.0.0.1:5432; in CI they must run).
test: $(STAMP)
	$(BIN)/python -m pytest -v

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
