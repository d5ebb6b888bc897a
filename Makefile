# zse: the two commands of the README's quick start, and the pieces they are made of.
#   make demo   create .venv, install zse, run the main job
#   make test   create .venv, install zse with its test tools, install tshark/openssl if missing,
#               then lint (ruff), type-check (mypy --strict), run the test suite and build
#               the docs (mkdocs --strict)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: demo test lint types pytest docs tools bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,docs,ezsp,znp]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m zse demo

# External oracles the tests compare against (Wireshark's dissectors, the OpenSSL CLI).
tools:
	@sh .ci/install-tools

lint: $(VENV)/.installed-test
	$(BIN)/ruff check zse tests benchmarks examples
	$(BIN)/ruff format --check zse tests benchmarks examples

types: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test tools
	$(BIN)/pytest

# The guide as a site (mkdocs.yml); --strict fails on a broken link or a page left out.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint types pytest docs

bench: $(VENV)/.installed-test
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache .hypothesis
