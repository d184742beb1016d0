# Two commands do all the set-up on a fresh machine:
#   make demo   trains the demo preset on the built-in faces (no download)
#   make test   runs the test suite
# Both create a virtualenv in .venv first (PYTHON picks the interpreter).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test venv clean

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

test: $(VENV)/.installed-dev
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
