# The two Quick start commands: `make demo` (set up, then the main job) and `make test` (set up, then every test).
# Everything runs in one virtual environment: VENV names it, PY is its interpreter, and nothing else is used
# (Debian's own python3 refuses pip installs, PEP 668). `make test VENV=/elsewhere` uses another one.
VENV ?= .venv
PY := $(VENV)/bin/python

ifeq ($(origin PY),command line)
$(error PY is the interpreter of $$(VENV); choose the environment with VENV=folder instead)
endif

.PHONY: setup demo test test-all firmware

setup:
	bash scripts/setup.sh "$(VENV)"

demo: setup
	$(PY) -m metabnn demo

# the suite runs in parallel, one worker per core (at most 4: each Verilator build wants ~1 GB), a test file's tests
# on one worker so its module fixtures are built once; `make test PYTEST_WORKERS=0` runs it in one process
PYTEST_WORKERS ?= auto
test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile

# the long runs too: full MNIST through RTL, longer training
test-all: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile --runslow

firmware:
	$(MAKE) -C firmware
