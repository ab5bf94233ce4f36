# Two commands after cloning: `make demo` (set up, run the whole cycle on built-in
# defaults) and `make test` (set up, run every test). Both create .venv themselves.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# PostgreSQL tests run when a server answers on 127.0.0.1:5432 (trust auth, database
# `test`) or when NEWSLETTER_TEST_POSTGRES_URL is set; otherwise they are skipped.
PG_URL := $(shell command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 && echo postgresql+psycopg://postgres@127.0.0.1:5432/test)
export NEWSLETTER_TEST_POSTGRES_URL ?= $(PG_URL)

# Subprocess-heavy tests start `newsletter` many times: let Python keep its bytecode caches.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo serve test test-fast lint bench bench-quick system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/newsletter demo

serve: $(STAMP)
	$(BIN)/newsletter demo --serve

# Debian packages some tests and benchmarks use (chromium for the browser test,
# postfix's smtp-sink/smtp-source and wrk for benchmarks); installed when we can.
system-deps:
	@scripts/system-deps

# Tests run in TEST_WORKERS processes (pytest-xdist); TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 2

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not browser"

lint: $(STAMP)
	$(BIN)/ruff check newsletter tests bench docs
	$(BIN)/ruff format --check newsletter tests bench docs
	$(BIN)/mypy

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

bench-quick: $(STAMP) system-deps
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) var .pytest_cache
