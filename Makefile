# `make run` and `make test` are the whole set-up (design.md §4): each creates .venv if missing and
# installs the project into it again only when pyproject.toml changed (the stamp files).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The dev install includes everything the plain one does, so it refreshes both stamps.
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev

.PHONY: run test bench

run: $(INSTALLED)
	$(BIN)/python run.py

# Every check runs even when an earlier one fails, so CI always shows pytest's summary line; the
# target fails if any did.
test: $(INSTALLED_DEV)
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy . || status=1; \
	$(BIN)/lint-imports || status=1; \
	$(BIN)/python -m pytest || status=1; \
	exit $$status

bench: $(INSTALLED_DEV)
	@found=0; \
	for script in bench/*.py; do \
		case "$$(basename "$$script")" in _*|'*.py') continue ;; esac; \
		found=1; echo "== $$script"; \
		$(BIN)/python "$$script" || exit 1; \
	done; \
	[ "$$found" = 1 ] || echo "no benchmarks in bench/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

$(INSTALLED_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(INSTALLED)
