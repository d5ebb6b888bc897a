# zse: the two commands of the README's quick start, and the pieces they are made of.
#   make demo   create .venv, install zse, run the main job
#   make test   create .venv, install zse with its test tools, install the test oracles if
#               missing (.ci/install-tools: tshark, openssl, mosquitto, curl, chromium,
#               postgresql), then lint (ruff), type-check (mypy --strict), run the test suite
#               (over PYTEST_WORKERS processes, docs/adr/0024) and build the docs (mkdocs
#               --strict); then run the suite again on the interpreters of EXTRA_PYTHONS
#               that are installed, each in its own venv (.venv-3.12, .venv-3.13), side by
#               side, each a share of it (every test on one of them once every
#               EXTRA_ROUNDS commits, docs/adr/0026 and 0036), less the tests whose outcome
#               cannot depend on the interpreter (marked oracle or main_interpreter, 0025)
# PYTHON picks the interpreter (3.11 or newer): `make demo PYTHON=python3.12`. A venv made by
# another interpreter is rebuilt, and one older than 3.11 is refused in one line.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
EXTRAS ?= test,docs
EXTRA_PYTHONS ?= python3.12 python3.13
# The other interpreters run a third of their shares a run, the commit choosing which
# (docs/adr/0036: `make test` within CI's 15 minutes); 1: all of them, as before.
EXTRA_ROUNDS ?= 3
# Each run names its 15 slowest tests at the end (--durations), to keep an eye on CI's budget;
# PYTEST_ARGS goes to pytest as it is (the other interpreters' runs leave out the tests marked
# oracle and main_interpreter, whose outcome cannot depend on the interpreter: docs/adr/0025).
# Processes the main test run goes over (pytest-xdist, docs/adr/0024): two per CPU, at most 4
# (half a slow test's time is waiting on a process, a server or the real clock: docs/adr/0029);
# 0 or 1: one process (the other interpreters' runs, side by side, share those between them).
PYTEST_WORKERS ?= $(shell n=$$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1); \
  n=$$((2 * n)); [ "$$n" -gt 4 ] 2>/dev/null && n=4; echo $$n)

.PHONY: demo test lint types pytest pytest-extra docs tools bench clean FORCE

# The interpreter behind $(VENV), checked on every run (.ci/venv-python): the file changes,
# and so the installs below run again, only when the venv is made anew.
$(VENV)/.python: FORCE
	@$(PYTHON) -c '' >/dev/null 2>&1 || { \
	  echo "error: PYTHON=$(PYTHON) does not run (not installed?): choose another" >&2; exit 1; }
	@$(PYTHON) .ci/venv-python $(VENV) '$(PYTHON)'

# Before 0.1.0 the distribution was named zse (docs/adr/0001): an editable install of this
# checkout under that name goes first, so that it cannot take the zse command with it later.
$(VENV)/.installed: $(VENV)/.python pyproject.toml zse/__init__.py
	$(PY) -m pip install --quiet --upgrade pip
	@if $(PY) -m pip show zse 2>/dev/null | grep -qxF 'Editable project location: $(CURDIR)'; \
	then $(PY) -m pip uninstall --quiet --yes zse; fi
	$(PY) -m pip install --quiet -e .
	touch $@

# The tools that judge the code (ruff, mypy, pytest, hypothesis, mkdocs) at the versions
# .ci/constraints.txt pins (docs/adr/0028); the libraries zse runs on at their newest.
$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml .ci/constraints.txt
	$(PY) -m pip install --quiet --constraint .ci/constraints.txt -e '.[$(EXTRAS)]'
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

# The suite starts hundreds of Python processes (the CLI, servers, the simulator), each of
# which would compile zse's modules and the tests' again where PYTHONDONTWRITEBYTECODE is set
# (3 s for all of zse on the 2-vCPU VM): their bytecode is cached under build/pycache, out of
# the source tree, whatever the environment says.
pytest: $(VENV)/.installed-test tools
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX='$(CURDIR)/build/pycache' $(BIN)/pytest --durations=15 $(PYTEST_ARGS) $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist worksteal,-p no:xdist)

# The suite on the other supported interpreters, each in .venv-X.Y with the test extra only,
# run side by side (.ci/pytest-extra); .ci/extra-pythons finds them (PATH, or pyenv's
# versions) and names those left out.
pytest-extra: $(VENV)/.installed-test
	@EXTRA_ROUNDS=$(EXTRA_ROUNDS) sh .ci/pytest-extra $(PY) $(VENV) $(EXTRA_PYTHONS)

# The guide as a site (mkdocs.yml); --strict fails on a broken link or a page left out
# (not with --quiet, which hides the warnings --strict counts).
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

test: lint types pytest docs pytest-extra

bench: $(VENV)/.installed-test
	@for b in benchmarks/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VENV)-3.* build *.egg-info .mypy_cache .pytest_cache .ruff_cache .hypothesis
