# fcn-tutorial: the two commands of the README are `make book` and `make test`.
# Both work on a fresh machine that has only Python 3.11: they create .venv and install everything.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch and torchvision as they install from this machine's disk; Colab keeps its own (pyproject has loose bounds).
TORCH  := torch==2.14.1 torchvision==0.29.1
# Real data for tests and CI: ../shared/data/kvasir-seg (never copied into the repo).
# The chapters and tests read the data cache from FCN_TUTORIAL_DATA; in CI it points at ../shared/data.
ifneq ($(wildcard ../shared/data/kvasir-seg),)
export FCN_TUTORIAL_DATA ?= $(abspath ../shared/data)
endif

.PHONY: install test unit notebooks site browser-test book student bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,book]' $(TORCH)
	touch $(STAMP)

install: $(STAMP)

# Debian's headless Chromium for the browser test (installed once; needs root, as in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Unit tests of the package (the browser test is run by `make test` after the site is built).
unit: install
	$(PY) -m pytest tests -m "not browser" -q

test: install chromium
	$(PY) -m pytest tests -m "not browser" -q
	@echo "== all tests passed =="

clean:
	rm -rf _build .pytest_cache
