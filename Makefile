# `make run` and `make test` are the whole set-up (design.md §4): each creates .venv if missing and
# installs the project into it again only when pyproject.toml changed (the stamp files).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The dev install includes everything the plain one does, so it refreshes both stamps.
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev

.PHONY: run test bench browser

run: $(INSTALLED)
	$(BIN)/python run.py

# Every check runs even when an earlier one fails, so CI always shows pytest's summary line; the
# target fails if any did.
test: $(INSTALLED_DEV) browser
	@status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/ruff format --check . || status=1; \
	$(BIN)/mypy . || status=1; \
	$(BIN)/lint-imports || status=1; \
	$(BIN)/python -m pytest || status=1; \
	exit $$status

# The web console's browser tests (tests/console/) drive Debian's chromium and chromedriver. Run as
# root (CI) this installs them when missing; otherwise those tests skip, saying how to install them.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium and chromium-driver for the browser tests"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
				|| echo "could not install chromium: the browser tests will be skipped"; \
		fi; \
	fi

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
