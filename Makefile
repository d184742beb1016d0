# Two commands do all the set-up on a fresh machine:
#   make demo   trains the demo preset on the built-in faces (no download)
#   make test   runs the test suite
# Both create a virtualenv in .venv first (PYTHON picks the interpreter).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q --disable-pip-version-check

.PHONY: demo test venv clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) -q --no-deps -e .  # -qq: no setuptools banners, errors still show
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m dcgan train --preset demo --data demo --out runs/demo --overwrite

test: venv
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
