# Two commands do all the set-up on a fresh machine:
#   make demo   trains the demo preset on the built-in faces (no download)
#   make test   runs the test suite
# Both create a virtualenv in .venv first (PYTHON picks the interpreter).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check
# Colab's Python (3.13) for the second leg of the tests, where the machine has it (on PATH or
# under pyenv); otherwise $(PYTHON), with Colab's package versions all the same.
COLAB_PYTHON ?= $(or $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3); do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 && { echo $$p; break; }; done),$(PYTHON))
COLAB_VENV ?= .venv-colab
# A smoke of what Colab users run, on Colab's versions: the notebook top to bottom (on
# TensorFlow) and its re-run loop, the command line (train, generate, resume), hf: data, and
# runs of the previous release (everything else runs on the same code in the first leg).
COLAB_TESTS ?= tests/test_notebook.py tests/test_cli.py tests/test_hub.py tests/test_compat.py

.PHONY: demo test test-colab venv clean browser

# The demo needs requirements.txt only (TensorFlow); the tests also install JAX and
# PyTorch (requirements-dev.txt: about 5 GB more, torch's wheel bundles CUDA libraries).
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	$(PY) -m pip install $(PIP_FLAGS) -q --no-deps -e .  # -qq: no setuptools banners, errors still show
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m dcgan train --preset demo --data demo --out runs/demo --overwrite

$(COLAB_VENV)/.installed: requirements-colab.txt pyproject.toml
	$(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements-colab.txt
	$(COLAB_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

# Two workers (pytest-xdist; worksteal: the JAX and PyTorch legs start first, one per worker);
# a skip that is not on tests/conftest.py's ALLOWED_SKIPS fails the run.
PYTEST_ARGS ?= -n 2 --dist worksteal
test: $(VENV)/.installed-dev browser
	DCGAN_STRICT_SKIPS=1 $(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-colab

# Colab's versions (requirements-colab.txt); part of `make test`.
test-colab: $(COLAB_VENV)/.installed
	@$(COLAB_VENV)/bin/python -c 'import sys, tensorflow, keras; print(f"Colab leg: Python {sys.version.split()[0]}, TensorFlow {tensorflow.__version__}, Keras {keras.__version__}")' 2>/dev/null
	DCGAN_STRICT_SKIPS=1 DCGAN_COLAB_LEG=1 $(COLAB_VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) $(COLAB_TESTS)

# The web page's test drives the system's Chromium (never a downloaded browser): installed
# with apt when missing and this is root on Debian/Ubuntu; otherwise that one test skips.
browser:
	@command -v chromedriver >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { timeout 300 apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
	    { timeout 120 apt-get update -qq >/dev/null 2>&1 && timeout 300 apt-get install -y -qq --no-install-recommends \
	      chromium chromium-driver >/dev/null 2>&1; }; } || echo "no chromium/chromedriver: the browser test will skip"; }

clean:
	rm -rf $(VENV) $(COLAB_VENV) runs .pytest_cache
