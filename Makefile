# eucp: `make demo` runs a crisis end to end, `make test` checks everything. Both set themselves up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# the `exchange` extra (python-threatexchange and its PDQ hasher) on top: tests, not the stack
EXCHANGE := $(VENV)/.exchange-$(shell cksum pyproject.toml | cut -d' ' -f1)
# and the `video` extra (vpdq, tmkpy: the video hashers of `eucp hash`), built from source
VIDEO    := $(VENV)/.video-$(shell cksum pyproject.toml | cut -d' ' -f1)
CODE   := eucp workflows activities worker.py bench chaos
# what the tests need that pip does not install: Debian's chromium for the console's browser
# tests (never a downloaded browser build) and the machine's PostgreSQL for the ledger's
CHROMIUM     := /usr/bin/chromium
POSTGRES_URL := postgresql://postgres@127.0.0.1:5432/test
# and what the video hashers build against: vpdq finds FFmpeg's seven libav* libraries with
# pkg-config, tmkpy is built with SWIG and runs the ffmpeg program (Debian 12: FFmpeg 5.1)
VIDEO_DEBS   := pkg-config libavcodec-dev libavdevice-dev libavfilter-dev libavformat-dev \
                libavutil-dev libswresample-dev libswscale-dev swig ffmpeg

.PHONY: install exchange video video-debs browser postgres lint typecheck test demo up worker bench \
        chaos clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

$(EXCHANGE): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,exchange]'
	rm -f $(VENV)/.exchange-*
	touch $@

exchange: $(EXCHANGE)

$(VIDEO): $(EXCHANGE) | video-debs
	$(PY) -m pip install --quiet -e '.[dev,exchange,video]'
	rm -f $(VENV)/.video-*
	touch $@

video: $(VIDEO)

# installed with apt when missing and make runs as root; otherwise make stops and says how
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "the console tests need Debian's chromium at $@; install it with:" >&2; \
	  echo "  sudo apt-get install -y chromium" >&2; \
	  exit 1; \
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
	test -x $@

browser: $(CHROMIUM)

# checked on every run (dpkg -s); those missing installed with apt, without recommends, when
# make runs as root; otherwise make stops and says how
video-debs:
	@missing=$$(for p in $(VIDEO_DEBS); do \
	  dpkg -s $$p 2>/dev/null | grep -qx 'Status: install ok installed' || echo $$p; done); \
	missing=$$(echo $$missing); \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "the video hashers (vpdq, tmkpy) need Debian's $$missing; install them with:" >&2; \
	  echo "  sudo apt-get install -y --no-install-recommends $$missing" >&2; \
	  exit 1; \
	fi; \
	set -ex; \
	apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

# the server is the machine's, started by .ci/run when stopped: checked here, never installed
postgres: install
	@$(PY) -c 'import psycopg; psycopg.connect("$(POSTGRES_URL)", connect_timeout=5).close()' \
	  2>/dev/null || { \
	  echo "the ledger tests need PostgreSQL at $(POSTGRES_URL) and none answers;" >&2; \
	  echo "start it (as root, as .ci/run does):" >&2; \
	  echo '  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start' >&2; \
	  exit 1; }

lint: install
	$(VENV)/bin/ruff check $(CODE) tests
	$(VENV)/bin/ruff format --check $(CODE) tests

typecheck: exchange  # the exchange and `eucp hash` import python-threatexchange
	$(VENV)/bin/mypy --strict $(CODE)

# two processes, each given whole test files (their servers and module fixtures start once)
test: browser postgres exchange video lint typecheck
	$(VENV)/bin/pytest -q -n 2 --dist loadfile

demo: install
	$(VENV)/bin/eucp demo

up: install
	$(VENV)/bin/eucp up

worker: install
	$(VENV)/bin/eucp worker

bench: install
	$(VENV)/bin/python -m bench

chaos: postgres
	$(VENV)/bin/python -m chaos

clean:
	rm -rf var .mypy_cache .ruff_cache .pytest_cache
