# CLMS Updates — the two commands of the README, and the checks CI runs.
#   make run    the whole product on embedded defaults, in the foreground
#   make test   the whole test suite against real services it starts itself
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint check-ci venv system-deps-run system-deps-test clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "Could not create a virtualenv: install python3-venv (apt-get install python3-venv)."; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

system-deps-run:
	@bash scripts/system-deps.sh run

system-deps-test:
	@bash scripts/system-deps.sh test

run: system-deps-run venv
	$(PY) -m devtools.demo

test: system-deps-test venv
	$(PY) -m devtools.testrun $(PYTEST_ARGS); status=$$?; echo "Test artifacts (browser screenshots): $${CLMS_ARTIFACTS_DIR:-$(CURDIR)/test-artifacts}/"; exit $$status

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
