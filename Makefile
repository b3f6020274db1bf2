# Montage: `make run` starts everything; `make test` runs lint and the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format bench load stop clean-data migrate worker schema browser

# A fresh machine needs only Python 3.11: the virtual environment and every dependency
# (pinned torch CPU build included) come from here; re-run when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m config.devstack

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

worker: $(STAMP)
	$(VENV)/bin/celery -A config worker -Q gpu,cpu --loglevel INFO

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The staff console's browser test drives Debian's chromium through Playwright; without a
# chromium (and without root to install one) that test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  apt-get install -y chromium >/dev/null 2>&1 || \
	  (apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1) || \
	  sudo -n apt-get install -y chromium >/dev/null 2>&1 || echo "make: no chromium (apt-get install -y chromium); the staff \
	  console browser test will skip"

test: $(STAMP) lint browser
	@env_assignments="$$($(PY) -m config.testenv)" || exit 1; \
	echo "make test: $$env_assignments"; \
	eval "export $$env_assignments"; \
	MONTAGE_ENV=test $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	MONTAGE_ENV=test $(PY) -m bench

# A bounded, headless locust run against the whole stack on loopback (bench/load/):
# make load LOAD_ARGS="--users 20 --run-time 60".
load: $(STAMP)
	MONTAGE_ENV=test $(PY) -m bench.load $(LOAD_ARGS)

schema: $(STAMP)
	$(PY) manage.py spectacular --validate --file openapi.yaml

stop: $(STAMP)
	$(PY) -m config.embedded stop

clean-data: $(STAMP)
	$(PY) -m config.embedded destroy
