# eucp: `make demo` runs a crisis end to end, `make test` checks everything. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
CODE   := eucp workflows activities worker.py bench chaos

.PHONY: install lint typecheck test demo up worker bench chaos clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check $(CODE) tests
	$(VENV)/bin/ruff format --check $(CODE) tests

typecheck: install
	$(VENV)/bin/mypy --strict $(CODE)

test: lint typecheck
	$(VENV)/bin/pytest -q

demo: install
	$(VENV)/bin/eucp demo

up: install
	$(VENV)/bin/eucp up

worker: install
	$(VENV)/bin/eucp worker

bench: install
	$(VENV)/bin/python -m bench

chaos: install
	$(VENV)/bin/python -m chaos

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
