# origin-agent: `make demo` and `make test` work as root on a fresh Debian 12 machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export ORIGIN_AGENT_LOG_DIR ?= $(CURDIR)/.logs

.PHONY: setup system venv demo test unit integration lint bench lab-down clean

setup: system venv

system:
	@scripts/setup-system

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

demo: setup
	@scripts/demo

test: setup
	@mkdir -p $(ORIGIN_AGENT_LOG_DIR)
	$(VENV)/bin/ruff check agent tests bench
	$(VENV)/bin/ruff format --check agent tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest tests -p no:cacheprovider

unit: venv
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

lint: venv
	$(VENV)/bin/ruff check agent tests bench
	$(VENV)/bin/ruff format --check agent tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench.rotate $(BENCH_ARGS)

lab-down: venv
	-$(VENV)/bin/origin-agent lab down

clean: lab-down
	rm -rf $(VENV) .logs build *.egg-info
