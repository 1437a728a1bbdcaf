# The two commands: `make run` starts the whole stack, `make test` runs every test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock setup.cfg | cksum | cut -d' ' -f1)

.PHONY: install chromium run test test-unit bench lock clean

$(STAMP): requirements.lock setup.cfg
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP) chromium

# The browser the dashboard's tests drive (tests/integration/test_dashboard.py skips them without
# it): Debian's chromium, installed with apt-get when missing and apt-get can (root or sudo -n).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$$CHROMIUM" ] || \
	  { command -v apt-get >/dev/null && SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo -n) && \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; } || \
	  echo "No Chromium and apt-get could not install it: the browser tests will be skipped"

run: install
	$(VENV)/bin/orchestrator up

test: install
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest tests/unit

bench: install
	$(PY) -m bench

# Refresh the pinned versions (with hashes) that run, test, CI and the image install.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q pip-tools
	$(PY) -m piptools compile -q --upgrade --generate-hashes --extra dev --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links \
		-o requirements.lock setup.cfg

clean:
	rm -rf $(VENV) .run .pytest_cache
