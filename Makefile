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

.PHONY: install lint test unit notebooks site mathjax browser-test book assignments student grade bench clean chromium \
	dist colab-wheels

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,book,instructor]' $(TORCH)
	touch $(STAMP)

install: $(STAMP)

# Debian's headless Chromium for the browser test (installed once; needs root, as in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

# Unit tests of the package (the browser test is run by `make test` after the site is built, and the
# Colab-like test, tests/test_colab.py, by `make test` too: `pytest -m colab` runs it alone).
unit: install
	$(PY) -m pytest tests -m "not browser and not colab" -q

# The browser step also checks that no solution text reached the site (pages and .ipynb downloads).
test: install chromium colab-wheels lint
	$(PY) -m pytest tests -m "not browser" -q
	$(BOOK_ENV) $(PY) -m pytest --nbval-lax book/ -q --timeout 900  # chapter 6 trains for about 4 minutes in one cell
	$(MAKE) site
	$(PY) -m pytest tests -m browser -q
	@echo "== all tests passed =="

# Lint and format with the rules in pyproject.toml (the doctests of every module run in tests/test_doctests.py).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# --- the book -------------------------------------------------------------------------------------
# Chapters run in the quick profile on the CPU (`FCN_TUTORIAL_DATA` above points at the real frames).
# The chapter list is _toc.yml; book/_src/build.py reads it (`$(PY) book/_src/build.py --list`).
BOOK_ENV := FCN_TUTORIAL_PROFILE=quick CUDA_VISIBLE_DEVICES=
# MathJax 3 from the npm registry, served by the site itself (no CDN).
MATHJAX := _build/npm/node_modules/mathjax/es5

# Sync every chapter's notebook with its jupytext source (book/_src/*.py), then execute it in place, so that
# the committed notebooks carry fresh outputs. CHANGED_ONLY=1 runs only the notebooks with a cell that never ran.
notebooks: install
	$(BOOK_ENV) $(PY) book/_src/build.py --execute $(if $(CHANGED_ONLY),--changed-only)

$(MATHJAX)/tex-chtml.js:
	npm install --prefix _build/npm --no-audit --no-fund --loglevel=error mathjax@3

# Copy the parts of MathJax the pages load into _build/mathjax/mathjax (a static path of the site).
mathjax: $(MATHJAX)/tex-chtml.js
	rm -rf _build/mathjax && mkdir -p _build/mathjax/mathjax
	cp -r $(MATHJAX)/tex-chtml.js $(MATHJAX)/input $(MATHJAX)/output $(MATHJAX)/ui $(MATHJAX)/a11y \
	    $(MATHJAX)/adaptors _build/mathjax/mathjax/

# Build the site from the stored outputs; any warning fails the build.
site: install mathjax
	$(VENV)/bin/jupyter-book build . -W --keep-going

# Drive every built page in headless Chromium: no console errors, every image loaded, equations rendered.
browser-test: install chromium
	$(PY) scripts/browser_check.py _build/html --screenshots _build/screenshots

book: install notebooks site
	@echo "The book is in _build/html/index.html; to browse it, run"
	@echo "    $(PY) -m http.server --directory _build/html 8000   and open http://localhost:8000"

# The assignments, from the same sources: _build/assignments/student (hand out) and
# _build/assignments/instructor (solutions, answer key, autograder). `make student` is the same target.
assignments: install
	$(PY) scripts/assignments.py --out _build/assignments

student: assignments

# Grade a folder of submitted notebooks: make grade CHAPTER=05 SUBMISSIONS=path/to/folder [OUT=grades.csv]
# [GRADE_FLAGS="--overwrite --timeout 900 --cell-timeout 600"] (the options of scripts/grade.py)
grade: install
	@test -n "$(CHAPTER)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade CHAPTER=05 SUBMISSIONS=folder/ [OUT=grades.csv] [GRADE_FLAGS=...]" >&2; exit 2; }
	$(PY) scripts/grade.py $(CHAPTER) $(SUBMISSIONS) --out $(or $(OUT),grades-$(CHAPTER).csv) $(GRADE_FLAGS)

# --- the distribution ------------------------------------------------------------------------------
# The sdist and the wheel of fcn-tutorial in dist/ (version: fcn_tutorial/__init__.py), checked for PyPI.
# .github/workflows/release.yml publishes them when a tag v<version> is pushed.
dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

# What Colab preinstalls and our .venv lacks: ipywidgets 7.7 and its companions, as wheels for the
# offline Colab-like test (tests/test_colab.py installs them from here with pip --no-index).
COLAB_WHEELS := _build/colab-wheels
colab-wheels: $(COLAB_WHEELS)/.downloaded
$(COLAB_WHEELS)/.downloaded: | $(STAMP)
	$(PY) -m pip download --quiet --no-deps --dest $(COLAB_WHEELS) 'ipywidgets==7.7.*' 'widgetsnbextension==3.6.*' \
	    'jupyterlab_widgets==1.*' 'ipython_genutils==0.2.*'
	touch $@

clean:
	rm -rf _build .pytest_cache dist
