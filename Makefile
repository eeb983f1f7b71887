# The two Quick start commands: `make demo` (set up, then the main job) and `make test` (set up, then every test).
PY ?= python3

.PHONY: setup demo test test-all firmware

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m metabnn demo

test: setup
	$(PY) -m pytest

# the long runs too: full MNIST through RTL, longer training
test-all: setup
	$(PY) -m pytest --runslow

firmware:
	$(MAKE) -C firmware
